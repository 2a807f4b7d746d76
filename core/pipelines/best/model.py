"""A trained ``best`` matcher: its two classifiers, its thresholds, how it decides, and its files.

Decisions: a pair matches at probability >= ``threshold``; a posting left alone still gets its
most probable partner at >= ``threshold_low`` (the "nearest" rule: min-2 matching). Both are
tuned on out-of-fold probabilities of the training catalog (`core.pipelines.best.training`).

Saved models hold JSON, LightGBM text files and (optionally) a Keras ``.keras`` title encoder
and image head loaded in safe mode: nothing in the folder can execute code when loaded.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from core.embedders.text_model import TitleEncoder
from core.embedders.vector_head import VectorHead
from core.errors import ModelNotTrainedError, SameSameError
from core.models import BEST_CONFIG_FILE
from core.pipelines.best.config import BestConfig
from core.pipelines.best.features import PairTable, Stages
from core.pipelines.best.rescoring import Rescorer
from core.pipelines.best.scoring import Runner, score_candidates
from core.pipelines.best.training import fit_stages
from core.pipelines.inputs import MatchInputs
from core.settings import MatchSettings

Progress = Callable[[int, int], None]

#: The record `core.models` reads (what it learnt from) without loading LightGBM.
CONFIG_FILE = BEST_CONFIG_FILE
STAGE1_FILE = "stage1.lgb.txt"
STAGE2_FILE = "stage2.lgb.txt"
TITLE_MODEL_DIR = "title_encoder"
IMAGE_HEAD_DIR = "image_head"
CROSS_ENCODER_DIR = "cross_encoder"
FORMAT_VERSION = 1
#: The registry name of the pipeline these models serve.
BEST_NAME = "best"


class BestMatcher:
    """A trained ``best`` pipeline. Build with `BestMatcher.fit` or `BestMatcher.load`."""

    def __init__(
        self,
        config: BestConfig,
        stage1: Any,
        stage2: Any | None,
        names1: list[str],
        names2: list[str],
        title_encoder: Any | None = None,
        info: dict[str, Any] | None = None,
        image_head: Any | None = None,
        rescorer: Rescorer | None = None,
    ) -> None:
        self.config = config
        self.stage1 = stage1
        self.stage2 = stage2
        self.names1 = names1
        self.names2 = names2
        self.title_encoder = title_encoder
        self.info = info or {}
        self.image_head = image_head
        self.rescorer = rescorer

    @property
    def reads_photo_text(self) -> bool:
        """Whether it learnt from text read from the photos (OCR): its catalogs need it too."""
        return bool(self.info.get("photo_text"))

    @classmethod
    def fit(
        cls,
        inputs: MatchInputs,
        labels: Sequence[str],
        settings: MatchSettings | None = None,
        progress: Progress | None = None,
        config: BestConfig | None = None,
    ) -> BestMatcher:
        """Learn from a labelled catalog; ``config`` defaults to what ``settings`` choose."""
        settings = settings or MatchSettings()
        config = config or BestConfig.from_settings(settings)
        done = fit_stages(inputs, labels, config, settings.to_dict(), progress)
        return cls(
            done.config,
            done.stage1,
            done.stage2,
            done.names1,
            done.names2,
            done.title_encoder,
            done.info,
            done.image_head,
            done.rescorer,
        )

    # -- scoring -------------------------------------------------------------------------------
    def probabilities(
        self,
        inputs: MatchInputs,
        stages: Stages | None = None,
        runner: Runner | None = None,
        only: int | None = None,
    ) -> tuple[PairTable, np.ndarray, np.ndarray]:
        """Candidate pairs with stage 1 and final probabilities (no labels needed), scored a
        chunk of pairs at a time by ``runner`` (here unless told: `core.pipelines.best.scoring`).
        ``only``: a single-item query's posting, whose pairs alone the cross-encoder re-scores."""
        return score_candidates(self, inputs, stages, runner, only)

    # -- files ---------------------------------------------------------------------------------
    def save(self, folder: Path) -> None:
        """Write JSON + LightGBM text models (+ a safe-mode Keras encoder); no pickles."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.stage1.save_model(str(folder / STAGE1_FILE))
        if self.stage2 is not None:
            self.stage2.save_model(str(folder / STAGE2_FILE))
        if self.title_encoder is not None:
            self.title_encoder.save(folder / TITLE_MODEL_DIR)
        if self.image_head is not None:
            self.image_head.save(folder / IMAGE_HEAD_DIR)
        if self.rescorer is not None:
            self.rescorer.save(folder / CROSS_ENCODER_DIR)
        payload = {
            "format_version": FORMAT_VERSION,
            "pipeline": BEST_NAME,
            "config": asdict(self.config),
            "features_stage1": self.names1,
            "features_stage2": self.names2,
            "info": self.info,
        }
        tmp = folder / (CONFIG_FILE + ".tmp")
        tmp.write_text(json.dumps(payload, indent=2, default=_json_default))
        tmp.replace(folder / CONFIG_FILE)

    @classmethod
    def load(cls, folder: Path) -> BestMatcher:
        import lightgbm as lgb

        folder = Path(folder)
        path = folder / CONFIG_FILE
        if not path.is_file() or not (folder / STAGE1_FILE).is_file():
            raise ModelNotTrainedError(
                f"No trained best model in {folder}. Train one first on a labelled catalog."
            )
        try:
            payload = json.loads(path.read_text())
            if payload.get("format_version") != FORMAT_VERSION:
                raise ModelNotTrainedError(
                    f"The best model in {folder} has format {payload.get('format_version')}, "
                    f"this version reads {FORMAT_VERSION}; retrain it"
                )
            config = BestConfig.from_dict(payload["config"])
            stage1 = lgb.Booster(model_file=str(folder / STAGE1_FILE))
            stage2 = None
            if config.graph_stage:
                stage2 = lgb.Booster(model_file=str(folder / STAGE2_FILE))
            encoder = None
            if config.title_model:
                encoder = TitleEncoder.load(folder / TITLE_MODEL_DIR)
            head = None
            if config.image_head:
                head = VectorHead.load(folder / IMAGE_HEAD_DIR)
            rescorer = None
            if config.cross_encoder:
                rescorer = Rescorer.load(folder / CROSS_ENCODER_DIR, config)
            names1 = [str(n) for n in payload["features_stage1"]]
            names2 = [str(n) for n in payload["features_stage2"]]
        except SameSameError:
            raise
        except Exception as exc:  # damaged JSON or model files: say so, never a traceback
            raise ModelNotTrainedError(
                f"The best model in {folder} is damaged (a file is missing, cut short or "
                "from another version); retrain it"
            ) from exc
        info = payload.get("info", {})
        return cls(config, stage1, stage2, names1, names2, encoder, info, head, rescorer)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
