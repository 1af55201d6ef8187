"""``tvm-wasm bench checkpoints`` runs its three parts at a tiny size, verifies its rollbacks and reports ratios."""

from __future__ import annotations

from tvm_wasm.bench.checkpoints import MIB, CheckpointBenchConfig, run_checkpoint_bench


def test_checkpoint_bench_runs_every_part_at_a_tiny_size() -> None:
    cfg = CheckpointBenchConfig(size=1024, samples=2, checkpoint_bytes=16 * MIB, checkpoint_regions=4,
                                game_bytes=4 * MIB, game_regions=2, game_steps=12, tracking_classes=("growth",))
    result = run_checkpoint_bench(cfg)
    (tvm, inline, bulk) = result.tracking
    assert (tvm["variant"], inline["variant"], bulk["variant"]) == ("tvm", "tvm-inline", "tvm-bulk")
    for row in (tvm, inline):
        if "skipped" not in row:  # tvm-inline needs Binaryen
            assert row["dirty_pages_seen"] > 0 and row["ratio"] > 0  # tracking was on: the stores marked pages
    c = result.checkpoint
    assert c["bytes_copied"] < 0.05 * c["bytes"] and c["speedup"] > 0
    g = result.game
    assert g["rollbacks"] == 1 and g["checkpoint_ms"] > 0  # the rollback was verified against its CRC
    assert set(result.as_json()) == {"config", "tracking", "checkpoint", "game"}
