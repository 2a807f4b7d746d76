"""Text read from photos (OCR) as ``best``'s title evidence on the image-only grocery catalog.

Every grocery photo is read once into a database (`core.ocr.read_catalog_photos`: a second
run reads nothing, so the seconds per photo are this CPU's only on the run that read them,
and are kept in the database); then ``best`` is trained and scored on the photos alone and
on the photos plus their text (the text standing in for the empty titles, normalised as
titles are, exactly what the setting ``best_photo_text`` gives the model). The split and
the choice are `bench_grocery_best`'s: the last ``--hold-back`` products (by label) are held
back from every choice; each candidate (backbone, with or without photo text) is scored by
GroupKFold over the other products; the one with the best mean inner F1 is the claim on the
held-back products. Held-back F1 is printed for every candidate.

    python benchmarks/bench_grocery_ocr.py
    python benchmarks/bench_grocery_ocr.py --backbones mobilenet,efficientnet-lite2 --seeds 0,1,2
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_grocery_best import (  # noqa: E402
    BACKBONE_INPUTS,
    SHARED,
    VARIANTS,
    grocery,
    scores,
)
from benchmarks.common import load_line, machine_lines, split_held_back  # noqa: E402
from core.engine import match_catalog
from core.pipelines import MatchInputs  # noqa: E402
from core.pipelines.best import BEST, BestConfig, BestMatcher  # noqa: E402
from core.settings import MatchSettings

DEFAULT_DB = Path(tempfile.gettempdir()) / "samesame-bench" / "grocery_ocr.db"
EVIDENCE = ("photos", "photos+text")


def read_grocery_text(shared: Path, db: Path) -> dict[str, str]:
    """Each grocery posting's photo text, reading (once, into ``db``) the photos no run
    has read; prints how long reading took on this CPU and how many photos say something."""
    from core.catalog import import_catalog
    from core.cli.common import tqdm_progress
    from core.ocr import READER, catalog_photo_texts, read_catalog_photos
    from core.store import Store

    folder = shared / "data" / "grocery"
    with Store(db) as store:
        import_catalog(store, folder / "catalog.csv", folder / "images")
        update, close = tqdm_progress("reading photo text")
        try:
            report = read_catalog_photos(store, progress=update)
        finally:
            close()
        texts = catalog_photo_texts(store)
        stored = store.photo_read_seconds(READER)
    print(f"- OCR ({READER}): this run: {report.sentence()} in {report.seconds:.0f} s")
    if stored:
        print(
            f"- seconds per photo (as stored when read, this CPU): mean "
            f"{statistics.mean(stored):.2f}, median {statistics.median(stored):.2f}, "
            f"max {max(stored):.2f} over {len(stored)} photos"
        )
    said = sum(bool(t) for t in texts.values())
    print(f"- photos with text: {said} of {len(texts)} read")
    return texts


def inputs_with_text(frame: pd.DataFrame, vectors: np.ndarray, text: bool) -> MatchInputs:
    """`bench_grocery_best.inputs_of`, with the photo text as the title where ``text``."""
    from core.ocr import title_with_photo_text

    titles = [title_with_photo_text("", t) for t in frame["photo_text"]] if text else ""
    postings = frame.assign(title_norm=titles).reset_index(drop=True)
    by_id = dict(zip(frame["posting_id"], vectors[frame.index], strict=True))
    return MatchInputs.from_frame(postings, by_id, "bench-photos")


def train_and_score(
    train: pd.DataFrame, test: pd.DataFrame, vectors: np.ndarray, config: BestConfig, text: bool
) -> dict[str, float]:
    started = time.perf_counter()
    matcher = BestMatcher.fit(
        inputs_with_text(train, vectors, text), train["label_group"].tolist(), config=config
    )
    seconds = time.perf_counter() - started
    matched = match_catalog(
        BEST, inputs_with_text(test, vectors, text), MatchSettings(), model=matcher
    )
    return {**scores(test, matched), "train_s": seconds}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=SHARED)
    parser.add_argument("--db", type=Path, default=DEFAULT_DB, help="where photo text is kept")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--hold-back", type=int, default=13, help="products kept from choices")
    parser.add_argument("--variant", default="head-20", choices=list(VARIANTS))
    parser.add_argument("--backbones", default="mobilenet,efficientnet-lite2")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated model seeds")
    args = parser.parse_args(argv)
    from sklearn.model_selection import GroupKFold

    backbones = [b.strip() for b in args.backbones.split(",") if b.strip()]
    unknown = [b for b in backbones if b not in BACKBONE_INPUTS]
    if unknown:
        raise SystemExit(f"unknown backbone(s) {unknown}; known: {', '.join(BACKBONE_INPUTS)}")
    seeds = [int(s) for s in args.seeds.split(",")]
    started = time.perf_counter()
    for line in machine_lines():
        print(line)
    texts = read_grocery_text(args.shared, args.db)
    vectors = {}
    for backbone in backbones:
        catalog, vectors[backbone] = grocery(args.shared, backbone)
    catalog["photo_text"] = [texts.get(pid, "") for pid in catalog["posting_id"]]
    dev, test = split_held_back(catalog, args.hold_back)
    print(
        f"- grocery: {dev['label_group'].nunique()} training products ({len(dev)} photos, "
        f"{int((dev['photo_text'] != '').sum())} with text), "
        f"{test['label_group'].nunique()} held back "
        f"({len(test)} photos, {int((test['photo_text'] != '').sum())} with text); inner "
        f"GroupKFold({args.folds}); seeds {seeds}; variant {args.variant}; backbones {backbones}"
    )
    candidates = [(b, e) for b in backbones for e in EVIDENCE]
    rows = []
    for seed in seeds:
        config = BestConfig(**{**VARIANTS[args.variant], "seed": seed})
        folds = list(GroupKFold(n_splits=args.folds).split(dev, groups=dev["label_group"]))
        inner: dict[tuple[str, str], list[float]] = {}
        for backbone, evidence in candidates:
            for train_pos, test_pos in folds:
                got = train_and_score(
                    dev.iloc[train_pos],
                    dev.iloc[test_pos],
                    vectors[backbone],
                    config,
                    evidence != "photos",
                )
                inner.setdefault((backbone, evidence), []).append(got["f1"])
            scored = np.round(inner[(backbone, evidence)], 4).tolist()
            print(f"seed {seed} {backbone} {evidence:11s} inner F1 {scored}", flush=True)
        winner = max(candidates, key=lambda c: np.mean(inner[c]))
        for backbone, evidence in candidates:
            final = train_and_score(dev, test, vectors[backbone], config, evidence != "photos")
            rows.append(
                {
                    "seed": seed,
                    "backbone": backbone,
                    "evidence": evidence,
                    "chosen": "yes" if (backbone, evidence) == winner else "",
                    "inner F1 (mean ± sd)": f"{np.mean(inner[(backbone, evidence)]):.4f} "
                    f"± {np.std(inner[(backbone, evidence)]):.4f}",
                    "held-back F1": round(final["f1"], 4),
                    "precision": round(final["precision"], 4),
                    "recall": round(final["recall"], 4),
                    "train s": round(final["train_s"], 1),
                }
            )
    table = pd.DataFrame(rows)
    print()
    print(table.to_markdown(index=False))
    print()
    means = table.groupby(["backbone", "evidence"])["held-back F1"].mean().unstack()
    print("mean held-back F1 over seeds (rows: backbone; columns: evidence):")
    print(means.round(4).to_markdown())
    print("(held-back F1 is printed for every candidate; only the chosen one is the claim)")
    print(load_line())
    print(f"- benchmark wall time: {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
