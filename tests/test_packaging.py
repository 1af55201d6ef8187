"""The built wheel works on its own: installed into a fresh virtual environment, away from the
repository, it runs the demo, ``guest build`` (binary and the npm-layout web package), the
component path (WIT from the package) and the browser example.

Kept lean for the default suite: the wheel is built once per session with ``--no-deps``, and
the fresh environment (``venv --without-pip``) gets the pinned dependencies by a ``.pth``
line pointing at this environment's site-packages, which holds no ``tvm_wasm`` of its own
(the editable install's finder is not loaded from there). Every check runs with the working
directory outside the checkout, and first asserts that ``tvm_wasm`` comes from the wheel.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def _run(*args: str | Path, cwd: Path, env: dict[str, str] | None = None, timeout: float = 300) -> str:
    done = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(map(str, args))} exited {done.returncode}:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def _source_tree(target: Path) -> Path:
    """The checkout's files (tracked and new, not ignored) copied aside, so building leaves no trace."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, capture_output=True,
                            check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = REPO / name
        if not source.exists() and not source.is_symlink():
            continue  # deleted in the working tree
        dest = target / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():
            os.symlink(os.readlink(source), dest)
        else:
            shutil.copy2(source, dest)
    return target


@pytest.fixture(scope="session")
def installed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path | dict[str, str]]:
    root = tmp_path_factory.mktemp("packaging")
    source = _source_tree(root / "src")
    dist = root / "dist"
    _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", dist, source, cwd=root, timeout=600)
    wheel = next(dist.glob("tvm_wasm-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        shipped = set(archive.namelist())
    package_files = [name for name in (p.relative_to(source).as_posix() for p in (source / "tvm_wasm").rglob("*"))
                     if (source / name).is_file() and "__pycache__" not in name]
    missing = sorted(set(package_files) - shipped)
    assert missing == [], f"files of the package the wheel leaves out (add them to package-data): {missing}"
    venv = root / "venv"
    _run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=root)
    python = venv / "bin" / "python"
    site = Path(_run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=root).strip())
    (site / "_pinned_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run(sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "-q", wheel, cwd=root)
    env = {**os.environ, "PATH": f"{venv / 'bin'}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env.pop("PYTHONPATH", None)
    work = root / "work"
    work.mkdir()
    where = _run(python, "-c", "import tvm_wasm; print(tvm_wasm.__file__)", cwd=work, env=env).strip()
    assert Path(where).is_relative_to(venv), f"tvm_wasm imported from {where}, not from the installed wheel"
    return {"venv": venv, "python": python, "work": work, "env": env}


def test_the_installed_demo_runs(installed) -> None:
    out = _run(installed["venv"] / "bin" / "tvm-wasm", "demo", cwd=installed["work"], env=installed["env"])
    assert "demo OK" in out


def test_the_installed_guest_build_writes_a_module_and_a_web_package(installed) -> None:
    tvm = installed["venv"] / "bin" / "tvm-wasm"
    work = installed["work"]
    _run(tvm, "guest", "build", "--pools", "2", "-o", work / "guest.wasm", cwd=work, env=installed["env"])
    assert (work / "guest.wasm").read_bytes()[:4] == b"\0asm"
    _run(tvm, "guest", "build", "--pools", "1", "--browser", "--web", work / "web", cwd=work, env=installed["env"])
    for name in ("package.json", "tvm-guest.js", "guest.wasm", "example/index.html", "test/index.html"):
        assert (work / "web" / name).is_file(), f"{name} is missing from the web package built by the wheel"


def test_the_installed_sdk_ships_the_documented_examples(installed) -> None:
    """docs/guests.md builds hello_regions.c/.rs from `tvm-wasm sdk --examples`; the .rs finds tvm.rs beside it."""
    tvm = installed["venv"] / "bin" / "tvm-wasm"
    folder = Path(_run(tvm, "sdk", "--examples", cwd=installed["work"], env=installed["env"]).strip())
    assert folder.is_relative_to(installed["venv"])
    assert (folder / "hello_regions.c").is_file()
    assert '#[path = "../rust/tvm.rs"]' in (folder / "hello_regions.rs").read_text()
    assert (folder / ".." / "rust" / "tvm.rs").is_file()


COMPONENT = """
import sys
from pathlib import Path
from wasmtime.component import Component
from tvm_wasm import TvmHost
from tvm_wasm.host.component_build import build_proxy
with TvmHost(pools=1) as host:
    guest = host.instantiate_component(Component(host.engine, build_proxy(Path(sys.argv[1]))))
    region = guest.call("create-region", "object-arena", 4096, interface="manager")
    handle = guest.call("alloc", region, 16, interface="manager")
    print(region, host.region_info(region).capacity, host.list_regions()[0].used)
"""


def test_the_installed_component_path_finds_its_wit(installed) -> None:
    work = installed["work"]
    out = _run(installed["python"], "-c", COMPONENT, work / "components", cwd=work, env=installed["env"])
    assert out.split() == ["1", "4096", "16"]


def test_the_installed_web_package_runs_in_headless_chromium(installed) -> None:
    sys.path.insert(0, str(REPO / "tests" / "guest"))
    from web_harness import directory_assets, find_chromium, run_in_chromium

    chromium = find_chromium()
    if chromium is None:
        pytest.skip("no chromium binary found (Debian's chromium package; .ci/run installs it)")
    web = installed["work"] / "web-example"
    _run(installed["venv"] / "bin" / "tvm-wasm", "guest", "build", "--pools", "1", "--browser", "--web", web,
         cwd=installed["work"], env=installed["env"])
    report = run_in_chromium(chromium, files=directory_assets(web), page="/example/index.html?report=/result")
    assert report["log"].rstrip().endswith("done"), report["log"]
