"""``link``: match one catalog against another (price matching)."""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from core.catalog import import_catalog
from core.cli.common import (
    TqdmHooks,
    default_pipeline,
    pipeline_choice,
    settings_args,
    settings_from,
    tqdm_progress,
    write_csv,
)
from core.errors import SameSameError
from core.link import link_catalogs
from core.store import Store


def add_commands(sub) -> None:
    p = sub.add_parser(
        "link",
        help="for every posting of one catalog, the postings of another that are the same product",
    )
    p.add_argument("--catalog", required=True, help="catalog A (CSV): one output row per posting")
    p.add_argument("--against", required=True, help="catalog B (CSV): the matches come from it")
    p.add_argument("--images", help="image folder of --catalog")
    p.add_argument("--against-images", help="image folder of --against")
    p.add_argument("--pipeline", type=pipeline_choice, default=default_pipeline())
    p.add_argument(
        "--model", help="trained model folder (Siamese for the ensemble, or the best matcher)"
    )
    p.add_argument(
        "--hash-only",
        action="store_true",
        help="use perceptual hashes for image evidence, no neural network",
    )
    p.add_argument("--out", required=True, help="write posting_id,matches CSV here")
    settings_args(p)
    p.set_defaults(run=cmd_link)


def _import(store, csv: str, images: str | None, what: str) -> None:
    update, close = tqdm_progress(f"importing {what}")
    try:
        report = import_catalog(store, Path(csv), Path(images) if images else None, progress=update)
    finally:
        close()
    if report.problems:
        print(
            f"note: {len(report.problems)} row problem(s) in {csv} "
            "(python -m core import shows them)",
            file=sys.stderr,
        )


def cmd_link(args: argparse.Namespace) -> int:
    if args.pipeline == "all":
        raise SameSameError("link takes one pipeline: choose --pipeline NAME")
    work = Path(tempfile.mkdtemp(prefix="samesame-link-"))
    terminal = TqdmHooks()
    try:
        with Store(work / "a.db") as a, Store(work / "b.db") as b:
            _import(a, args.catalog, args.images, "--catalog")
            _import(b, args.against, args.against_images, "--against")
            (work / "union").mkdir()
            links = link_catalogs(
                a,
                b,
                args.pipeline,
                settings_from(args, a),
                work / "union",
                model_dir=Path(args.model) if args.model else None,
                hash_only=args.hash_only,
                hooks=terminal.hooks(),
            )
    finally:
        terminal.close()
        shutil.rmtree(work, ignore_errors=True)
    write_csv(links, Path(args.out))
    linked = int((links["matches"] != "").sum())
    print(
        f"{linked:,} of {len(links):,} postings of {args.catalog} matched in {args.against} "
        f"({args.pipeline}); wrote {args.out}"
    )
    return 0
