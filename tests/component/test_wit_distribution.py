"""The WIT and the guest templates ship in the package, and the CLI writes them out."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

import tvm_wasm
from tvm_wasm import templates
from tvm_wasm.cli import main
from tvm_wasm.host.component_build import ComponentBuildError, run_wasm_tools
from tvm_wasm.wit import DEPS_FOLDER, wit_dir, write_deps

REPO = Path(__file__).resolve().parents[2]

APP_WIT = """package local:app;

world app {
    include tvm:memory/imports@0.1.0;
    export run: func() -> u32;
}
"""


def test_wit_dir_is_inside_the_package():
    folder = tvm_wasm.wit_dir()
    assert folder == wit_dir() and folder.is_relative_to(Path(tvm_wasm.__file__).parent)
    assert (folder / "tvm.wit").read_text().startswith("/// tvm-wasm's typed")
    assert not (REPO / "wit").exists(), "one copy of the WIT: the package's"


def test_deps_layout_resolves_a_world_that_includes_imports(tmp_path: Path):
    root = tmp_path / "wit"
    root.mkdir()
    (root / "app.wit").write_text(APP_WIT)
    package = write_deps(root / "deps")
    assert package == root / "deps" / DEPS_FOLDER and (package / "tvm.wit").is_file()
    run_wasm_tools("component", "embed", root, "--world", "app", "--dummy", "-o", tmp_path / "core.wasm")
    run_wasm_tools("component", "new", tmp_path / "core.wasm", "-o", tmp_path / "app.wasm")
    # The version is part of the name: without it the package is not found (documented).
    (root / "app.wit").write_text(APP_WIT.replace("imports@0.1.0", "imports"))
    with pytest.raises(ComponentBuildError, match="package"):
        run_wasm_tools("component", "embed", root, "--world", "app", "--dummy", "-o", tmp_path / "x.wasm")


def test_write_deps_replaces_its_own_folder_only(tmp_path: Path):
    (tmp_path / "wasi-cli-0.2.0").mkdir()
    write_deps(tmp_path)
    (tmp_path / DEPS_FOLDER / "stale.wit").write_text("old")
    write_deps(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([DEPS_FOLDER, "wasi-cli-0.2.0"])
    assert [p.name for p in (tmp_path / DEPS_FOLDER).iterdir()] == ["tvm.wit"]


def test_cli_wit_prints_or_writes(tmp_path: Path, capsys):
    assert main(["wit"]) == 0
    assert "package tvm:memory@0.1.0;" in capsys.readouterr().out
    assert main(["wit", "--out", str(tmp_path / "deps")]) == 0
    assert (tmp_path / "deps" / DEPS_FOLDER / "tvm.wit").read_bytes() == (wit_dir() / "tvm.wit").read_bytes()


@pytest.mark.parametrize("language", sorted(templates.TEMPLATES))
def test_cli_template_lays_out_a_project(language: str, tmp_path: Path, capsys):
    assert main(["template", language, str(tmp_path)]) == 0
    out = capsys.readouterr().out
    spec = templates.template(language)
    assert " ".join(templates.build_command(language)) in out
    assert (tmp_path / spec.source).is_file() and (tmp_path / "wit" / "world.wit").is_file()
    # The template's world resolves against the shipped package (the toolchain is tested elsewhere).
    run_wasm_tools("component", "embed", tmp_path / "wit", "--world", templates.WORLD, "--dummy",
                   "-o", tmp_path / "core.wasm")


def test_a_missing_toolchain_is_a_clear_error(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(templates, "find_tool", lambda name: None)
    templates.write_template("python", tmp_path)
    with pytest.raises(templates.TemplateBuildError, match="pip install componentize-py"):
        templates.build_template("python", tmp_path)
    assert main(["template", "python", str(tmp_path), "--build"]) == 1


def test_package_data_covers_the_wit_and_the_templates():
    """Every file the WIT path and the templates need matches pyproject's package-data globs."""
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    globs = config["tool"]["setuptools"]["package-data"]["tvm_wasm"]
    package = Path(tvm_wasm.__file__).parent
    needed = [*wit_dir().glob("*.wit"), *(f for spec in templates.TEMPLATES.values() for f in spec.files())]
    for path in needed:
        relative = path.relative_to(package)
        assert any(relative.match(g) or Path("x", relative).match(g) for g in globs), relative


def test_build_finds_a_project_local_node_modules(tmp_path: Path):
    """`npm install` in the project, then `tvm-wasm template javascript DIR --build`."""
    templates.write_template("javascript", tmp_path)
    fake = tmp_path / "node_modules" / ".bin" / "componentize-js"
    fake.parent.mkdir(parents=True)
    fake.write_text('#!/bin/sh\necho "$@" > args.txt\nprintf built > guest.wasm\n')
    fake.chmod(0o755)
    assert templates.build_template("javascript", tmp_path).read_text() == "built"
    assert (tmp_path / "args.txt").read_text().split() == list(templates.TEMPLATES["javascript"].args)
