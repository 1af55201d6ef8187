"""Fixtures for the host acceptance tests: one shared engine (the runtime compiles once), host factories."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # host_guests, whatever the import mode

from host_guests import shared_engine  # noqa: E402
from host_factory import closing_hosts  # noqa: E402


@pytest.fixture
def make_host():
    """``make_host(**kwargs)`` -> a TvmHost on the shared engine, closed when the test ends."""
    yield from closing_hosts(shared_engine)
