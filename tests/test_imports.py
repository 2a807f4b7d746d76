"""Importing the engine stays light: TensorFlow, FAISS and Streamlit load only where used."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[1]

HEAVY = ("tensorflow", "keras", "faiss", "streamlit", "torch", "rapidocr_onnxruntime", "cv2")


@pytest.mark.parametrize(
    "statement",
    [
        "import core",
        "import core.matching, core.models, core.cli, core.catalog, core.query, core.pipelines",
        "import core.embedders, core.embedding, core.translate, core.candidates, core.engine",
        "import core.ocr, core.cli.ocr",
    ],
)
def test_import_leaves_heavy_libraries_unloaded(statement: str) -> None:
    code = f"{statement}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    loaded = set(json.loads(done.stdout.splitlines()[-1]))

    assert "core" in loaded
    heavy = sorted(m for m in loaded if m.split(".")[0] in HEAVY)
    assert heavy == []
