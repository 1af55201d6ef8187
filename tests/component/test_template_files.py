"""Writing a template never loses the author's edits (no toolchain needed)."""

from __future__ import annotations

import pytest

from tvm_wasm.cli import main
from tvm_wasm.templates import TEMPLATES, kept_files, template, write_template


@pytest.mark.parametrize("language", sorted(TEMPLATES))
def test_an_edited_source_and_world_survive_a_second_write(language, tmp_path):
    write_template(language, tmp_path)
    source = tmp_path / template(language).source
    world = tmp_path / "wit" / "world.wit"
    source.write_text(source.read_text() + "\n// the author's edit\n")
    world.write_text(world.read_text() + "\n// the author's world\n")
    assert kept_files(language, tmp_path) == [world, source]

    write_template(language, tmp_path)
    assert source.read_text().endswith("// the author's edit\n")
    assert world.read_text().endswith("// the author's world\n")
    assert (tmp_path / "wit" / "deps").is_dir()

    write_template(language, tmp_path, force=True)
    assert "the author's edit" not in source.read_text()
    assert kept_files(language, tmp_path) == []


def test_the_command_says_what_it_kept_and_force_replaces(tmp_path, capsys):
    assert main(["template", "python", str(tmp_path)]) == 0
    app = tmp_path / template("python").source
    app.write_text(app.read_text() + "\n# edited\n")
    assert main(["template", "python", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"kept your {app}" in out and app.read_text().endswith("# edited\n")
    assert main(["template", "python", str(tmp_path), "--force"]) == 0
    assert "# edited" not in app.read_text()
