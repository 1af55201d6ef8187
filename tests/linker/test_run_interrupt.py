"""Ctrl-C stops ``tvm-wasm run`` while the guest spins in wasm (epoch interruption): exit 130,
"interrupted", no traceback, for a guest on the host, the same guest ``--inline`` and a module
linked ``--target guest``; and ``TvmHost(interruptible=True).interrupt()`` from Python."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import wasmtime
from c_guests import WASI_PRELUDE_C, clang

from tvm_wasm import Interrupted, RegionKind, TvmHost
from tvm_wasm.host.interrupt import is_interrupt, sigint_interrupts
from tvm_wasm.linker import link

SPIN_C = WASI_PRELUDE_C + r"""
/* Prints "spinning" once its region is written, then loops in wasm for ever. */
int main(void) {
  int64_t h = tvm_alloc(tvm_create_region(1, 4096), 64);
  tvm_store_u32(h, 0, 1);
  printf("spinning\n");
  fflush(stdout);
  uint32_t s = 0;
  for (;;) s += tvm_load_u32(h, 0);
  return (int)s;
}
"""

SPIN_WAT = """(module
  (func (export "spin") (param i32) (result i32)
    (loop $l (local.set 0 (i32.add (local.get 0) (i32.const 1))) (br $l)) (local.get 0))
  (func (export "seven") (result i32) (i32.const 7)))
"""


@pytest.fixture(scope="module")
def spin(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("spin")
    plain = folder / "spin.wasm"
    wasm = clang(SPIN_C, plain, target="wasm32-wasi")
    linked = folder / "spin_guest.wasm"
    linked.write_bytes(link(wasm, target="guest", pools=1, max_pages=16).wasm)
    return {"host": plain, "guest": linked}


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # a background test run may ignore SIGINT; the CLI must not


def _interrupt_run(*args: str) -> tuple[int, str, float]:
    """Start ``tvm-wasm run ARGS``, wait for "spinning", send SIGINT; (exit status, stderr, seconds to exit)."""
    proc = subprocess.Popen([sys.executable, "-m", "tvm_wasm.cli", "run", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=_default_sigint)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # printed just before the endless loop
        assert line == "spinning\n", (line, proc.stderr.read() if proc.poll() is not None else "")  # type: ignore[union-attr]
        time.sleep(0.3)  # well inside the loop
        assert proc.poll() is None, "the guest stopped by itself"
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=10)
        return proc.returncode, err, time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("variant", ["host", "inline", "guest"])
def test_ctrl_c_stops_a_guest_looping_in_wasm(spin, variant, binaryen):
    args = ["--inline", str(spin["host"])] if variant == "inline" else [str(spin[variant])]
    status, err, seconds = _interrupt_run(*args)
    assert status == 130, err
    assert err.strip() == "tvm-wasm: error: interrupted", err
    assert "Traceback" not in err
    assert seconds < 5


def test_stats_json_records_the_interrupt(spin, tmp_path):
    stats = tmp_path / "stats.json"
    status, err, _ = _interrupt_run("--stats-json", str(stats), str(spin["host"]))
    assert status == 130, err
    document = json.loads(stats.read_text())
    assert (document["exit_status"], document["error"]) == (130, "interrupted")
    assert len(document["regions"]) == 1  # the guest's region survived the interrupt


def test_interrupt_stops_a_python_call_and_the_host_keeps_working():
    host = TvmHost(interruptible=True)
    instance = host.instantiate(SPIN_WAT)
    timer = threading.Timer(0.2, host.interrupt)
    timer.start()
    started = time.monotonic()
    with pytest.raises(Interrupted) as caught:
        host.call(instance, "spin", 0)
    timer.join()
    assert is_interrupt(caught.value) and is_interrupt(caught.value.__cause__)
    assert time.monotonic() - started < 5
    assert host.call(instance, "seven") == 7  # the next call is not interrupted
    rid = host.create_region(RegionKind.SCRATCH, 4096)
    handle = host.alloc(rid, 8)
    host.write(handle, b"survived")
    assert host.read(handle, 8) == b"survived"


def test_a_plain_host_cannot_be_interrupted():
    host = TvmHost()
    with pytest.raises(ValueError, match="interruptible=True"):
        host.interrupt()
    assert host.call(host.instantiate(SPIN_WAT), "seven") == 7


def test_sigint_interrupts_a_python_call_on_the_main_thread():
    host = TvmHost(interruptible=True)
    instance = host.instantiate(SPIN_WAT)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # as in an interactive program
    try:
        timer = threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT))
        timer.start()
        with pytest.raises((KeyboardInterrupt, Interrupted)) as caught, sigint_interrupts(host.engine):
            host.call(instance, "spin", 0)
        timer.join()
    finally:
        signal.signal(signal.SIGINT, previous)
    assert isinstance(caught.value, KeyboardInterrupt) or is_interrupt(caught.value)
    assert host.call(instance, "seven") == 7
    assert signal.set_wakeup_fd(-1) == -1  # the wakeup fd was handed back
