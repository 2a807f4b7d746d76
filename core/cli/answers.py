"""``query``: the catalog postings that are the same product as a new item, each with its answer
in words; ``calibrate``: fit the rule pipelines' probabilities on this catalog's own labels."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from core.cli.common import open_store
from core.errors import SameSameError
from core.rule_calibration import RULE_PIPELINES, refit_on_catalog
from core.service.answers import ItemRequest, match_item
from core.service.models import ServiceModels

#: The answer column is as wide as its longest word ("Probably same").
WORD_WIDTH = 13


def add_commands(sub) -> None:
    p = sub.add_parser(
        "query",
        help="the catalog postings that are the same product as a new item (a title, a photo "
        "or a perceptual hash), each with its answer: Same / Probably same / Unsure / Different",
    )
    p.add_argument("--title", help="the item's title")
    p.add_argument("--image", help="the item's photo (a file)")
    p.add_argument("--phash", help="the item's perceptual hash (16 hex digits)")
    p.add_argument(
        "--pipeline",
        help="which pipeline answers (default: the most accurate ready one without a model to "
        "load, as the HTTP API chooses)",
    )
    p.add_argument("--limit", type=int, default=10, help="postings listed (1-100, default 10)")
    p.add_argument("--json", action="store_true", help="print the HTTP API's answer as JSON")
    p.set_defaults(run=cmd_query)

    p = sub.add_parser(
        "calibrate",
        help="fit baseline's and ensemble's probabilities on this labelled catalog (used until "
        "its postings change; else the curves fitted on Shopee apply)",
    )
    p.add_argument("--pipeline", choices=["baseline", "ensemble", "all"], default="all")
    p.set_defaults(run=cmd_calibrate)


def cmd_query(args: argparse.Namespace) -> int:
    image = None
    if args.image:
        try:
            image = Path(args.image).read_bytes()
        except OSError as exc:
            raise SameSameError(f"cannot read {args.image}: {exc.strerror or exc}") from exc
    with open_store(args) as store:
        db_path = store.path
    models = ServiceModels(db_path)
    try:
        request = ItemRequest(title=args.title, image=image, phash=args.phash)
        answer = match_item(models, request, args.pipeline, args.limit)
    finally:
        models.store().close()  # this thread's connection, the one the answer used
    if args.json:
        print(json.dumps(answer, indent=2, ensure_ascii=False))
        return 0
    print(answer_lines(answer))
    return 0


def answer_lines(answer: dict) -> str:
    """The answer as a person reads it: per posting its rank, the verdict word, id and title,
    then how likely and why in words on the next line."""
    results = answer["results"]
    lines = [
        f"{answer['pipeline']}: {answer['matched']} of {len(results)} listed postings are "
        "matches" + ("" if results else " (the catalog has nothing like it)")
    ]
    lines += [f"note: {notice}" for notice in answer["notices"]]
    for rank, row in enumerate(results, start=1):
        title = (row["title"] or "(no title)").replace("\n", " ")[:70]
        lines.append(f"{rank:>3}. {row['verdict']:<{WORD_WIDTH}}  {row['posting_id']}  {title}")
        likely = (
            "no score"
            if row["probability"] is None
            else f"{row['probability']:.0%} likely the same product"
        )
        match = "a match" if row["matched"] else "closest, not a match"
        lines.append(f"     {likely} · {row['evidence']} · {match}")
    return "\n".join(lines)


def cmd_calibrate(args: argparse.Namespace) -> int:
    wanted = RULE_PIPELINES if args.pipeline == "all" else (args.pipeline,)
    with open_store(args) as store:
        if store.info()["label_groups"] == 0:
            raise SameSameError(
                "Calibrating needs a labelled catalog: add a label_group column (postings of "
                "the same product share a value)."
            )
        for name in wanted:
            curve = refit_on_catalog(store, name)
            print(
                f"{name}: {curve.method} curve fitted on {curve.pairs:,} candidate pairs "
                f"({curve.same:,} of the same product); used for this catalog until its "
                "postings change"
            )
    return 0
