"""What a C author reads (README.md, docs/guests.md, tvm.h) builds and runs as written.

A fresh-user trial worked from the docs alone: the freestanding build command
of docs/guests.md lacked ``-mbulk-memory`` (which the README's library build
uses), the README's list of what ``tvm-wasm guest build --web`` writes lacked
``README.md``, and nothing warned that a handle is meaningless outside the host
that handed it out.
"""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import pytest

from tvm_wasm.guest import build_module
from tvm_wasm.guest.instance import GuestInstance
from tvm_wasm.guest.web import write_package
from tvm_wasm.host.tvm_host import TvmHost
from tvm_wasm.sdk import clang
from tvm_wasm.sdk.c_header import generate as render_header

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text()
GUESTS = (REPO / "docs" / "guests.md").read_text()


def freestanding_commands(text: str) -> list[str]:
    """Every ``clang --target=wasm32 ...`` command (not wasm32-wasi) of a text, continuation lines joined."""
    joined = re.sub(r"\\\n\s*", " ", text)
    return [line.strip() for line in re.findall(r"clang --target=wasm32 [^\n]*", joined)]


def test_every_documented_freestanding_build_uses_the_library_flags() -> None:
    """README, docs/guests.md and tvm.h's own build line agree with ``sdk.clang.FLAGS['library']``."""
    sources = {"README.md": README, "docs/guests.md": GUESTS, "tvm.h": render_header()}
    found = 0
    for name, text in sources.items():
        for command in freestanding_commands(text):
            found += 1
            for flag in ("-nostdlib", "-mbulk-memory", "-Wl,--no-entry"):
                assert flag in command.split(), f"{name}: {command!r} lacks {flag}"
    assert found >= 6
    assert "-mbulk-memory" in clang.FLAGS["library"]


STRUCTS = r"""
#include <stdint.h>
#include <tvm.h>
typedef struct { uint32_t words[64]; } block_t;
__attribute__((export_name("run"))) uint32_t run(uint32_t n) {
  block_t zero = {0}, copy;                      /* a zeroed struct: memset */
  for (uint32_t i = 0; i < n && i < 64; i++) zero.words[i] = i + 1;
  copy = zero;                                   /* a struct copy: memcpy */
  int32_t r = tvm_create_region(TVM_OBJECT_ARENA, sizeof copy);
  uint64_t h = tvm_alloc(r, sizeof copy);
  if (tvm_write(h, (uint32_t)(uintptr_t)&copy, sizeof copy)) return 0;
  uint32_t sum = 0;
  for (uint32_t i = 0; i < 64; i++) sum += tvm_load_u32(h, 4 * i);
  return sum;
}
"""


@pytest.fixture
def guests_md_command(tmp_path: Path) -> list[str]:
    problem = clang.toolchain_problem("library")
    if problem is not None:
        pytest.skip(problem)
    (command,) = [c for c in freestanding_commands(GUESTS) if "hello_regions.c" in c]
    return shlex.split(command.split(" -I")[0])  # the flags before the include path and the sources


def test_the_guests_md_freestanding_command_builds_code_that_zeroes_and_copies_structs(tmp_path: Path,
                                                                                        guests_md_command) -> None:
    """As written it builds and runs on both deployments; without -mbulk-memory it cannot link (no libc memset)."""
    source = tmp_path / "structs.c"
    source.write_text(STRUCTS)
    include = f"-I{clang.get_include()}"
    out = tmp_path / "structs.wasm"
    subprocess.run([clang.clang(), *guests_md_command[1:], include, str(source), "-o", str(out)], check=True,
                   capture_output=True)
    wasm = out.read_bytes()
    with TvmHost(pools=1) as host:
        assert host.call(host.instantiate(wasm), "run", 10) == sum(range(1, 11))
    with GuestInstance(build_module(pools=1, max_pages=16)) as g:
        assert g.call(g.link(wasm), "run", 10) == sum(range(1, 11))
    without = [flag for flag in guests_md_command[1:] if flag != "-mbulk-memory"]
    done = subprocess.run([clang.clang(), *without, include, str(source), "-o", str(tmp_path / "no-bulk.wasm")],
                          capture_output=True, text=True, check=False)
    assert done.returncode != 0 and "undefined symbol: mem" in done.stderr


def test_the_readme_lists_every_file_guest_build_web_writes(tmp_path: Path) -> None:
    paragraph = README[README.index("**In a browser**"):]
    paragraph = paragraph[: paragraph.index("\n\n")]
    listed = set(re.findall(r"`([^`]+)`", paragraph))
    write_package(tmp_path, build_module(pools=1, max_pages=16))
    for item in tmp_path.iterdir():
        name = f"{item.name}/" if item.is_dir() else item.name
        assert name in listed, f"`tvm-wasm guest build --web` writes {name}, which the README's list lacks"


def test_the_handle_warning_is_where_c_authors_look() -> None:
    """README's `tvm-wasm run` section and docs/guests.md warn that handles do not cross hosts or runs."""
    run_section = README[README.index("## Running programs: `tvm-wasm run`"):]
    run_section = run_section[: run_section.index("\n## ")]
    for text in (run_section, GUESTS.replace("> ", "")):
        text = " ".join(text.split())
        assert "0x1000100000000" in text and "FileCheckpointStore" in text and "Persist data, not handles" in text
