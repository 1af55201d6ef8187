"""Time ``TvmHost()`` with the default engine: median of 30 hosts after a first one (which compiles).

Usage: .venv/bin/python scripts/host_startup.py
"""

from __future__ import annotations

import gc
import statistics
import time

from tvm_wasm import TvmHost


def main() -> None:
    TvmHost().close()
    samples = []
    for _ in range(30):
        start = time.perf_counter()
        host = TvmHost()
        samples.append(time.perf_counter() - start)
        host.close()
        gc.collect()
    print(f"TvmHost(): median {statistics.median(samples) * 1e3:.2f} ms, min {min(samples) * 1e3:.2f} ms over 30")


if __name__ == "__main__":
    main()
