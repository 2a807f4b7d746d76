"""Where SameSame keeps its files."""

from __future__ import annotations

import os
from pathlib import Path


def data_dir() -> Path:
    """The folder holding databases, the demo catalog, uploads and trained models.

    ``SAMESAME_HOME`` wins; otherwise the XDG user data folder (``~/.local/share/samesame``).
    """
    explicit = os.environ.get("SAMESAME_HOME")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(xdg) / "samesame"


def default_weights_dir() -> Path:
    """Where pretrained ``.h5`` files are looked up before Keras tries to download them."""
    return data_dir() / "weights"
