"""Fixtures for the guest-module tests: cached builds, fresh instances on one shared engine."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # guest_helpers, whatever the import mode

from guest_helpers import compiled, engine

from tvm_wasm.guest.instance import GuestInstance


@pytest.fixture
def make_guest():
    """``make_guest(pools=2, max_pages=64, ...)`` -> a fresh GuestInstance (the module is built once per shape)."""

    def make(**kwargs: object) -> GuestInstance:
        return GuestInstance(compiled(**kwargs), engine=engine())

    return make
