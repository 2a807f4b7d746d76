"""Link one catalog to another (the price-match case): for every posting of catalog A, the
postings of catalog B that are the same product.

Both catalogs go into one scratch database (ids tagged by side, vectors copied where they
exist), the chosen pipeline matches it with its own settings through the batch engine — so
linking is bounded as matching is, by the two catalogs' size — and only the pairs across the
two sides are kept. Matches inside A or inside B are not reported.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from core import matching
from core.matching import Hooks
from core.pipelines import get_pipeline
from core.settings import MatchSettings
from core.store import Store

SIDES = ("A", "B")
_SEP = ":"


def _tagged(side: str, posting_id: str) -> str:
    return f"{side}{_SEP}{posting_id}"


def _copy_side(side: str, source: Store, union: Store, vectors: list[tuple[str, str | None]]):
    rows = source.postings().drop(columns=["added_at"]).to_dict("records")
    for row in rows:
        row["posting_id"] = _tagged(side, row["posting_id"])
        row["label_group"] = None  # labels are not evidence, and A's and B's need not agree
    union.upsert_postings(rows)
    for name, version in vectors:
        ids, found = source.load_embeddings(name, version)
        if ids:
            union.save_embeddings(name, version or "", [_tagged(side, p) for p in ids], found)


def link_catalogs(
    catalog: Store,
    against: Store,
    pipeline: str,
    settings: MatchSettings,
    work_dir: Path,
    *,
    model_dir: Path | None = None,
    hash_only: bool = False,
    embed: bool = True,
    hooks: Hooks | None = None,
) -> pd.DataFrame:
    """``posting_id,matches``: every posting of ``catalog`` in its order, with the
    space-separated ids of the ``against`` postings it matches, best first (possibly none).

    Args:
        work_dir: an empty folder for the scratch database (removed by the caller).
        model_dir: the trained model (Siamese for the ensemble, the best matcher).
        hash_only: perceptual hashes are the only image evidence (no neural network).
        embed: compute the image vectors the catalogs lack (as ``match`` does); without it,
            perceptual hashes stand in for them (as the app's "Run now" buttons do).

    Raises:
        SameSameError: the pipeline cannot run (e.g. ``best`` without a trained model).
    """
    hooks = hooks or Hooks()
    pipe = get_pipeline(pipeline)
    if model_dir is None:
        # The scratch database has no models of its own: the catalog's are the ones to use.
        model_dir = pipe.model_folder(catalog)
    model = None if hash_only else pipe.image_model(catalog, settings, model_dir)
    vectors = [model] if model else []
    with Store(Path(work_dir) / "link.db") as union:
        for side, store in zip(SIDES, (catalog, against), strict=True):
            _copy_side(side, store, union, vectors)
        matching.ensure_ready(
            union,
            pipeline,
            settings,
            model_dir=model_dir,
            hash_only=hash_only or not embed,
            hooks=hooks,
            train=False,
        )
        result = matching.run_pipeline(
            union,
            pipeline,
            settings,
            model_dir=model_dir,
            hash_only=hash_only,
            save=False,
            progress=hooks.progress(f"linking ({pipeline})"),
        )
    return cross_links(catalog.postings(["posting_id"])["posting_id"].tolist(), result.pairs)


def cross_links(posting_ids: list[str], pairs: pd.DataFrame) -> pd.DataFrame:
    """Each A posting's B matches from the union's pairs (either side listing the other)."""
    left, right = pairs["left"].astype(str), pairs["right"].astype(str)
    a_left = left.str.startswith("A" + _SEP) & right.str.startswith("B" + _SEP)
    b_left = left.str.startswith("B" + _SEP) & right.str.startswith("A" + _SEP)
    links = pd.DataFrame(
        {
            "a": pd.concat([left[a_left], right[b_left]]).str[2:],
            "b": pd.concat([right[a_left], left[b_left]]).str[2:],
            "similarity": pd.concat([pairs["similarity"][a_left], pairs["similarity"][b_left]]),
        }
    ).sort_values(["a", "similarity", "b"], ascending=[True, False, True], kind="stable")
    found = links.groupby("a", sort=False)["b"].agg(" ".join)
    return pd.DataFrame(
        {
            "posting_id": posting_ids,
            "matches": [found.get(pid, "") for pid in posting_ids],
        }
    )


def score_links(
    links: pd.DataFrame, catalog_labels: dict[str, str], against_labels: dict[str, str]
) -> dict[str, float]:
    """Mean per-posting F1, precision and recall of ``links`` (`link_catalogs`' output)
    against labels: a posting's true links are the ``against`` postings sharing its label. A
    posting with no true link and none found scores 1 (nothing to find, nothing claimed);
    ``f1_linked`` is the mean over the postings that have a true link only."""
    by_label: dict[str, set[str]] = {}
    for pid, label in against_labels.items():
        by_label.setdefault(label, set()).add(pid)
    rows = []
    for pid, found in zip(links["posting_id"], links["matches"].fillna(""), strict=True):
        guessed = set(str(found).split())
        truth = by_label.get(catalog_labels.get(pid), set())
        hits = len(guessed & truth)
        precision = hits / len(guessed) if guessed else float(not truth)
        recall = hits / len(truth) if truth else float(not guessed)
        f1 = 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
        rows.append((f1, precision, recall, bool(truth)))
    frame = pd.DataFrame(rows, columns=["f1", "precision", "recall", "linked"])
    return {
        "f1": float(frame["f1"].mean()),
        "precision": float(frame["precision"].mean()),
        "recall": float(frame["recall"].mean()),
        "f1_linked": float(frame.loc[frame["linked"], "f1"].mean()),
        "postings": len(frame),
        "linked_postings": int(frame["linked"].sum()),
    }
