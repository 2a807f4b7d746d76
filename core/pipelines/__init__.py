"""Matching pipelines. Each takes `MatchInputs` and `MatchSettings` and returns a `MatchResult`."""

from __future__ import annotations

from core.pipelines.base import MatchInputs, load_inputs
from core.pipelines.baseline import match_baseline
from core.pipelines.ensemble import match_ensemble

#: Every pipeline the app and CLI offer; ``best`` lives in `core.pipelines.best` (LightGBM is
#: imported only when it runs) and needs a trained model.
PIPELINES = ("baseline", "ensemble", "best")

__all__ = ["PIPELINES", "MatchInputs", "load_inputs", "match_baseline", "match_ensemble"]
