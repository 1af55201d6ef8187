"""Checkpoints and rollback through the WIT path: the checkpoint differential machine
(``tests/checkpoint_machine.py``) driving a host only through a real guest component's
``tvm:memory`` calls (``manager.checkpoint``/``rollback``/``release-checkpoint``, ``bytes.write``/
``copy``/``read-into``/``write-from``, ``manager.alloc``/``dealloc``/``spill-region``/
``compact-region``/``clear-dirty``), checked against the machine's tiny model after every step."""

from __future__ import annotations

from hypothesis import HealthCheck, settings
from wit_guests import WitDirectory

from checkpoint_machine import CheckpointMachine
from tvm_wasm import MemoryBackingStore, TvmHost
from tvm_wasm.host.component_values import field
from tvm_wasm.host.tvm_host import default_engine


class WitCheckpoints(CheckpointMachine):
    def make(self) -> WitDirectory:
        return WitDirectory(TvmHost(pools=1, engine=default_engine(), backing=MemoryBackingStore()))

    def close(self) -> None:
        self.d.close()

    def compact(self, rid: int, offsets: list[int]) -> tuple[int, dict[int, int]]:
        result = self.d.compact_region(rid)  # compact-result: the mapping as (old, new) pairs
        mapping = dict(field(result, "mapping"))  # type: ignore[call-overload]
        return int(field(result, "new-generation")), {offset: mapping[offset] for offset in offsets}  # type: ignore[call-overload]


TestWitCheckpoints = WitCheckpoints.TestCase
TestWitCheckpoints.settings = settings(max_examples=30, stateful_step_count=30, deadline=None,
                                       suppress_health_check=[HealthCheck.too_slow])
