"""``app``: start the Streamlit app, from a checkout or from an installed package."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from core.errors import SameSameError

#: The folder that holds ``core/``: a checkout, or site-packages after ``pip install``.
_ROOT = Path(__file__).resolve().parents[2]


def add_commands(sub) -> None:
    p = sub.add_parser(
        "app",
        help="start the Streamlit app (streamlit run app.py) and print its local address",
        description="Start the Streamlit app. Options after the command go to `streamlit run`, "
        "e.g. `app --server.port 8502 --server.headless true`.",
    )
    p.set_defaults(run=cmd_app, passed_on=[])


def app_script() -> Path:
    """The app's ``app.py``: beside ``core/`` in a checkout, in the ``samesame_app`` package
    (``pages/``, ``assets/`` and ``.streamlit/config.toml`` beside it) when installed."""
    for folder in (_ROOT, _ROOT / "samesame_app"):
        script = folder / "app.py"
        if script.is_file() and (folder / "pages").is_dir():
            return script
    raise SameSameError(f"the Streamlit app (app.py and pages/) is not installed beside {_ROOT}")


def cmd_app(args: argparse.Namespace) -> int:
    if args.db:
        raise SameSameError(
            "app: choose the catalog in the app's sidebar (--db is for the other commands)"
        )
    command = [sys.executable, "-m", "streamlit", "run", str(app_script()), *args.passed_on]
    if os.name == "posix":
        # Streamlit takes this process over: Ctrl+C and a service manager's signals reach it.
        os.execv(sys.executable, command)
    process = subprocess.Popen(command)
    try:
        return process.wait()
    except KeyboardInterrupt:
        # Ctrl+C reaches Streamlit too: it stops the server; wait for it to finish.
        return process.wait()
