"""The files of a small learned Keras model (the title encoder, the image head): the model in
Keras' own format beside its settings as JSON, written so a crash leaves the old file whole,
and loaded in safe mode (loading executes no code)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from core.errors import ModelNotTrainedError


def save_model_files(
    model: Any, settings: dict[str, Any], folder: Path, model_file: str, settings_file: str
) -> None:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / (model_file + ".tmp.keras")
    model.save(tmp)
    tmp.replace(folder / model_file)
    (folder / settings_file).write_text(json.dumps(settings, indent=2))


def load_model_files(
    folder: Path, model_file: str, settings_file: str, missing: str
) -> tuple[Any, dict[str, Any]]:
    """(the model, its settings).

    Raises:
        ModelNotTrainedError: either file is missing (``missing`` says what to do).
    """
    import keras

    folder = Path(folder)
    model_path, settings_path = folder / model_file, folder / settings_file
    if not model_path.is_file() or not settings_path.is_file():
        raise ModelNotTrainedError(missing)
    settings = json.loads(settings_path.read_text())
    return keras.models.load_model(model_path, safe_mode=True, compile=False), settings


def side_by_side(members: list, name: str, dtype: str = "float32", input_name: str = "features"):
    """One model whose output is the members' vectors side by side at unit length: its cosine
    is the mean of the members' cosines (each member's output is unit length)."""
    import keras

    if len(members) == 1:
        return members[0]
    inputs = keras.Input((members[0].input_shape[1],), dtype=dtype, name=input_name)
    joined = keras.layers.Concatenate()([member(inputs) for member in members])
    return keras.Model(inputs, keras.layers.UnitNormalization()(joined), name=name)
