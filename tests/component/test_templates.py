"""The guest templates, built by their own toolchains, run end to end against TvmHost."""

from __future__ import annotations

import pytest
import wasmtime
from wasmtime.component import Component, Variant

from tvm_wasm import Handle, StaleHandle
from tvm_wasm.host.component_errors import TransferTooLarge, WasiNotConfigured
from tvm_wasm.host.component_values import from_metrics, to_handle, to_metrics

MESSAGE = b"hello, regions!"


def test_template_runs_end_to_end(host, template_guest: tuple[str, Component]):
    """create, alloc, write, read, copy, describe, metrics and a handled error, seen from both sides."""
    language, component = template_guest
    guest = host.instantiate_component(component, wasi=True)
    report = guest.call("tour", MESSAGE, raise_errors=True)
    steps = report.steps
    assert [line.split(":")[0] for line in steps] == [
        "create", "alloc", "write", "read", "copy", "describe", "metrics", "error handled",
    ], (language, steps)
    n = len(MESSAGE)
    region = report.region
    assert steps[0] == f"create: region {region}"
    assert steps[5] == f"describe: object-arena, {2 * n} of 4096 bytes used"
    assert steps[7].startswith("error handled: stale-handle")
    # What the host sees is what the guest reported.
    copy = report.copy
    assert isinstance(copy, Handle) and copy.region_id == region and host.read(copy, n) == MESSAGE
    metrics = host.metrics(region)
    assert steps[6] == f"metrics: {metrics.bytes_written} bytes written, {metrics.bytes_read - n} read"
    assert metrics.bytes_written == 2 * n  # the write and the copy's
    assert host.region_info(region).used == 2 * n
    # Values cross in the project's own types.
    stashed = guest.call("stash", b"abc", raise_errors=True)
    assert host.read(stashed, 3) == b"abc"
    assert guest.call("repeat", "read", stashed, stashed, 3, 4, raise_errors=True) == 4 * ord("a")
    target = host.alloc(region, 3)
    assert guest.call("repeat", "copy-region", stashed, target, 3, 2, raise_errors=True) == 0
    assert host.read(target, 3) == b"abc"
    # A guest's err(tvm-error): returned as a value, or raised as the matching TvmError on request.
    stale = Handle(stashed.region_id, stashed.generation + 1, 0)
    returned = guest.call("repeat", "read", stale, stashed, 3, 1)
    assert isinstance(returned, Variant) and returned.tag == "stale-handle"
    assert to_handle(guest.call("stash", b"raw")) != stashed  # records as wasmtime-py lifts them
    with pytest.raises(StaleHandle) as raised:
        guest.call("repeat", "read", stale, stashed, 3, 1, raise_errors=True)
    assert raised.value.region_id == stale.region_id and raised.value.generation == stale.generation
    with pytest.raises(TransferTooLarge):
        guest.call("repeat", "read", stashed, stashed, 3 << 20, 1, raise_errors=True)
    assert to_metrics(from_metrics(metrics)) == metrics  # the converters round-trip


def test_template_without_wasi_is_refused_before_it_runs(host, template_guest: tuple[str, Component]):
    _, component = template_guest
    with pytest.raises(WasiNotConfigured, match="wasi=True"):
        host.instantiate_component(component)
    assert len(host) == 0  # nothing ran


def test_template_guests_share_regions(host, template_guest: tuple[str, Component]):
    _, component = template_guest
    writer = host.instantiate_component(component, wasi=True)
    reader = host.instantiate_component(component, wasi=True)
    stashed = writer.call("stash", b"shared", raise_errors=True)
    assert reader.call("repeat", "read", stashed, stashed, 6, 1, raise_errors=True) == ord("s")


def test_a_wasi_config_serves_one_guest(host, python_guest, tmp_path):
    config = wasmtime.WasiConfig()
    config.stdout_file = str(tmp_path / "out.txt")  # a setter property in wasmtime-py
    guest = host.instantiate_component(python_guest, wasi=config)
    assert host.read(guest.call("stash", b"cfg", raise_errors=True), 3) == b"cfg"
    with pytest.raises(ValueError, match="one WasiConfig per guest"):
        host.instantiate_component(python_guest, wasi=config)
    with pytest.raises(TypeError, match="wasi must be"):
        host.instantiate_component(python_guest, wasi="yes")
