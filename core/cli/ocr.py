"""``ocr``: read the text printed on the catalog's photos (optional package), once per photo."""

from __future__ import annotations

import argparse
import sys

from core.cli.common import open_store, tqdm_progress
from core.ocr import read_catalog_photos


def add_commands(sub) -> None:
    p = sub.add_parser(
        "ocr",
        help="read the text printed on the catalog's photos (brand, size) for best's "
        "best_photo_text; each photo once (needs the optional OCR package)",
    )
    p.add_argument(
        "--batch",
        type=int,
        default=32,
        metavar="N",
        help="postings per saved batch (default 32); an interrupted run, run again, goes on",
    )
    p.set_defaults(run=cmd_ocr)


def cmd_ocr(args: argparse.Namespace) -> int:
    with open_store(args) as store:
        update, close = tqdm_progress("reading photo text")
        try:
            report = read_catalog_photos(store, batch=max(1, args.batch), progress=update)
        finally:
            close()
    for failure in report.failures:
        print(f"skipped {failure}", file=sys.stderr)
    print(report.sentence())
    return 0
