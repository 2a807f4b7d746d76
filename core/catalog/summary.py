"""Row problems of an import, grouped by kind and said in words: "549 postings without a title:
matched by image only" reads better than 549 table rows."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

#: kind -> (which postings, what follows for them, whether they can still match anything)
KINDS: dict[str, tuple[str, str, bool]] = {
    "no_title": ("without a title", "matched by image only", True),
    "bad_hash": (
        "with an image_phash that is not 16 hex digits",
        "the hash is ignored (computed from the image where there is one)",
        True,
    ),
    "image_missing": (
        "naming an image file that is not in the image folder",
        "matched by title (and the CSV's hash) only",
        True,
    ),
    "image_refused": (
        "with an image outside the image folder (a URL, an absolute path or '..')",
        "refused, matched by title only",
        True,
    ),
    "image_unreadable": (
        "with an image that cannot be read (empty, corrupt, truncated or not an image)",
        "matched by title only",
        True,
    ),
    "nothing_to_match": (
        "with no usable title, image or hash",
        "each can only match itself",
        False,
    ),
}


@dataclass(frozen=True)
class ProblemGroup:
    kind: str
    count: int
    #: "549 postings without a title: matched by image only"
    sentence: str
    #: False when the postings can match nothing but themselves
    usable: bool
    examples: pd.DataFrame


def summarize_problems(problems: pd.DataFrame, examples: int = 3) -> list[ProblemGroup]:
    """Groups of ``problems`` (columns row, posting_id, field, kind — one of `KINDS` — and
    problem), each with a few example rows: postings that can match nothing first, then the
    biggest groups."""
    if problems.empty:
        return []
    frame = problems
    # A posting that can match nothing is told so once, not also under each missing piece.
    hopeless = set(frame.loc[frame["kind"] == "nothing_to_match", "posting_id"])
    frame = frame[(frame["kind"] == "nothing_to_match") | ~frame["posting_id"].isin(hopeless)]
    groups = []
    for kind, rows in frame.groupby("kind", sort=False):
        which, consequence, usable = KINDS[kind]
        count = rows["posting_id"].nunique()
        noun = "posting" if count == 1 else "postings"
        groups.append(
            ProblemGroup(
                kind=kind,
                count=count,
                sentence=f"{count:,} {noun} {which}: {consequence}",
                usable=usable,
                examples=rows[["row", "posting_id", "problem"]].head(examples),
            )
        )
    return sorted(groups, key=lambda g: (g.usable, -g.count))
