"""Guests linked with the data plane inlined keep the host's semantics: the host's differential and
no-escape property tests, run through ``TvmHost.instantiate(..., inline=True)``.

They live here, after the host's own runs, and take fewer examples: the same
operations, one more way of reaching them.
"""

from __future__ import annotations

import sys
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).parents[1]))
sys.path.insert(0, str(Path(__file__).parents[1] / "host"))

from host_guests import require_binaryen  # noqa: E402
from test_differential import Pair, run_ops  # noqa: E402
from test_no_escape import World, run_calls  # noqa: E402

SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@SETTINGS
@given(strict=st.booleans(), data=st.data())
def test_inlined_guest_matches_model(strict, data):
    require_binaryen()
    pair = Pair(strict, inline=True)
    with pair.host:
        run_ops(pair, data)


@SETTINGS
@given(data=st.data())
def test_nothing_escapes_an_inlined_guest(data):
    require_binaryen()
    world = World(inline=True)
    with world.host:
        run_calls(world, data)
