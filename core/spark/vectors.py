"""Image vectors on the executors: the single-machine embedders in ``mapInPandas``, built once
per Python worker."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from core.embedders.mobilenet import PretrainedEmbedder
from core.embedders.siamese import SiameseEmbedder
from core.errors import ImageError, SameSameError
from core.models import siamese_version
from core.pipelines import Pipeline
from core.settings import MatchSettings

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

logger = logging.getLogger(__name__)

#: Embedders built in this Python process, by spec: Spark reuses Python workers between tasks,
#: so a model is loaded once per worker, not once per batch or per partition.
_EMBEDDERS: dict[tuple, Any] = {}


def _embedder(spec: tuple) -> Any:
    if spec not in _EMBEDDERS:
        if spec[0] == "siamese":
            _EMBEDDERS[spec] = SiameseEmbedder.load(Path(spec[1]), spec[2])
        else:
            _, backbone, alpha, size, weights_dir, batch_size = spec
            _EMBEDDERS[spec] = PretrainedEmbedder(
                backbone, alpha, size, Path(weights_dir), batch_size
            )
    return _EMBEDDERS[spec]


def embedder_spec(pipeline: Pipeline, settings: MatchSettings, model_dir: Path | None) -> tuple:
    """What an executor needs to build the pipeline's image embedder (plain, picklable)."""
    if pipeline.image_kind == "siamese":
        if model_dir is None:
            raise SameSameError(
                f"spark-match --pipeline {pipeline.name} with --images needs --model DIR (a "
                "Siamese model trained with python -m core train), or --hash-only."
            )

        if siamese_version(model_dir) is None:
            raise SameSameError(
                f"{model_dir} holds no trained Siamese model; train one with python -m core "
                "train --pipeline ensemble --model DIR, or use --hash-only."
            )
        return ("siamese", str(model_dir.resolve()), settings.batch_size)
    return (
        "pretrained",
        settings.image_backbone,
        settings.image_alpha,
        settings.image_size,
        str(settings.resolved_weights_dir().resolve()),
        settings.batch_size,
    )


def embed_frame(postings: DataFrame, spec: tuple) -> DataFrame:
    """idx, vec (L2-normalised float32 array) for every posting whose image opened.

    A file that fails to decode here is skipped (no vector: its hash stands in), as
    `core.embedding.embed_catalog` does.
    """

    def embed(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        embedder = None
        for batch in batches:
            if batch.empty:
                continue
            embedder = embedder or _embedder(spec)  # once per worker, on the first real batch
            paths = [Path(p) for p in batch["image_path"]]
            try:
                vectors = list(embedder.embed(paths))
                ids = batch["idx"].tolist()
            except ImageError:
                ids, vectors = [], []
                for idx, path in zip(batch["idx"], paths, strict=True):
                    try:
                        vectors.append(embedder.embed([path])[0])
                        ids.append(idx)
                    except ImageError as exc:
                        logger.warning("skipping %s: %s", path, exc)
            yield pd.DataFrame(
                {"idx": pd.array(ids, "int64"), "vec": [v.astype(np.float32) for v in vectors]}
            )

    with_images = postings.where("image_path IS NOT NULL").select("idx", "image_path")
    return with_images.mapInPandas(embed, "idx long, vec array<float>")
