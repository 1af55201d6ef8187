"""The README's component example runs as written (with the scenario guest as its component)."""

from __future__ import annotations

import re
from pathlib import Path

from tvm_wasm.host.component_build import build_component, core_abi

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_component_example_runs(tmp_path: Path):
    text = README.read_text()
    start = text.index("## Guests with component tooling")
    match = re.compile(r"```python\n(.*?)```", re.DOTALL).search(text, start)
    assert match
    from wit_guests import SCENARIO_WIT, scenario_wat

    abi = core_abi("scenario", tmp_path, extra_wit=SCENARIO_WIT)
    component = tmp_path / "guest.component.wasm"
    component.write_bytes(build_component(scenario_wat(abi), "scenario", tmp_path, extra_wit=SCENARIO_WIT))
    spill = tmp_path / "spill"
    spill.mkdir()
    code = match.group(1).replace('"guest.component.wasm"', repr(str(component))).replace('"/tmp/spill"', repr(str(spill)))
    scope: dict[str, object] = {}
    exec(compile(code, "README.md", "exec"), scope)  # noqa: S102 - running the documented example is the test
    assert scope["guest"].call("run") == 0  # type: ignore[attr-defined]
