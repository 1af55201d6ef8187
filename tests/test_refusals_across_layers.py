"""Kind: an operation the model refuses is refused the same way on every layer.

One table of refusals (each row: a setup and the refused operation), run on the
model, ``TvmHost``'s Python API, the raw ABI from a guest and the
self-contained module. Python layers must raise the model's exact class; code
layers (raw ABI, module) the same code. After the refusal nothing has changed.
The WIT path runs the same table in ``tests/component/test_wit_refusals.py``.

Rows a layer cannot express are listed with the reason, not skipped silently:
the raw ABI has no control plane (only data rows run there), and the
self-contained module has no imported regions and no Cold/External tier.
"""

from __future__ import annotations

import pytest
from layers import LAYERS, GuestModuleLayer, RawAbiLayer
from refusals_table import ROWS, Row

from tvm_wasm import TvmError


def cells():
    for row in ROWS:
        for layer in LAYERS:
            if layer is RawAbiLayer and not row.data:
                continue  # the raw ABI has no control plane: the Python API's row covers it
            if layer is GuestModuleLayer and not row.module:
                continue  # the self-contained module has no imported regions and no Cold/External tier
            yield pytest.param(row, layer, id=f"{row.name}-{layer.name}")


@pytest.mark.parametrize(("row", "layer"), list(cells()))
def test_refusal_is_the_models_on_every_layer(row: Row, layer) -> None:
    L = layer()
    try:
        refused = row.setup(L)
        before = L.state()
        with pytest.raises(Exception) as info:
            refused()
        exc = info.value
        if issubclass(row.error, TvmError):
            assert isinstance(exc, TvmError), f"{layer.name}: {exc!r} is not a TvmError"
            if layer.checks_type:
                assert type(exc) is row.error, f"{layer.name}: {type(exc).__name__}, the model says {row.error.__name__}"
            assert exc.code == row.error.code, f"{layer.name}: code {exc.code}, the model says {row.error.code}"
        else:
            assert type(exc) is row.error, f"{layer.name}: {exc!r}"
        assert L.state() == before, f"{layer.name}: a refused operation changed the directory"
        if row.after is not None:
            row.after(L)
    finally:
        L.close()


def test_every_layer_runs_most_rows() -> None:
    """The table is not silently thin on any layer."""
    counts = {layer.name: sum(1 for p in cells() if p.values[1] is layer) for layer in LAYERS}
    assert counts["model"] == counts["host"] == len(ROWS)
    assert counts["raw-abi"] >= 10 and counts["guest-module"] >= len(ROWS) - 3
