"""The README's component examples run as written: the WAT-built scenario guest, and the
host driver of the componentize-py template."""

from __future__ import annotations

import re
from pathlib import Path

from tvm_wasm.host.component_build import build_component, core_abi

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_block(containing: str) -> str:
    """The python block of the component section that contains ``containing``."""
    text = README.read_text()
    start = text.index("## Guests with component tooling")
    end = text.index("\n## ", start + 1)
    blocks = re.findall(r"```python\n(.*?)```", text[start:end], re.DOTALL)
    (found,) = [block for block in blocks if containing in block]
    return found


def test_readme_component_example_runs(tmp_path: Path):
    from wit_guests import SCENARIO_WIT, scenario_wat

    abi = core_abi("scenario", tmp_path, extra_wit=SCENARIO_WIT)
    component = tmp_path / "guest.component.wasm"
    component.write_bytes(build_component(scenario_wat(abi), "scenario", tmp_path, extra_wit=SCENARIO_WIT))
    spill = tmp_path / "spill"
    spill.mkdir()
    code = readme_block('"guest.component.wasm"')
    code = code.replace('"guest.component.wasm"', repr(str(component))).replace('"/tmp/spill"', repr(str(spill)))
    scope: dict[str, object] = {}
    exec(compile(code, "README.md", "exec"), scope)  # noqa: S102 - running the documented example is the test
    assert scope["guest"].call("run") == 0  # type: ignore[attr-defined]


def test_readme_template_driver_runs(python_guest_path: Path, capsys):
    code = readme_block('"guest.wasm"').replace('"guest.wasm"', repr(str(python_guest_path)))
    scope: dict[str, object] = {}
    exec(compile(code, "README.md", "exec"), scope)  # noqa: S102
    out = capsys.readouterr().out  # the stale handle's words, from core.handle_faults
    assert re.search(r"refused: read\(r(\d+)@2\+0\) of 3 byte\(s\): region r\1 at generation 1 \[", out), out
    assert scope["read"].name.full == "repeat"  # type: ignore[attr-defined]
