"""Fixtures for the ABI tests: host and self-contained-module factories on shared engines."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # abi_helpers, whatever the import mode

from abi_helpers import compiled_guest_module, host_engine, module_engine  # noqa: E402

from host_factory import closing_hosts  # noqa: E402
from tvm_wasm.guest.instance import GuestInstance  # noqa: E402


@pytest.fixture
def make_host():
    """``make_host(**kwargs)`` -> a TvmHost (2 pools) on the shared engine, closed when the test ends."""
    yield from closing_hosts(host_engine, pools=2)


@pytest.fixture
def make_guest():
    """``make_guest()`` -> a self-contained module instance, closed when the test ends."""
    made: list[GuestInstance] = []

    def make() -> GuestInstance:
        made.append(GuestInstance(compiled_guest_module(), engine=module_engine()))
        return made[-1]

    yield make
    for guest in made:
        guest.close()
