"""Image-only matching on real photos: the grocery catalog, split by product (GroupKFold).

For each fold, models are trained on the other folds' products and scored on products they never
saw: untrained MobileNet cosine (the baseline rule), perceptual hash, and the trained Siamese
network (ensemble rule, distance < 0.95) with each loss.

    .venv/bin/python -m benchmarks.bench_grocery [--folds 5] [--epochs 8] [--losses triplet,arcface]
    .venv/bin/python -m benchmarks.bench_grocery --losses margin,triplet \\
        --select triplet_margin=0.3,0.5,0.8 --hold-back 13
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.common import split_held_back
from core.embedders.mobilenet import PretrainedEmbedder
from core.embedders.siamese import SiameseConfig
from core.embedders.siamese_training import train_siamese
from core.engine import match_catalog
from core.metrics import evaluate, true_match_sets
from core.pipelines import MatchInputs, get_pipeline
from core.settings import MatchSettings
from core.text import normalize_title

SHARED = Path(__file__).resolve().parents[2] / "shared"
#: What each trained model is scored on: at the fixed 0.95 and at its calibrated distance.
SCORES = (
    "f1",
    "precision",
    "recall",
    "cal_f1",
    "cal_precision",
    "cal_recall",
    "calibrated_distance",
)


def held_out_f1(
    frame: pd.DataFrame,
    vectors: np.ndarray | None,
    pipeline: str,
    settings: MatchSettings | None = None,
) -> dict:
    postings = frame.assign(title_norm=frame["title"].map(normalize_title))
    by_id = dict(zip(frame["posting_id"], vectors, strict=True)) if vectors is not None else None
    inputs = MatchInputs.from_frame(postings, by_id, "bench" if by_id else None)
    result = match_catalog(get_pipeline(pipeline), inputs, settings or MatchSettings())
    labels = dict(zip(frame["posting_id"], frame["label_group"], strict=True))
    return evaluate(result.match_sets(), true_match_sets(labels))


def _config(args, loss: str, overrides: dict) -> SiameseConfig:
    chosen = {
        "backbone": "mobilenet",
        "alpha": 0.25,
        "image_size": args.image_size,
        "epochs": args.epochs,
        "loss": loss,
        "learning_rate": args.learning_rate,
    }
    return SiameseConfig(**{**chosen, **overrides})  # a selected field wins over --image-size


def _parse_value(key: str, raw: str):
    kind = type(getattr(SiameseConfig(), key))
    if kind is bool:
        return raw.strip().lower() in ("1", "true", "yes")
    return kind(raw)


def _train_and_score(train: pd.DataFrame, test: pd.DataFrame, paths, config, weights) -> dict:
    """Train on ``train``'s products, score ``test``'s (row positions index ``paths``)."""
    test_paths = [paths[i] for i in test.index]

    def score_epoch(epoch: int, model) -> dict:
        vectors = model.embed(test_paths)
        frame = test.reset_index(drop=True)
        return {"held_out_f1": round(held_out_f1(frame, vectors, "ensemble")["f1"], 4)}

    t0 = time.perf_counter()
    model = train_siamese(
        [paths[i] for i in train.index],
        train["label_group"].tolist(),
        config,
        weights_dir=weights,
        on_epoch_end=score_epoch,
    )
    seconds = time.perf_counter() - t0
    vectors = model.embed(test_paths)
    frame = test.reset_index(drop=True)
    metrics = held_out_f1(frame, vectors, "ensemble")
    calibrated = model.config.calibrated_distance
    if calibrated is not None:
        at = MatchSettings(ensemble_image_distance=calibrated)
        metrics |= {f"cal_{k}": v for k, v in held_out_f1(frame, vectors, "ensemble", at).items()}
        metrics["calibrated_distance"] = calibrated
    return {**metrics, "train_s": round(seconds), "history": model.config.history}


def select_and_hold_back(args, catalog, paths, weights, overrides) -> None:
    """Nested selection: each candidate value is scored by GroupKFold on the training products
    only; the winner is trained on all of them and scored once on products held back from
    every choice (the last ``--hold-back`` products by label)."""
    from sklearn.model_selection import GroupKFold

    field, _, raw = args.select.partition("=")
    candidates = [_parse_value(field, v) for v in raw.split(",")]
    dev, test = split_held_back(catalog, args.hold_back)
    losses = args.losses.split(",")

    rows = []
    for loss in losses:
        values = candidates if loss == args.select_loss else [None]
        for value in values:
            chosen = {**overrides, **({field: value} if value is not None else {})}
            folds = GroupKFold(n_splits=args.folds).split(dev, groups=dev["label_group"])
            for fold, (train_pos, test_pos) in enumerate(folds, start=1):
                scored = _train_and_score(
                    dev.iloc[train_pos],
                    dev.iloc[test_pos],
                    paths,
                    _config(args, loss, chosen),
                    weights,
                )
                rows.append(
                    {
                        "loss": loss,
                        field: value,
                        "fold": fold,
                        **{k: scored[k] for k in SCORES if k in scored},
                    }
                )
    measured = pd.DataFrame(rows)
    inner = measured.groupby(["loss", field], dropna=False, sort=False)[
        [k for k in SCORES if k in measured]
    ].mean()
    winner = max(candidates, key=lambda v: inner.loc[(args.select_loss, v), args.select_on])

    finals = []
    for loss in losses:
        chosen = {**overrides, **({field: winner} if loss == args.select_loss else {})}
        scored = _train_and_score(dev, test, paths, _config(args, loss, chosen), weights)
        finals.append(
            {
                "loss": loss,
                **chosen,
                **{k: scored[k] for k in SCORES if k in scored},
                "train_s": scored["train_s"],
            }
        )
    print(
        f"## Grocery nested selection of {field} for {args.select_loss} "
        f"(inner GroupKFold({args.folds}) on {dev['label_group'].nunique()} training products, "
        f"{len(dev)} photos; {test['label_group'].nunique()} products, "
        f"{len(test)} photos held back)\n"
    )
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores\n")
    print("inner cross-validation (training products only):\n")
    print(inner.round(4).to_markdown())
    print(f"\nchosen {field} = {winner}\n")
    print("held-back products, trained on all training products:\n")
    print(pd.DataFrame(finals).round(4).to_markdown(index=False))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=SHARED)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--run-folds", type=int, default=None, help="only the first N folds")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--image-size", type=int, default=200)
    parser.add_argument("--losses", default="margin,triplet,arcface")
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="a SiameseConfig field for every loss (repeatable), e.g. --set margin=0.2",
    )
    parser.add_argument(
        "--select",
        metavar="FIELD=V1,V2,...",
        help="choose FIELD for --select-loss by nested CV and report held-back products",
    )
    parser.add_argument("--select-loss", default="triplet")
    parser.add_argument(
        "--select-on",
        default="f1",
        choices=["f1", "cal_f1"],
        help="the inner figure the choice maximises: F1 at 0.95 or at the calibrated distance",
    )
    parser.add_argument("--hold-back", type=int, default=13, help="products kept from choices")
    args = parser.parse_args()
    overrides = {}
    for item in args.set:
        key, _, raw = item.partition("=")
        overrides[key] = _parse_value(key, raw)
    logging.basicConfig(level=logging.WARNING)

    from sklearn.model_selection import GroupKFold

    grocery = args.shared / "data" / "grocery"
    weights = args.shared / "weights"
    catalog = pd.read_csv(grocery / "catalog.csv", dtype=str, keep_default_na=False)
    paths = [grocery / "images" / name for name in catalog["image"]]
    if args.select:
        select_and_hold_back(args, catalog, paths, weights, overrides)
        return

    started = time.perf_counter()
    untrained = PretrainedEmbedder("mobilenet", 0.25, 224, weights).embed(paths)
    embed_seconds = time.perf_counter() - started

    rows = []
    curves = {}
    folds = GroupKFold(n_splits=args.folds).split(catalog, groups=catalog["label_group"])
    for fold, (train_idx, test_idx) in enumerate(folds, start=1):
        if args.run_folds and fold > args.run_folds:
            break
        test = catalog.iloc[test_idx].reset_index(drop=True)
        rows.append(
            {"fold": fold, "method": "pHash <= 8 bits", **held_out_f1(test, None, "baseline")}
        )
        rows.append(
            {
                "fold": fold,
                "method": "MobileNet 0.25 untrained, cosine >= 0.85",
                **held_out_f1(test, untrained[test_idx], "baseline"),
            }
        )
        for loss in args.losses.split(","):
            config = _config(args, loss, overrides)
            scored = _train_and_score(
                catalog.iloc[train_idx], catalog.iloc[test_idx], paths, config, weights
            )
            rows.append(
                {
                    "fold": fold,
                    "method": f"Siamese ({loss}), distance < 0.95",
                    **{k: scored[k] for k in ("f1", "precision", "recall", "train_s")},
                }
            )
            if "cal_f1" in scored:
                rows.append(
                    {
                        "fold": fold,
                        "method": f"Siamese ({loss}), calibrated distance",
                        **{k: scored[f"cal_{k}"] for k in ("f1", "precision", "recall")},
                        "train_s": scored["train_s"],
                        "distance": scored["calibrated_distance"],
                    }
                )
            curves[(fold, loss)] = scored["history"]

    table = pd.DataFrame(rows)
    summary = table.groupby("method", sort=False)[["f1", "precision", "recall"]].mean()
    if "train_s" in table:
        summary["train_s (mean)"] = table.groupby("method", sort=False)["train_s"].mean()
    print(
        f"## Grocery image-only, GroupKFold({args.folds}) by product "
        f"({len(rows) and table['fold'].nunique()} folds run; overrides {overrides or 'none'})\n"
    )
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, no GPU; "
        f"{len(catalog)} photos, {catalog['label_group'].nunique()} products; untrained "
        f"MobileNet 0.25 embedding of all photos: {embed_seconds:.1f}s "
        f"({len(catalog) / embed_seconds:.1f} img/s)\n"
    )
    print(summary.round(4).to_markdown())
    print("\nper fold:\n")
    print(table.round(4).to_markdown(index=False))
    print("\nper-epoch curve (loss, held-out F1):\n")
    for (fold, loss), history in curves.items():
        points = ", ".join(
            f"{h['epoch']}: {h['loss']:.3f}/{h.get('held_out_f1', float('nan')):.3f}"
            for h in history
        )
        print(f"- fold {fold} {loss}: {points}")


if __name__ == "__main__":
    main()
