"""Commands about the catalog itself: import, demo, info, export."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from core.catalog import DEFAULT_CHUNK_ROWS, import_catalog
from core.catalog.pairs import verdict_pairs
from core.cli.common import open_store, pipeline_choice, tqdm_progress, write_csv
from core.demo import ensure_demo_catalog
from core.errors import SameSameError
from core.exports import FORMATS as EXPORT_FORMATS
from core.exports import WHATS as EXPORTS
from core.exports import export
from core.pipeline_choice import chosen_pipeline
from core.settings import data_dir
from core.workspace import open_demo


def add_commands(sub) -> None:
    """The import, export, verdicts, demo and info commands, in that order."""
    _add_import(sub)
    _add_export(sub)
    _add_small_commands(sub)


def _add_import(sub) -> None:
    p = sub.add_parser("import", help="import a catalog CSV (+ image folder) into the database")
    p.add_argument("catalog", help="CSV: posting_id,image,image_phash,title,label_group")
    p.add_argument("--images", help="folder the image column refers to")
    p.add_argument(
        "--show-problems",
        type=int,
        default=20,
        metavar="N",
        help="print up to N row problems (default 20)",
    )
    p.add_argument(
        "--chunk-rows",
        type=int,
        metavar="N",
        help="postings written per transaction (default 5000); a killed import, run again, "
        "continues after the last whole chunk",
    )
    p.set_defaults(run=cmd_import)


def _add_export(sub) -> None:
    p = sub.add_parser(
        "export",
        help="write a pipeline's stored results (matches, clusters, verdicts or the Kaggle "
        "posting_id,matches file) as CSV or Excel",
    )
    p.add_argument(
        "--pipeline",
        type=pipeline_choice,
        default=None,
        help="default: the catalog's chosen pipeline, the one the app answers with (the most "
        "accurate one with stored matches unless another was chosen in the app)",
    )
    p.add_argument("--out", required=True)
    p.add_argument(
        "--what",
        choices=EXPORTS,
        default="kaggle",
        help="matches: one row per matched pair (ids, titles, image files, probability, "
        "verdict, reviewed by a person); clusters: cluster id, members, strength; verdicts: "
        "the reviewer's; kaggle: posting_id,matches (default)",
    )
    p.add_argument(
        "--format",
        choices=EXPORT_FORMATS,
        help="csv or xlsx (Excel); default: xlsx when --out ends in .xlsx, else csv",
    )
    p.add_argument(
        "--clusters",
        action="store_true",
        help="kaggle: each posting's cluster instead of its own matches (see README: clusters)",
    )
    p.set_defaults(run=cmd_export)


def _add_small_commands(sub) -> None:
    """verdicts, demo and info: a flag or two each."""
    p = sub.add_parser(
        "verdicts", help="write the database's verdicts as left_id,right_id,same (1/0) CSV"
    )
    p.add_argument("--out", required=True)
    p.set_defaults(run=cmd_verdicts)

    p = sub.add_parser("demo", help="generate the built-in demo catalog and import it")
    p.add_argument("--out", help="also copy the demo catalog folder here")
    p.set_defaults(run=cmd_demo)

    p = sub.add_parser("info", help="what the database holds")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_info)


def cmd_import(args: argparse.Namespace) -> int:
    chunk_rows = DEFAULT_CHUNK_ROWS if args.chunk_rows is None else args.chunk_rows
    if chunk_rows < 1:
        raise SameSameError(f"--chunk-rows must be at least 1, not {chunk_rows}")
    update, close = tqdm_progress("importing rows")
    with open_store(args) as store:
        try:
            report = import_catalog(
                store,
                Path(args.catalog),
                Path(args.images) if args.images else None,
                progress=update,
                chunk_rows=chunk_rows,
            )
        finally:
            close()
        if report.resumed_from:
            print(
                f"resumed an interrupted import: {report.resumed_from} postings were already "
                "written"
            )
        print(
            f"imported {report.rows} postings ({report.changed} new or changed) into {store.path}"
        )
        if report.problems:
            print(f"{len(report.problems)} row problem(s); the rows were kept:")
            for problem in report.problems[: args.show_problems]:
                print(
                    f"  row {problem['row']} ({problem['posting_id']}) "
                    f"{problem['field']}: {problem['problem']}"
                )
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    if args.pipeline == "all":
        raise SameSameError("export writes one pipeline's results; choose --pipeline NAME")
    if args.clusters and args.what != "kaggle":
        raise SameSameError("--clusters is for --what kaggle; --what clusters lists clusters")
    out = Path(args.out)
    fmt = args.format or ("xlsx" if out.suffix.lower() == ".xlsx" else "csv")
    with open_store(args) as store:
        pipeline = args.pipeline or chosen_pipeline(store).name
        rows = export(store, args.what, fmt, pipeline, out, clusters=args.clusters)
    noun = {"kaggle": "postings", "matches": "matched pairs"}.get(args.what, args.what)
    print(f"wrote {rows} {noun} to {args.out}")
    return 0


def cmd_verdicts(args: argparse.Namespace) -> int:
    """The Review page's verdicts in the pairs layout `train --pairs` and `spark-match
    --verdicts` read."""
    with open_store(args) as store:
        pairs = verdict_pairs(store.reviews())
    write_csv(pairs, Path(args.out))
    print(f"wrote {len(pairs)} verdict(s) to {args.out}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    csv_path = ensure_demo_catalog(data_dir())
    if args.db:
        with open_store(args) as store:
            import_catalog(store, csv_path, csv_path.parent / "images")
            target = store.path
    else:
        with open_demo() as store:
            target = store.path
    if args.out:
        shutil.copytree(csv_path.parent, Path(args.out), dirs_exist_ok=True)
        print(f"demo catalog copied to {args.out}")
    print(f"demo catalog {csv_path} imported into {target}")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    with open_store(args) as store:
        info = store.info()
        info["database"] = str(store.path)
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        for key, value in info.items():
            print(f"{key}: {value}")
    return 0
