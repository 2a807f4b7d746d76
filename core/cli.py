"""``python -m core``: import, embed, train, match, evaluate, export, demo, info.

Exit codes: 0 success, 2 bad input or a problem the user can fix (message on stderr), 130 when
interrupted.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from core.errors import SameSameError
from core.pipelines import PIPELINES
from core.settings import MatchSettings

logger = logging.getLogger("core.cli")

EXIT_BAD_INPUT = 2


def tqdm_progress(description: str) -> tuple[Callable[[int, int], None], Callable[[], None]]:
    """A (done, total) callback drawing a tqdm bar on stderr, and a function closing it."""
    from tqdm import tqdm

    bars: list = []  # drawn on the first update, so a command failing before that prints no bar

    def update(done: int, total: int) -> None:
        if not bars:
            bars.append(
                tqdm(desc=description, unit="item", file=sys.stderr, leave=True, dynamic_ncols=True)
            )
        bar = bars[0]
        if bar.total != total:
            bar.total = total
        bar.n = done
        bar.refresh()

    def close() -> None:
        for bar in bars:
            bar.close()

    return update, close


#: (flag, MatchSettings field, type, help) of the settings every matching command accepts.
_SETTING_FLAGS: tuple[tuple[str, str, type, str], ...] = (
    ("--image-threshold", "baseline_image_cosine", float, "baseline image cosine"),
    ("--text-threshold", "baseline_text_cosine", float, "baseline TF-IDF cosine"),
    ("--hash-distance", "hash_max_distance", int, "max pHash bit distance"),
    ("--siamese-distance", "ensemble_image_distance", float, "ensemble Siamese distance"),
    ("--ratio-threshold", "ensemble_text_ratio", float, "ensemble SequenceMatcher ratio"),
    ("--combined-threshold", "ensemble_combined", float, "ensemble combined score"),
    ("--backbone", "image_backbone", str, "baseline backbone: mobilenet, mobilenetv2, vgg16"),
    ("--alpha", "image_alpha", float, "baseline MobileNet width (0.25 works offline here)"),
    ("--siamese-backbone", "siamese_backbone", str, "Siamese backbone"),
    ("--siamese-alpha", "siamese_alpha", float, "Siamese MobileNet width"),
    ("--epochs", "siamese_epochs", int, "Siamese training epochs"),
    ("--loss", "siamese_loss", str, "Siamese loss: margin, triplet or arcface"),
    ("--batch-size", "batch_size", int, "images per batch"),
    ("--weights-dir", "weights_dir", str, "folder holding Keras ImageNet .h5 files (offline)"),
)


def _settings_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("settings (default: what the database has stored)")
    defaults = MatchSettings()
    for flag, field_name, kind, text in _SETTING_FLAGS:
        group.add_argument(
            flag,
            type=kind,
            dest=field_name,
            help=f"{text} (default {getattr(defaults, field_name)!r})",
        )
    group.add_argument(
        "--translate",
        action="store_true",
        default=None,
        dest="translate_titles",
        help="translate titles to English before the ensemble (needs internet)",
    )


def _oneshot_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--catalog", help="one-shot: import this CSV into a temporary database")
    parser.add_argument("--images", help="image folder of --catalog")
    parser.add_argument(
        "--model", help="trained model folder (Siamese for the ensemble, or the best matcher)"
    )
    parser.add_argument(
        "--hash-only",
        action="store_true",
        help="use perceptual hashes for image evidence, no neural network",
    )


def _settings_from(args: argparse.Namespace, store) -> MatchSettings:
    settings = store.load_settings()
    overrides = {
        name: getattr(args, name)
        for name in MatchSettings.__dataclass_fields__
        if getattr(args, name, None) is not None
    }
    return settings.replace(**overrides) if overrides else settings


def _open_store(args: argparse.Namespace):
    from core.service import default_db_path
    from core.store import Store

    return Store(Path(args.db) if args.db else default_db_path())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m core",
        description="SameSame: find which product postings are the same product.",
    )
    parser.add_argument("--db", help="database file (default: the user data folder's samesame.db)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

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

    p = sub.add_parser("embed", help="compute image embeddings for the database's postings")
    p.add_argument(
        "--model",
        choices=["mobilenet", "siamese", "all"],
        default="mobilenet",
        help="mobilenet = baseline ImageNet model; siamese = trained ensemble model",
    )
    p.add_argument("--model-dir", help="trained Siamese model folder (default: per database)")
    _settings_args(p)

    p = sub.add_parser(
        "train", help="train models on labelled groups: the Siamese network and/or the best matcher"
    )
    p.add_argument("--catalog", help="import this CSV first (else train on the database)")
    p.add_argument("--images", help="image folder of --catalog")
    p.add_argument("--model", required=True, help="folder to save the trained model(s) in")
    p.add_argument(
        "--pipeline",
        choices=["auto", "ensemble", "best"],
        default="auto",
        help="ensemble = Siamese image network; best = learned pair classifier; auto = the best "
        "matcher, plus the Siamese network when labelled postings have image files",
    )
    _settings_args(p)

    p = sub.add_parser(
        "match", help="match postings with a pipeline and store or write the matches"
    )
    p.add_argument("--pipeline", choices=[*PIPELINES, "all"], default="baseline")
    _oneshot_args(p)
    p.add_argument("--out", help="write posting_id,matches CSV here")
    _settings_args(p)

    p = sub.add_parser("evaluate", help="F1, precision and recall against label_group")
    p.add_argument("--pipeline", choices=[*PIPELINES, "all"], default="all")
    _oneshot_args(p)
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    _settings_args(p)

    p = sub.add_parser("export", help="write stored matches as posting_id,matches CSV")
    p.add_argument("--pipeline", choices=PIPELINES, default="baseline")
    p.add_argument("--out", required=True)

    p = sub.add_parser("demo", help="generate the built-in demo catalog and import it")
    p.add_argument("--out", help="also copy the demo catalog folder here")

    p = sub.add_parser("info", help="what the database holds")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser(
        "spark-match", help="match a catalog file on Apache Spark (local, or a cluster)"
    )
    _spark_match_args(p)
    for subparser in sub.choices.values():
        # `--db` is accepted after the command too (`import X.csv --db PATH`); SUPPRESS keeps
        # a value given before the command when it is not repeated after it.
        subparser.add_argument(
            "--db", default=argparse.SUPPRESS, help="database file (same as before the command)"
        )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return COMMANDS[args.command](args)
    except SameSameError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print(
            "interrupted: work saved so far is kept; run the command again to continue.",
            file=sys.stderr,
        )
        return 130


def cmd_import(args: argparse.Namespace) -> int:
    from core.catalog import DEFAULT_CHUNK_ROWS, import_catalog

    chunk_rows = DEFAULT_CHUNK_ROWS if args.chunk_rows is None else args.chunk_rows
    if chunk_rows < 1:
        raise SameSameError(f"--chunk-rows must be at least 1, not {chunk_rows}")
    update, close = tqdm_progress("importing rows")
    with _open_store(args) as store:
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


def cmd_embed(args: argparse.Namespace) -> int:
    from core import service

    with _open_store(args) as store:
        settings = _settings_from(args, store)
        if args.model in ("mobilenet", "all"):
            update, close = tqdm_progress(f"embedding ({service.image_model_name(settings)})")
            try:
                added = service.embed_images(store, settings, update)
            finally:
                close()
            print(f"{added} image(s) embedded with {service.image_model_name(settings)}")
        if args.model in ("siamese", "all"):
            model_dir = service.siamese_dir(store, Path(args.model_dir) if args.model_dir else None)
            update, close = tqdm_progress("embedding (siamese)")
            try:
                added = service.embed_siamese(store, settings, model_dir, update)
            finally:
                close()
            print(f"{added} image(s) embedded with the Siamese model in {model_dir}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from core import service

    with _scratch_store(args) as store:
        settings = _settings_from(args, store)
        if service.labels_of(store) is None:
            raise SameSameError(
                "Training needs a labelled catalog: add a label_group column (postings of the "
                "same product share a value)."
            )
        has_images = store.info()["images"]["ok"] > 0
        if args.pipeline in ("auto", "best"):
            _train_best(store, settings, Path(args.model))
        if args.pipeline == "ensemble" or (args.pipeline == "auto" and has_images):
            _train_siamese(store, settings, Path(args.model))
    return 0


def _train_best(store, settings: MatchSettings, model_dir: Path, report_to=None) -> None:
    """Train and save; the summary goes to stdout (train) or ``report_to`` (stderr while
    matching, so stdout stays the command's own output: tables, JSON)."""
    from core import service

    update, close = tqdm_progress("training best matcher (stages)")
    try:
        report = service.train_best_model(store, settings, model_dir, update)
    finally:
        close()
    print(
        f"best matcher: trained on {report['postings']:,} postings in {report['label_groups']:,} "
        f"groups in {report['seconds']:.0f}s, out-of-fold F1 {report['oof_f1']:.3f}; saved to "
        f"{model_dir}",
        file=report_to or sys.stdout,
    )


def _train_siamese(store, settings: MatchSettings, model_dir: Path) -> None:
    from core import service

    update, close = tqdm_progress("training siamese (steps)")
    try:
        report = service.train_siamese_model(store, settings, model_dir, update)
    finally:
        close()
    last = report["history"][-1]
    print(
        f"siamese: trained on {report['images']} images in {report['seconds']:.0f}s, final loss "
        f"{last['loss']:.4f}; saved to {model_dir}"
    )


class _scratch_store:
    """The --db store, or with --catalog (and no --db) a temporary one that is removed after."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.tmp: Path | None = None
        self.store = None

    def __enter__(self):
        from core.catalog import import_catalog
        from core.store import Store

        args = self.args
        if getattr(args, "catalog", None) and not args.db:
            self.tmp = Path(tempfile.mkdtemp(prefix="samesame-"))
            self.store = Store(self.tmp / "oneshot.db")
        else:
            self.store = _open_store(args)
        if getattr(args, "catalog", None):
            update, close = tqdm_progress("importing rows")
            try:
                report = import_catalog(
                    self.store,
                    Path(args.catalog),
                    Path(args.images) if args.images else None,
                    progress=update,
                )
            finally:
                close()
            if report.problems:
                print(
                    f"note: {len(report.problems)} row problem(s) in {args.catalog} "
                    "(python -m core import shows them)",
                    file=sys.stderr,
                )
        return self.store

    def __exit__(self, *exc: object) -> None:
        if self.store is not None:
            self.store.close()
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)


def _prepare_images(store, pipeline: str, settings: MatchSettings, args) -> None:
    """Make sure the vectors a pipeline reads exist, unless --hash-only."""
    from core import service

    if pipeline == "best":
        _prepare_best(store, settings, args)
        return
    if args.hash_only or store.info()["images"]["ok"] == 0:
        return
    if pipeline == "baseline":
        update, close = tqdm_progress(f"embedding ({service.image_model_name(settings)})")
        try:
            service.embed_images(store, settings, update)
        finally:
            close()
        return
    model_dir = service.siamese_dir(store, Path(args.model) if args.model else None)
    if service.siamese_version(model_dir) is None:
        if service.labels_of(store) is None:
            raise SameSameError(
                f"The ensemble needs a trained Siamese model and {model_dir} has none; pass "
                "--model DIR (trained with python -m core train), or --hash-only."
            )
        print(
            f"training a Siamese model on this catalog's labels into {model_dir}", file=sys.stderr
        )
        update, close = tqdm_progress("training siamese (steps)")
        try:
            service.train_siamese_model(store, settings, model_dir, update)
        finally:
            close()
    update, close = tqdm_progress("embedding (siamese)")
    try:
        service.embed_siamese(store, settings, model_dir, update)
    finally:
        close()


def _prepare_best(store, settings: MatchSettings, args) -> None:
    """Use --model as given; else the database's own model, (re)trained when the catalog
    changed since it was trained (and it has labels to train on)."""
    from core import service

    explicit = Path(args.model) if args.model else None
    model_dir = service.best_dir(store, explicit)
    info = service.best_model_info(model_dir)
    if explicit is not None and info is None:
        raise SameSameError(
            f"{model_dir} holds no trained best matcher; train one with python -m core train "
            "--pipeline best --model DIR on a labelled catalog"
        )
    if explicit is None and not service.best_is_current(store, model_dir):
        if service.labels_of(store) is None:
            raise SameSameError(
                "The best pipeline needs a trained model: pass --model DIR (trained with python "
                "-m core train on a labelled catalog)."
            )
        print(
            f"training the best matcher on this catalog's labels into {model_dir}", file=sys.stderr
        )
        _train_best(store, settings, model_dir, report_to=sys.stderr)
        info = service.best_model_info(model_dir)
        if getattr(args, "command", None) == "evaluate":
            print(
                "note: best was trained on this catalog's labels, so its figures here are "
                "in-sample (see BENCHMARKS.md for held-out ones)",
                file=sys.stderr,
            )
    image_model = (info or {}).get("image_model")
    if (
        image_model
        and not args.hash_only
        and image_model == service.image_model_name(settings)
        and store.info()["images"]["ok"] > 0
    ):
        update, close = tqdm_progress(f"embedding ({image_model})")
        try:
            service.embed_images(store, settings, update)
        finally:
            close()


def _run(store, pipeline: str, settings: MatchSettings, args):
    from core import service

    _prepare_images(store, pipeline, settings, args)
    model_dir = Path(args.model) if getattr(args, "model", None) else None
    result = service.run_pipeline(
        store, pipeline, settings, model_dir=model_dir, hash_only=args.hash_only
    )
    for notice in result.notices:
        print(f"note: {notice}", file=sys.stderr)
    return result


def _pipelines(args: argparse.Namespace, store) -> list[str]:
    """--pipeline all: every pipeline that can run here (best needs a model or labels)."""
    if args.pipeline != "all":
        return [args.pipeline]
    from core import service

    can_best = (
        service.best_model_info(service.best_dir(store, Path(args.model) if args.model else None))
        is not None
        or service.labels_of(store) is not None
    )
    return [p for p in PIPELINES if p != "best" or can_best]


def cmd_match(args: argparse.Namespace) -> int:
    if args.out and args.pipeline == "all":
        raise SameSameError("--out takes one pipeline; choose --pipeline " + "|".join(PIPELINES))
    with _scratch_store(args) as store:
        settings = _settings_from(args, store)
        for pipeline in _pipelines(args, store):
            result = _run(store, pipeline, settings, args)
            groups = len(set(result.groups().values()))
            print(
                f"{pipeline}: {len(result.pairs)} matched pairs, {groups} groups, "
                f"{result.seconds:.1f}s"
            )
            if args.out:
                _write_csv(result.submission(), Path(args.out))
                print(f"wrote {args.out}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from core import service

    figures = {}
    with _scratch_store(args) as store:
        settings = _settings_from(args, store)
        for pipeline in _pipelines(args, store):
            result = _run(store, pipeline, settings, args)
            figures[pipeline] = {
                **service.evaluate_result(store, result),
                "seconds": round(result.seconds, 2),
            }
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        print(f"{'pipeline':<10} {'F1':>7} {'precision':>10} {'recall':>7} {'seconds':>8}")
        for name, f in figures.items():
            print(
                f"{name:<10} {f['f1']:>7.4f} {f['precision']:>10.4f} {f['recall']:>7.4f} "
                f"{f['seconds']:>8.1f}"
            )
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from core import service

    with _open_store(args) as store:
        result = service.stored_result(store, args.pipeline)
        if result is None:
            raise SameSameError(
                f"No stored {args.pipeline} matches in this database; run "
                f"python -m core match --pipeline {args.pipeline} first."
            )
        _write_csv(result.submission(), Path(args.out))
        print(f"wrote {len(result.posting_ids)} postings to {args.out}")
    return 0


def _write_csv(frame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    frame.to_csv(tmp, index=False)
    tmp.replace(path)


def cmd_demo(args: argparse.Namespace) -> int:
    from core import service
    from core.catalog import import_catalog
    from core.demo import ensure_demo_catalog
    from core.settings import data_dir

    csv_path = ensure_demo_catalog(data_dir())
    if args.db:
        with _open_store(args) as store:
            import_catalog(store, csv_path, csv_path.parent / "images")
            target = store.path
    else:
        with service.open_demo() as store:
            target = store.path
    if args.out:
        shutil.copytree(csv_path.parent, Path(args.out), dirs_exist_ok=True)
        print(f"demo catalog copied to {args.out}")
    print(f"demo catalog {csv_path} imported into {target}")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    with _open_store(args) as store:
        info = store.info()
        info["database"] = str(store.path)
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        for key, value in info.items():
            print(f"{key}: {value}")
    return 0


def _spark_match_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--catalog", required=True, help="CSV or Parquet (file or folder, or URI)")
    parser.add_argument("--images", help="image folder of --catalog (same path on executors)")
    parser.add_argument("--pipeline", choices=["baseline", "ensemble"], default="baseline")
    parser.add_argument("--model", help="the ensemble's trained Siamese model folder")
    parser.add_argument("--out", required=True, help="posting_id,matches: .csv, or .parquet")
    parser.add_argument("--master", help="Spark master (default local[*], or spark-submit's)")
    parser.add_argument(
        "--candidates",
        choices=["lsh", "exact"],
        default="lsh",
        help="lsh: MinHash / random-projection LSH joins (scales); exact: all pairs (small)",
    )
    parser.add_argument("--hash-only", action="store_true", help="ignore images; use pHashes")
    parser.add_argument("--shuffle-partitions", type=int, help="spark.sql.shuffle.partitions")
    parser.add_argument("--minhash-tables", type=int, default=20, help="title LSH tables")
    parser.add_argument("--image-tables", type=int, default=8, help="image LSH tables")
    parser.add_argument("--bucket-length", type=float, help="image LSH bucket width")
    parser.add_argument(
        "--conf", action="append", default=[], metavar="KEY=VALUE", help="Spark setting"
    )
    _settings_args(parser)


def cmd_spark_match(args: argparse.Namespace) -> int:
    from core.spark_match import SparkOptions, spark_match

    conf = []
    for item in args.conf:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise SameSameError(f"--conf takes KEY=VALUE, not {item!r}")
        conf.append((key.strip(), value))
    overrides = {
        name: getattr(args, name)
        for name in MatchSettings.__dataclass_fields__
        if getattr(args, name, None) is not None
    }
    options = SparkOptions(
        master=args.master,
        candidates=args.candidates,
        shuffle_partitions=args.shuffle_partitions,
        minhash_tables=args.minhash_tables,
        image_tables=args.image_tables,
        bucket_length=args.bucket_length,
        conf=tuple(conf),
        hash_only=args.hash_only,
    )
    report = spark_match(
        args.catalog,
        args.out,
        args.pipeline,
        MatchSettings().replace(**overrides),
        images=args.images,
        model_dir=args.model,
        options=options,
    )
    if report.row_problems:
        print(f"note: {report.row_problems} row problem(s) in {args.catalog}", file=sys.stderr)
    for notice in report.notices:
        print(f"note: {notice}", file=sys.stderr)
    print(
        f"{report.pipeline} on Spark ({report.candidates} candidates): {report.pairs} matched "
        f"pairs over {report.postings} postings, {report.seconds:.1f}s"
    )
    print(f"wrote {args.out}")
    return 0


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "import": cmd_import,
    "embed": cmd_embed,
    "train": cmd_train,
    "match": cmd_match,
    "evaluate": cmd_evaluate,
    "export": cmd_export,
    "demo": cmd_demo,
    "info": cmd_info,
    "spark-match": cmd_spark_match,
}
