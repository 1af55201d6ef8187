"""One TvmHost factory for the layers' ``make_host`` fixtures: every host a test makes is
closed when the test ends (pools and stores are released at once, not by the garbage collector)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import wasmtime

from tvm_wasm.host.tvm_host import TvmHost


def closing_hosts(engine: Callable[[], wasmtime.Engine], **defaults: object) -> Iterator[Callable[..., TvmHost]]:
    """Yield ``make(**kwargs) -> TvmHost`` (``engine()`` and ``defaults`` fill what is not given)."""
    made: list[TvmHost] = []

    def make(**kwargs: object) -> TvmHost:
        if "engine" not in kwargs:
            kwargs["engine"] = engine()
        for key, value in defaults.items():
            kwargs.setdefault(key, value)
        made.append(TvmHost(**kwargs))  # type: ignore[arg-type]
        return made[-1]

    try:
        yield make
    finally:
        for host in made:
            host.close()
