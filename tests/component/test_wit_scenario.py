"""A hand-written guest runs a whole workflow inside wasm through the WIT imports."""

from __future__ import annotations


def test_scenario_guest_runs_every_step(host, scenario_component):
    guest = host.instantiate_component(scenario_component)
    assert guest.call("run") == 0
    assert len(host) == 0  # it destroyed its region
