"""`MatchSettings`: every threshold and model choice, with the original write-ups' numbers as
defaults, each described once (`core.settings.fields.setting`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.errors import SameSameError
from core.settings.best import BestTrainingSettings
from core.settings.fields import SettingSpec, setting, specs
from core.settings.paths import default_weights_dir

BACKBONES = ("mobilenet", "mobilenetv2", "vgg16", "efficientnet-lite0", "efficientnet-lite2")
MOBILENET_ALPHAS = (0.25, 0.5, 0.75, 1.0)
#: Each backbone's own baseline photo-cosine threshold: the seed's 0.85 for MobileNet; for the
#: EfficientNet-Lite models the cosine with the best F1 on the grocery training products, kept
#: apart from 13 held-back products (docs/benchmarks/efficientnet-lite.md).
BACKBONE_IMAGE_COSINE = {
    "mobilenet": 0.85,
    "efficientnet-lite0": 0.58,
    "efficientnet-lite2": 0.62,
}


def own_image_cosine(backbone: str) -> float:
    """A backbone's own photo threshold; the write-up's 0.85 where none was measured."""
    return BACKBONE_IMAGE_COSINE.get(backbone, 0.85)


INFERENCE_BACKENDS = ("auto", "tensorflow", "openvino", "openvino-bf16")
NEIGHBOUR_BACKENDS = ("auto", "sklearn", "faiss", "hnsw")
SIAMESE_LOSSES = ("margin", "triplet", "arcface")

BASELINE = "Baseline thresholds"
ENSEMBLE = "Ensemble thresholds"
HASHES = "Photo hashes (both pipelines)"
MATCHING = "Matching and clusters"
IMAGE_MODEL = "Baseline image model"
SIAMESE = "Siamese model (ensemble)"
TITLES = "Titles"
MACHINE = "This machine"


@dataclass(frozen=True)
class MatchSettings(BestTrainingSettings):
    """Every threshold and model choice of the pipelines; frozen so a result knows its inputs.

    Defaults are the original write-ups' numbers: baseline image cosine >= 0.85 and TF-IDF
    cosine >= 0.5; ensemble Siamese distance < 0.95, SequenceMatcher ratio > 0.55, or
    distance + (1 - ratio) < 1.4.
    """

    baseline_image_cosine: float = setting(
        0.85,
        "Photo cosine ≥",
        "How alike two photos must look to the ImageNet backbone (1 = the same picture) for "
        "the baseline to call them one product. Each backbone brings its own when chosen: "
        "0.85 for MobileNet (the original), its best on labelled products for the others.",
        BASELINE,
        minimum=0.0,
        maximum=1.0,
        step=0.01,
        flag="--image-threshold",
        tunable=True,
    )
    baseline_text_cosine: float = setting(
        0.5,
        "Title TF-IDF cosine ≥",
        "How much two titles must share their weighted words "
        "(rare words weigh more; 1 = the same words) for the baseline to call them one product.",
        BASELINE,
        minimum=0.0,
        maximum=1.0,
        step=0.01,
        flag="--text-threshold",
        tunable=True,
    )
    hash_max_distance: int = setting(
        8,
        "Photo hash bits ≤",
        "Perceptual hashes are 64-bit fingerprints of a photo; two "
        "photos at most this many bits apart count as the same picture when no photo vectors "
        "exist (0 = identical).",
        HASHES,
        minimum=0,
        maximum=64,
        step=1,
        flag="--hash-distance",
        tunable=True,
    )
    ensemble_image_distance: float = setting(
        0.95,
        "Siamese distance <",
        "How close the trained Siamese network must put two photos "
        "(0 = identical, 2 = opposite) for the ensemble to call them one product.",
        ENSEMBLE,
        minimum=0.0,
        maximum=2.0,
        step=0.01,
        flag="--siamese-distance",
        tunable=True,
    )
    siamese_threshold: str = setting(
        "fixed",
        "Siamese threshold from",
        "fixed: the Siamese distance above (0.95 in the original write-up). calibrated: the "
        "distance training chose on labelled products it held back, stored with the model; it "
        "suits products the network never saw, where 0.95 tends to be too loose. On the "
        "command line a number sets the fixed distance.",
        ENSEMBLE,
        choices=("fixed", "calibrated"),
        flag="--siamese-threshold",
        number_sets="ensemble_image_distance",
    )
    ensemble_text_ratio: float = setting(
        0.55,
        "Title ratio >",
        "How alike two titles read letter by letter (difflib's "
        "SequenceMatcher: 1 = the same text) for the ensemble to call them one product.",
        ENSEMBLE,
        minimum=0.0,
        maximum=1.0,
        step=0.01,
        flag="--ratio-threshold",
        tunable=True,
    )
    ensemble_combined: float = setting(
        1.4,
        "Distance + (1 − ratio) <",
        "Photo distance and title difference together: a pair "
        "a little alike in both counts as one product.",
        ENSEMBLE,
        minimum=0.0,
        maximum=3.0,
        step=0.01,
        flag="--combined-threshold",
        tunable=True,
    )
    top_k: int = setting(
        50,
        "Neighbours searched per posting",
        "How many nearest postings each kind of evidence "
        "(title, photo, hash) offers as candidates for every posting.",
        MATCHING,
        minimum=1,
        maximum=1000,
        step=5,
        flag="--top-k",
    )
    max_matches: int = setting(
        50,
        "Matches kept per posting",
        "At most this many matches per posting, best first; "
        "the rest are dropped (the run reports how many postings hit this cap).",
        MATCHING,
        minimum=1,
        maximum=1000,
        step=5,
        flag="--max-matches",
    )
    max_cluster_size: int = setting(
        50,
        "Largest cluster",
        "No cluster of postings (one product) grows past this size.",
        MATCHING,
        minimum=2,
        maximum=10_000,
        step=1,
        flag="--max-cluster-size",
    )
    cluster_min_link: float = setting(
        0.3,
        "Weakest cluster join",
        "Two clusters merge only when their postings match this "
        "well on average (a missing match counts as 0): higher keeps clusters tighter.",
        MATCHING,
        minimum=0.0,
        maximum=1.0,
        step=0.05,
        flag="--cluster-min-link",
    )
    neighbour_backend: str = setting(
        "auto",
        "Photo neighbour search",
        "auto picks exact search for small catalogs and an "
        "approximate HNSW graph past 200,000 photos.",
        MATCHING,
        choices=NEIGHBOUR_BACKENDS,
        flag="--neighbour-backend",
        advanced=True,
    )
    image_backbone: str = setting(
        "mobilenet",
        "Backbone",
        "The ImageNet network whose pooled features compare photos: MobileNet as in the "
        "original; EfficientNet-Lite0 and Lite2 (weights installed with the app) tell unseen "
        "products apart better. Choosing one also sets its own photo threshold.",
        IMAGE_MODEL,
        choices=BACKBONES,
        flag="--backbone",
        scope="machine",
    )
    image_alpha: float = setting(
        1.0,
        "MobileNet width (alpha)",
        "1.0 is the original; smaller is faster and less exact.",
        IMAGE_MODEL,
        choices=MOBILENET_ALPHAS,
        flag="--alpha",
        scope="machine",
    )
    image_size: int = setting(
        224,
        "Input pixels",
        "Photos are resized to this square before the network.",
        IMAGE_MODEL,
        minimum=32,
        maximum=1024,
        step=16,
        flag="--image-size",
        scope="machine",
    )
    siamese_backbone: str = setting(
        "auto",
        "Backbone",
        "The ImageNet network the Siamese network is built on. auto: VGG16 as in the original "
        "when its weights file is on this computer, else EfficientNet-Lite2, whose weights "
        "come installed (stronger on unseen products than MobileNet, and far faster than "
        "VGG16 on a CPU).",
        SIAMESE,
        choices=("auto", *BACKBONES),
        flag="--siamese-backbone",
        scope="machine",
    )
    siamese_alpha: float = setting(
        1.0,
        "MobileNet width (alpha)",
        "Width of a MobileNet backbone.",
        SIAMESE,
        choices=MOBILENET_ALPHAS,
        flag="--siamese-alpha",
        scope="machine",
    )
    siamese_image_size: int = setting(
        0,
        "Input pixels",
        "Photos are resized to this square. 0: the backbone's own size (200 for VGG16 as in "
        "the original, 224 for MobileNet and EfficientNet-Lite0, 260 for Lite2).",
        SIAMESE,
        minimum=0,
        maximum=1024,
        step=8,
        flag="--siamese-image-size",
    )
    siamese_embedding_dim: int = setting(
        128,
        "Embedding size",
        "Length of the vector the network gives each photo.",
        SIAMESE,
        minimum=8,
        maximum=2048,
        step=8,
        flag="--embedding-dim",
        advanced=True,
    )
    siamese_epochs: int = setting(
        6,
        "Training epochs",
        "Passes over the labelled photos when training.",
        SIAMESE,
        minimum=1,
        maximum=500,
        step=1,
        flag="--epochs",
    )
    siamese_loss: str = setting(
        "triplet",
        "Training loss",
        "triplet (the original write-up's): semi-hard triplet loss, each photo nearer its "
        "product's photos than any other product's by a margin; margin: pulls same-product "
        "photos within the distance threshold and pushes others beyond it; arcface: angular "
        "margin over product classes.",
        SIAMESE,
        choices=SIAMESE_LOSSES,
        flag="--loss",
    )
    siamese_members: int = setting(
        3,
        "Networks side by side",
        "How many heads to train on the one ImageNet backbone, each from its own random "
        "start; a photo's distance comes from the mean of their cosines. More are more "
        "precise, train longer and embed at nearly the same speed; their distances spread "
        "differently from one network's, so pair them with the calibrated Siamese threshold. "
        "A fine-tuned backbone trains one. 3 was chosen on labelled products held back from "
        "training (EfficientNet-Lite2).",
        SIAMESE,
        minimum=1,
        maximum=8,
        step=1,
        flag="--siamese-members",
        advanced=True,
    )
    siamese_train_backbone: bool = setting(
        False,
        "Fine-tune the backbone",
        "Also train the ImageNet backbone (slow on a CPU).",
        SIAMESE,
        flag="--train-backbone",
        advanced=True,
    )
    translate_titles: bool = setting(
        False,
        "Translate titles to English (ensemble)",
        "Translates titles with Google "
        "Translate before comparing them (needs internet; translations are cached).",
        TITLES,
        flag="--translate",
    )
    batch_size: int = setting(
        32,
        "Images per batch",
        "Photos embedded at once.",
        MACHINE,
        minimum=1,
        maximum=4096,
        step=8,
        flag="--batch-size",
        scope="machine",
    )
    inference_backend: str = setting(
        "auto",
        "Inference engine",
        "What runs the image networks: openvino (MobileNet 2–3x as fast on a CPU, the "
        "same vectors), tensorflow, or auto (OpenVINO on a CPU when it is installed, TensorFlow "
        "on a GPU). openvino-bf16 computes in bfloat16 where the CPU has bfloat16 units (VGG16 "
        "about 7x as fast on such a CPU) but the vectors move a little: re-embed after "
        "switching to or from it. Training always uses TensorFlow.",
        MACHINE,
        choices=INFERENCE_BACKENDS,
        flag="--backend",
        scope="machine",
    )
    weights_dir: str = setting(
        "",
        "Weights folder",
        "Folder holding Keras ImageNet .h5 weight files, for machines "
        "without internet (empty: the data folder's weights/).",
        MACHINE,
        flag="--weights-dir",
        scope="machine",
    )

    def __post_init__(self) -> None:
        problems = self.problems()
        try:
            splits = [int(v) for v in self.best_train_splits.split(",") if v.strip()]
        except ValueError:
            splits = []
        if not splits or min(splits) < 3 or any(v % min(splits) for v in splits):
            problems.append(
                "best_train_splits must be whole numbers, the smallest 3 or more and each a "
                "multiple of it, e.g. 3,6"
            )
        if 0 < self.siamese_image_size < 32:
            problems.append(
                "siamese_image_size must be 0 (the backbone's own size) or at least 32, got "
                f"{self.siamese_image_size}"
            )
        if problems:
            raise SameSameError("Invalid settings: " + "; ".join(problems))

    def replace(self, **changes: Any) -> MatchSettings:
        """These settings with ``changes``. A new image backbone brings its own photo
        threshold (`own_image_cosine`) unless the change gives one or the current one was set
        by hand (it differs from the current backbone's own)."""
        backbone = changes.get("image_backbone", self.image_backbone)
        if (
            backbone != self.image_backbone
            and "baseline_image_cosine" not in changes
            and self.baseline_image_cosine == own_image_cosine(self.image_backbone)
        ):
            changes["baseline_image_cosine"] = own_image_cosine(backbone)
        return super().replace(**changes)

    def with_values(self, values: dict[str, Any]) -> MatchSettings:
        """These settings with ``values`` (typed or stored) applied; only the values that
        differ count as changes (a form hands back every field)."""
        parsed = type(self).from_dict({**self.to_dict(), **values}).to_dict()
        current = self.to_dict()
        return self.replace(**{k: v for k, v in parsed.items() if v != current[k]})

    def resolved_weights_dir(self):
        from pathlib import Path

        return Path(self.weights_dir).expanduser() if self.weights_dir else default_weights_dir()


SETTING_SPECS: tuple[SettingSpec, ...] = specs(MatchSettings)


def spec_of(name: str) -> SettingSpec:
    return next(spec for spec in SETTING_SPECS if spec.name == name)
