"""One fault, one error: a failed typed access raises the same class with the same message on every layer.

The message comes from the ABI table (``TYPED_ACCESS_ERROR``, ``REGION_STATES``): the host's runtime
(a guest on ``TvmHost``, and the same guest linked with the data plane inlined), the self-contained
module's embedders (``GuestInstance`` running a module linked at run time, ``TvmHost.call`` running
the guest linked ``--target guest``) and ``tvm-guest.js`` (fed the trap-cause globals the module
recorded for the same fault) all say ``load_u32(r1@1+0) accessing 4 byte(s) at offset 0x0: region r1
was destroyed [region=1, gen=1, offset=0x0, len=4]`` for a destroyed region's handle.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from importlib import resources
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "host"))

from host_guests import require_binaryen  # noqa: E402
from tvm_wasm import Freelist, Handle, OutOfBounds, RegionKind, RegionNotFound, StaleHandle, TvmError, TvmHost  # noqa: E402
from tvm_wasm.abi.table import REGION_STATES, TYPED_ACCESS_ERROR  # noqa: E402
from tvm_wasm.guest import build_module  # noqa: E402
from tvm_wasm.guest.instance import GuestInstance  # noqa: E402
from tvm_wasm.linker import link  # noqa: E402

CAPACITY = 4096
USER = """(module
  (import "tvm" "load_u32" (func $load_u32 (param i64 i32) (result i32)))
  (import "tvm" "store_u16" (func $store_u16 (param i64 i32 i32)))
  (import "tvm" "memory" (memory 1))
  (func (export "load") (param i64 i32) (result i32) local.get 0 local.get 1 call $load_u32)
  (func (export "store") (param i64 i32) local.get 0 local.get 1 i32.const 7 call $store_u16))"""

# fault -> (what to do to region 1 first, the handle, the relative offset, the class)
FAULTS = {
    "destroyed": ("destroy", Handle(1, 1, 0), 0, StaleHandle),
    "never created": (None, Handle(7, 1, 16), 4, RegionNotFound),
    "stale after compaction": ("compact", Handle(1, 1, 8), 0, StaleHandle),
    "out of bounds": (None, Handle(1, 1, CAPACITY - 1), 0, OutOfBounds),
}


class HostLayer:
    """A guest on TvmHost: the runtime's error path (``inline``: the data plane linked into the guest)."""

    def __init__(self, inline: bool = False) -> None:
        self.host = TvmHost(pools=1)
        self.guest = self.host.instantiate(USER.replace('(import "tvm" "memory" (memory 1))',
                                                        '(memory (export "memory") 1)'), inline=inline)

    def region(self) -> int:
        return self.host.create_region(RegionKind.OBJECT_ARENA, CAPACITY, allocator=Freelist())

    def destroy(self, region_id: int) -> None:
        self.host.destroy_region(region_id)

    def compact(self, region_id: int) -> None:
        self.host.compact_region(region_id)

    def call(self, name: str, *args: int) -> object:
        return self.host.call(self.guest, name, *args)

    def close(self) -> None:
        self.host.close()


class LinkedGuestOnHost(HostLayer):
    """``link --target guest``: the runtime inside the guest; ``TvmHost.call`` reads its trap-cause globals."""

    def __init__(self) -> None:
        self.host = TvmHost(pools=1)
        user = USER.replace('(import "tvm" "memory" (memory 1))', _CONTROL + '(memory (export "memory") 1)')
        linked = link(user, target="guest", pools=1, max_pages=16)
        self.guest = self.host.instantiate(linked.wasm)

    def region(self) -> int:
        return int(self.call("make", CAPACITY))  # type: ignore[arg-type]

    def destroy(self, region_id: int) -> None:
        assert self.call("kill", region_id) == 0

    def compact(self, region_id: int) -> None:
        assert self.call("squeeze", region_id) == 0


_CONTROL = """(import "tvm" "create_region_with" (func $create (param i32 i32 i32 i32) (result i32)))
  (import "tvm" "destroy_region" (func $destroy (param i32) (result i32)))
  (import "tvm" "compact_region" (func $compact (param i32) (result i32)))
  (func (export "make") (param i32) (result i32) i32.const 1 local.get 0 i32.const 1 i32.const 0 call $create)
  (func (export "kill") (param i32) (result i32) local.get 0 call $destroy)
  (func (export "squeeze") (param i32) (result i32) local.get 0 call $compact)
  """


class GuestLayer:
    """The self-contained module, a user module linked at run time (``GuestInstance.link``)."""

    def __init__(self) -> None:
        self.g = GuestInstance(build_module(pools=1, max_pages=16))
        self.user = self.g.link(USER)

    def region(self) -> int:
        return self.g.create_region(RegionKind.OBJECT_ARENA, CAPACITY, allocator=Freelist())

    def destroy(self, region_id: int) -> None:
        self.g.destroy_region(region_id)

    def compact(self, region_id: int) -> None:
        self.g.compact_region(region_id)

    def call(self, name: str, *args: int) -> object:
        return self.g.call(self.user, name, *args)

    def close(self) -> None:
        self.g.close()


def _host_inline() -> HostLayer:
    require_binaryen()
    return HostLayer(inline=True)


def _linked_guest() -> HostLayer:
    require_binaryen()
    return LinkedGuestOnHost()


LAYERS: dict[str, Callable[[], object]] = {
    "host": HostLayer, "host inline": _host_inline, "linked guest on host": _linked_guest, "guest": GuestLayer,
}


def _fault(layer: object, fault: str, access: str) -> TvmError:
    setup, handle, off, _ = FAULTS[fault]
    region_id = layer.region()  # type: ignore[attr-defined]
    assert region_id == 1
    if setup == "compact":
        layer.compact(region_id)  # type: ignore[attr-defined]
    elif setup == "destroy":
        layer.destroy(region_id)  # type: ignore[attr-defined]
    with pytest.raises(TvmError) as info:
        layer.call(access, handle.to_i64(), off)  # type: ignore[attr-defined]
    return info.value


def _expected(fault: str, access: str) -> str:
    _, handle, off, _ = FAULTS[fault]
    name, width = ("load_u32", 4) if access == "load" else ("store_u16", 2)
    state = {"destroyed": REGION_STATES["destroyed"].format(region=1),
             "never created": REGION_STATES["absent"].format(region=7),
             "stale after compaction": REGION_STATES["live"].format(region=1, generation=2),
             "out of bounds": REGION_STATES["live"].format(region=1, generation=1)}[fault]
    accessed = handle.offset + off
    context = f"region={handle.region_id}, gen={handle.generation}, offset={accessed:#x}, len={width}"
    if state.startswith("region r1 at"):
        context += f", capacity={CAPACITY}"
    message = TYPED_ACCESS_ERROR.format(function=name, handle=handle, width=width, offset=f"{accessed:#x}", state=state)
    return f"{message} [{context}]"


@pytest.mark.parametrize("access", ["load", "store"])
@pytest.mark.parametrize("fault", list(FAULTS))
@pytest.mark.parametrize("layer_name", list(LAYERS))
def test_same_class_and_message_on_every_layer(layer_name: str, fault: str, access: str) -> None:
    layer = LAYERS[layer_name]()
    try:
        error = _fault(layer, fault, access)
    finally:
        layer.close()  # type: ignore[attr-defined]
    assert type(error) is FAULTS[fault][3]
    assert str(error) == _expected(fault, access)


def test_the_destroyed_wording_reads_well() -> None:
    assert _expected("destroyed", "load") == ("load_u32(r1@1+0) accessing 4 byte(s) at offset 0x0: region r1 was "
                                              "destroyed [region=1, gen=1, offset=0x0, len=4]")


def test_tvm_guest_js_words_the_trap_cause_the_same(tmp_path: Path) -> None:
    """tvm-guest.js, given the trap-cause globals the module recorded for each fault, throws the same error."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("no node binary (Debian's nodejs package)")
    causes, expected = [], []
    for fault in FAULTS:
        for access in ("load", "store"):
            layer = GuestLayer()
            try:
                error = _fault(layer, fault, access)
                causes.append(layer.g.trap_cause())
            finally:
                layer.close()
            expected.append([type(error).__name__, str(error)])
    source = resources.files("tvm_wasm.guest").joinpath("js/tvm-guest.js").read_text()
    (tmp_path / "tvm-guest.mjs").write_text(source)
    script = tmp_path / "probe.mjs"
    script.write_text('import * as tvm from "./tvm-guest.mjs";\n' + f"""
const causes = {json.dumps(causes)};
const types = {{ trap_handle: "i64", trap_offset: "i64", trap_capacity: "i64" }};
const found = causes.map((cause) => {{
  const exports = {{}};
  for (const [name, value] of Object.entries(cause)) {{
    const type = types[name] ?? "i32";
    exports[name] = new WebAssembly.Global({{ value: type, mutable: true }}, type === "i64" ? BigInt(value) : value);
  }}
  const error = tvm.TvmGuest.prototype.trapError.call({{ exports }}, new WebAssembly.RuntimeError("unreachable"),
                                                     cause.trap_seq - 1);
  return [error.name, error.message];
}});
console.log(JSON.stringify(found));
""")
    done = subprocess.run([node, str(script)], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == expected
