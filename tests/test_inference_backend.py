"""The inference engine setting (`core.embedders.inference`): OpenVINO gives the vectors and
matches TensorFlow gives, converted models are cached by weights and rebuilt when damaged, and
a missing OpenVINO is a clear message. Real ImageNet MobileNet 0.25 weights and real photos."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core import matching, models
from core.catalog import import_catalog
from core.embedders import inference
from core.embedders.mobilenet import PretrainedEmbedder
from core.errors import SameSameError
from core.settings import MatchSettings
from core.store import Store
from tests.conftest import require

pytest.importorskip("tensorflow")
require(inference.openvino_installed(), "openvino is not installed (requirements.txt)")


def photos(grocery_dir: Path, count: int = 48) -> list[Path]:
    return sorted((grocery_dir / "images").iterdir())[:count]


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def mobilenet(weights_dir: Path, backend: str) -> PretrainedEmbedder:
    return PretrainedEmbedder("mobilenet", 0.25, 224, weights_dir, 16).serve_with(backend)


def test_openvino_and_tensorflow_give_the_same_vectors(weights_dir, grocery_dir):
    sources = photos(grocery_dir)
    keras = mobilenet(weights_dir, "tensorflow")
    fast = mobilenet(weights_dir, "openvino")
    assert (keras.backend, fast.backend) == ("tensorflow", "openvino")
    assert cosines(keras.embed(sources), fast.embed(sources)).min() >= 0.99999
    assert inference.resolve_backend("auto") == "openvino"  # a CPU with OpenVINO installed


def test_the_converted_model_is_cached_and_rebuilt_when_damaged(
    weights_dir, grocery_dir, monkeypatch
):
    sources = photos(grocery_dir, 8)
    expected = mobilenet(weights_dir, "openvino").embed(sources)
    cached = sorted(inference.cache_folder().glob("*.bin"))
    assert len(cached) == 1 and cached[0].name.startswith("mobilenet-a0.25-224-imagenet-")

    conversions = []
    convert = inference._convert
    monkeypatch.setattr(
        inference, "_convert", lambda model, xml: conversions.append(xml) or convert(model, xml)
    )
    again = mobilenet(weights_dir, "openvino").embed(sources)
    assert conversions == []  # read from the cache
    np.testing.assert_allclose(again, expected, atol=1e-6)

    data = cached[0].read_bytes()
    cached[0].write_bytes(data[: len(data) // 2])  # a half-written file
    rebuilt = mobilenet(weights_dir, "openvino").embed(sources)
    assert len(conversions) == 1
    np.testing.assert_allclose(rebuilt, expected, atol=1e-6)


@pytest.mark.parametrize("members", [1, 3])
def test_the_siamese_model_is_served_by_the_same_engine(
    weights_dir, grocery_dir, tmp_path, members
):
    """One head, or several side by side on the one backbone (the served model combines
    them in a layer of its own, which the converter must carry)."""
    from core.embedders.siamese import (
        SiameseConfig,
        SiameseEmbedder,
        assemble,
        build_head,
        build_siamese,
    )

    config = SiameseConfig(
        backbone="mobilenet", alpha=0.25, image_size=96, embedding_dim=32, members=members
    )
    model, base, head = build_siamese(config, weights_dir)
    heads = [head] + [build_head(config, int(base.output_shape[-1]), m) for m in range(1, members)]
    for number, each in enumerate(heads):
        features = np.random.default_rng(number).normal(size=(64, 256))
        each.get_layer("feature_norm").adapt(features)
    model = assemble(config, base, heads)
    SiameseEmbedder(model, config, "untrained").save(tmp_path / "siamese")
    sources = photos(grocery_dir, 16)
    keras = SiameseEmbedder.load(tmp_path / "siamese").serve_with("tensorflow")
    fast = SiameseEmbedder.load(tmp_path / "siamese").serve_with("openvino")
    assert fast.backend == "openvino"
    expected = keras.embed(sources)
    assert expected.shape == (16, 32 * members)
    assert cosines(expected, fast.embed(sources)).min() >= 0.99999


def test_either_engine_finds_the_same_matches_on_the_demo(weights_dir, demo_catalog, tmp_path):
    found = {}
    for backend in ("tensorflow", "openvino"):
        settings = MatchSettings(
            image_alpha=0.25, weights_dir=str(weights_dir), inference_backend=backend
        )
        with Store(tmp_path / f"{backend}.db") as store:
            import_catalog(store, demo_catalog, demo_catalog.parent / "images")
            assert models.embed_images(store, settings) > 100
            result = matching.run_pipeline(store, "baseline", settings, save=False)
            found[backend] = result.match_sets()
    assert found["openvino"] == found["tensorflow"]


def test_a_missing_openvino_is_explained_and_auto_falls_back(monkeypatch):
    monkeypatch.setattr(inference, "openvino_installed", lambda: False)
    assert inference.resolve_backend("auto") == "tensorflow"
    for choice in ("openvino", "openvino-bf16"):
        with pytest.raises(SameSameError, match="needs OpenVINO: pip install"):
            inference.resolve_backend(choice)
    with pytest.raises(SameSameError, match="inference backend must be one of"):
        inference.resolve_backend("onnx")


def test_bfloat16_engine_computes_in_bfloat16_where_the_cpu_can_and_stays_close(
    weights_dir, grocery_dir
):
    """openvino-bf16 asks OpenVINO for bfloat16: on a CPU with bfloat16 units the vectors of
    real photos move a little (what the setting's help says: re-embed after switching), on
    one without them they are the f32 engine's."""
    import openvino as ov

    sources = photos(grocery_dir, 32)
    exact = mobilenet(weights_dir, "openvino").embed(sources)
    half = mobilenet(weights_dir, "openvino-bf16")
    assert half.backend == "openvino-bf16"
    close = cosines(exact, half.embed(sources))
    assert close.min() > 0.95 and np.median(close) > 0.99
    if "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
        assert close.min() < 0.99999  # it did compute in bfloat16
    else:
        assert close.min() > 0.99999
