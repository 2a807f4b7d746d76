"""`streamlit run app.py` on a free localhost port with a data folder of its own, and the
Chromium that drives it: shared by the browser tests and benchmarks/bench_pages.py."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


class AppDidNotStart(RuntimeError):
    """The server exited or never answered its health check; the message ends with its log."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_app(
    home: Path, log: Path, seconds: float = 90, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen, str]:
    """Start the app for the data folder ``home`` (output to ``log``, more environment in
    ``env``) and wait until it is healthy; returns the process and its URL.

    Raises:
        AppDidNotStart: with the last lines of the log.
    """
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        "app.py",
        "--server.headless",
        "true",
        "--server.port",
        str(port),
        "--server.address",
        "127.0.0.1",
        "--browser.gatherUsageStats",
        "false",
        "--server.fileWatcherType",
        "none",
    ]
    with log.open("w") as output:
        process = subprocess.Popen(
            command,
            cwd=PROJECT,
            env={**os.environ, "SAMESAME_HOME": str(home), **(env or {})},
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AppDidNotStart(
                f"streamlit exited with {process.returncode}:\n{log.read_text()[-3000:]}"
            )
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as reply:
                if reply.read().strip() == b"ok":
                    return process, url
        except OSError:
            pass
        time.sleep(0.5)
    stop_app(process)
    raise AppDidNotStart(
        f"streamlit did not become healthy in {seconds} s:\n{log.read_text()[-3000:]}"
    )


def stop_app(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
