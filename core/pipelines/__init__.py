"""Matching pipelines: one registry (`PIPELINES`) of `Pipeline` objects.

Importing this package registers baseline, ensemble and best (LightGBM and TensorFlow are
imported only when a model is trained, loaded or run).
"""

from __future__ import annotations

from core.pipelines import baseline, ensemble  # noqa: F401  (register themselves)
from core.pipelines.base import (
    PIPELINES,
    MatchRequest,
    Pipeline,
    Prepared,
    Readiness,
    Source,
    get_pipeline,
    most_accurate_first,
    pipeline_names,
)
from core.pipelines.best import pipeline as _best  # noqa: F401
from core.pipelines.inputs import MatchInputs, load_inputs

__all__ = [
    "PIPELINES",
    "MatchInputs",
    "MatchRequest",
    "Pipeline",
    "Prepared",
    "Readiness",
    "Source",
    "get_pipeline",
    "load_inputs",
    "most_accurate_first",
    "pipeline_names",
]
