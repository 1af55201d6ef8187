"""Open a page in headless Chromium, served from memory on 127.0.0.1, and collect what it reports.

Used by the browser tests and by the browser side of the guest benchmarks
(``bench_reuse --chromium``): Debian's ``chromium``, headless, no sandbox,
no GPU, no network services, a fresh profile per run. The page posts one
JSON report to ``/result``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


@contextmanager
def serve(files: dict[str, tuple[str, bytes]]) -> Iterator[tuple[str, dict, threading.Event]]:
    """An HTTP server on 127.0.0.1 (a free port) serving ``files``; POST /result fills the report."""
    report: dict = {}
    done = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            entry = files.get(self.path.split("?", 1)[0])
            if entry is None:
                self.send_error(404)
                return
            kind, body = entry
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            if self.path == "/result":
                report.update(json.loads(body))
                done.set()
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", report, done
    finally:
        server.shutdown()
        server.server_close()


CONTENT_TYPES = {".html": "text/html", ".js": "text/javascript", ".wasm": "application/wasm", ".json": "application/json",
                 ".md": "text/markdown", ".ts": "text/plain", ".c": "text/plain"}


def directory_assets(root: Path) -> dict[str, tuple[str, bytes]]:
    """Every file under ``root``, served at its relative path (``.wasm`` as application/wasm)."""
    return {
        "/" + path.relative_to(root).as_posix(): (CONTENT_TYPES.get(path.suffix, "application/octet-stream"), path.read_bytes())
        for path in sorted(root.rglob("*")) if path.is_file()
    }


def run_in_chromium(chromium: str, files: dict[str, tuple[str, bytes]], timeout: float = 90.0, page: str = "") -> dict:
    """Open ``page`` (default ``/``) of ``files`` in headless Chromium with a fresh profile, and wait for
    the report it posts to ``/result`` (``TimeoutError`` with the browser's log if none comes)."""
    with serve(files) as (url, report, done), tempfile.TemporaryDirectory(prefix="tvm-chromium-") as profile:
        url = url + page.lstrip("/")
        log = Path(profile) / "chromium.log"
        with open(log, "wb") as sink:
            browser = subprocess.Popen(
                [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}/data", url],
                stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            )
            try:
                finished = done.wait(timeout)
            finally:
                stop(browser)
        if not finished:
            tail = log.read_text(errors="replace")[-3000:]
            raise TimeoutError(f"no report from Chromium within {timeout:.0f} s; its log ends with:\n{tail}")
        return dict(report)


def stop(process: subprocess.Popen) -> None:
    """End the browser we started and its children (its own session), politely first."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(10)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait(10)
