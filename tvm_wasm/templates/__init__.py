"""Guest templates for component authors: one world, one source file per language.

``guest.wit`` is the world every template implements (package
``example:guest@0.1.0``, world ``guest``): it includes
``tvm:memory/imports@0.1.0`` and exports ``stash``, ``tour`` and ``repeat``.
:func:`write_template` lays a template out as a project folder::

    <out>/wit/world.wit                        the template's world
    <out>/wit/deps/tvm-memory-0.1.0/tvm.wit    the tvm:memory package (tvm_wasm.wit.write_deps)
    <out>/app.py | guest.js                    the guest's source

and :func:`build_template` runs the language's own toolchain on it, with the
command :func:`build_command` returns (the one the docs print).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from ..wit import write_deps

_HERE = Path(__file__).resolve().parent
WORLD = "example:guest/guest@0.1.0"
OUTPUT = "guest.wasm"


@dataclass(frozen=True)
class Template:
    language: str
    source: str  # the file copied next to wit/
    tool: str  # the command that builds it
    install: str  # how to get that command
    args: tuple[str, ...]  # the build command's arguments after the tool

    def files(self) -> list[Path]:
        """The files the template is made of (for content hashes)."""
        return [_HERE / "guest.wit", _HERE / self.language / self.source]


TEMPLATES: dict[str, Template] = {
    "python": Template(
        "python", "app.py", "componentize-py", "pip install componentize-py==0.25.1",
        ("-d", "wit", "-w", WORLD, "componentize", "app", "-o", OUTPUT),
    ),
    "javascript": Template(
        "javascript", "guest.js", "componentize-js", "npm install @bytecodealliance/componentize-js@0.23.0 @bytecodealliance/preview2-shim@0.25.0",
        # wasi:http is left out: a tvm:memory guest has no use for it, and the host adds only WASI preview 2.
        ("guest.js", "--wit", "wit", "--world-name", WORLD, "--disable", "http", "fetch-event", "-o", OUTPUT),
    ),
}


class TemplateBuildError(RuntimeError):
    """The template's toolchain is missing or failed (the message carries its output)."""


def template(language: str) -> Template:
    try:
        return TEMPLATES[language]
    except KeyError:
        raise ValueError(f"no template for {language!r}; choose one of {', '.join(TEMPLATES)}") from None


def build_command(language: str) -> list[str]:
    """The command that builds the template in its project folder."""
    spec = template(language)
    return [spec.tool, *spec.args]


def write_template(language: str, out: str | os.PathLike[str], *, force: bool = False) -> Path:
    """Lay the template out in ``out`` (created if missing) and return ``out``.

    ``wit/deps`` (the tvm:memory package) is always written afresh. The world
    (``wit/world.wit``) and the source file are the author's once written: an
    existing one is kept, so running this again (or ``--build``) never loses
    edits, unless ``force`` replaces them with the template's.
    """
    spec = template(language)
    root = Path(out)
    (root / "wit").mkdir(parents=True, exist_ok=True)
    write_deps(root / "wit" / "deps")
    for source, target in ((_HERE / "guest.wit", root / "wit" / "world.wit"),
                           (_HERE / language / spec.source, root / spec.source)):
        if force or not target.exists():
            shutil.copyfile(source, target)
    return root


def kept_files(language: str, out: str | os.PathLike[str]) -> list[Path]:
    """The author's files in ``out`` that differ from the template (what ``write_template`` keeps)."""
    spec = template(language)
    root = Path(out)
    pairs = ((_HERE / "guest.wit", root / "wit" / "world.wit"), (_HERE / language / spec.source, root / spec.source))
    return [t for s, t in pairs if t.is_file() and t.read_bytes() != s.read_bytes()]


def find_tool(name: str) -> str | None:
    """``name`` installed beside this interpreter, else on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.is_file():
        return str(beside)
    return shutil.which(name)


def build_template(language: str, project: str | os.PathLike[str], *, tool: str | None = None) -> Path:
    """Build the template laid out in ``project``; returns the component's path.

    ``tool`` overrides where the toolchain's command is found (default: the
    project's ``node_modules/.bin``, the current folder's, beside this
    interpreter, then PATH). Raises
    ``TemplateBuildError`` when it is missing or fails.
    """
    spec = template(language)
    # `npm install` in the project folder, or in the folder the command runs from
    local = [d / "node_modules" / ".bin" / spec.tool for d in (Path(project), Path.cwd())]
    command = tool or next((str(p) for p in local if p.is_file()), None) or find_tool(spec.tool)
    if command is None:
        raise TemplateBuildError(f"{spec.tool} not found: {spec.install}")
    done = subprocess.run([command, *spec.args], cwd=project, capture_output=True, text=True, check=False)
    output = Path(project) / OUTPUT
    if done.returncode != 0 or not output.is_file():
        message = (done.stderr.strip() or done.stdout.strip())[-4000:]
        raise TemplateBuildError(f"{spec.tool} failed (exit {done.returncode}):\n{message}")
    return output
