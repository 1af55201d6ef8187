"""The README's guest-module example runs as written; the ES module ships in the package."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def section_code(heading: str, language: str) -> str:
    text = README.read_text()
    start = text.index(heading)
    match = re.compile(rf"```{language}\n(.*?)```", re.DOTALL).search(text, start)
    assert match, f"no {language} block after {heading!r}"
    return match.group(1)


def test_readme_python_example_runs():
    code = section_code("## Guests with no host", "python")
    code = code.replace("build_module(pools=4)", "build_module(pools=4, max_pages=64)")  # smaller, same code path
    exec(compile(code, "README.md", "exec"), {})  # noqa: S102 - running the documented example is the test


def test_the_es_module_ships_in_the_package():
    js = resources.files("tvm_wasm.guest").joinpath("js/tvm-guest.js").read_text()
    for name in ("export async function instantiate", "export class TvmGuest", "export class TvmError",
                 "regionBytes", "handleBytes", "link("):
        assert name in js
    readme_js = section_code("## Guests with no host", "js")
    for call in re.findall(r"g\.(\w+)\(", readme_js):
        assert re.search(rf"\n  (async )?{call}\(", js), f"README uses g.{call}(), which tvm-guest.js lacks"
