"""Commands that build models and match: embed, train, match, evaluate."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from core import models
from core.catalog.pairs import default_conflicts_path, read_pairs_report, verdict_pairs
from core.cli.common import (
    TqdmHooks,
    default_pipeline,
    oneshot_args,
    open_store,
    pipeline_choice,
    scratch_store,
    settings_args,
    settings_from,
    tqdm_progress,
    write_csv,
)
from core.errors import SameSameError
from core.evaluation import evaluate_result, evaluate_submission
from core.matching import embed_for_training, ensure_ready, run_pipeline
from core.pipelines import PIPELINES
from core.pipelines.best import catalog_training
from core.verdicts import pair_key


def add_commands(sub) -> None:
    """The embed, train, match and evaluate commands, in that order."""
    _add_embed(sub)
    _add_train(sub)
    _add_match(sub)
    _add_evaluate(sub)


def _add_embed(sub) -> None:
    p = sub.add_parser("embed", help="compute image embeddings for the database's postings")
    p.add_argument(
        "--model",
        choices=["mobilenet", "siamese", "all"],
        default="mobilenet",
        help="mobilenet = the pretrained ImageNet model of the settings; siamese = the trained "
        "ensemble model",
    )
    p.add_argument("--model-dir", help="trained Siamese model folder (default: per database)")
    settings_args(p)
    p.set_defaults(run=cmd_embed)


def _add_train(sub) -> None:
    trainable = [name for name, pipe in PIPELINES.items() if pipe.trainable]
    p = sub.add_parser("train", help="train the pipelines' models on labelled groups")
    p.add_argument("--catalog", help="import this CSV first (else train on the database)")
    p.add_argument("--images", help="image folder of --catalog")
    p.add_argument("--model", required=True, help="folder to save the trained model(s) in")
    p.add_argument(
        "--pairs",
        metavar="CSV",
        help="train best from labelled pairs (left_id,right_id,same with 1/0) instead of "
        "label groups; the database's own verdicts count too; the catalog needs no labels. "
        "A pair given again counts once; pairs labelled both ways and self pairs are set aside",
    )
    p.add_argument(
        "--strict",
        action="store_true",
        help="with --pairs: refuse any pair given twice and any posting paired with itself",
    )
    p.add_argument(
        "--conflicts",
        metavar="CSV",
        help="with --pairs: write the set-aside rows here, each with its reason (default: "
        "<pairs file name>-conflicts.csv in the data folder)",
    )
    p.add_argument(
        "--pipeline",
        choices=["auto", *trainable],
        default="auto",
        help="whose model to train; auto = every pipeline that has one, those that learn from "
        "photos only when labelled postings have image files",
    )
    settings_args(p)
    p.set_defaults(run=cmd_train)


def _add_match(sub) -> None:
    p = sub.add_parser(
        "match", help="match postings with a pipeline and store or write the matches"
    )
    p.add_argument(
        "--pipeline", type=pipeline_choice, default=default_pipeline(), help="a pipeline or all"
    )
    oneshot_args(p)
    p.add_argument("--out", help="write posting_id,matches CSV here")
    p.add_argument(
        "--clusters",
        action="store_true",
        help="with --out: each posting's cluster instead of its own matches",
    )
    settings_args(p)
    p.set_defaults(run=cmd_match)


def _add_evaluate(sub) -> None:
    p = sub.add_parser("evaluate", help="F1, precision and recall against label_group")
    p.add_argument("--pipeline", type=pipeline_choice, default="all", help="a pipeline or all")
    oneshot_args(p)
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.add_argument(
        "--submission",
        metavar="CSV",
        help="score this posting_id,matches file (exactly as written) instead of a pipeline",
    )
    settings_args(p)
    p.set_defaults(run=cmd_evaluate)


def cmd_embed(args: argparse.Namespace) -> int:
    with open_store(args) as store:
        settings = settings_from(args, store)
        if args.model in ("mobilenet", "all"):
            name = models.image_model_name(settings)
            update, close = tqdm_progress(f"embedding ({name})")
            try:
                added = models.embed_images(store, settings, update)
            finally:
                close()
            print(f"{added} image(s) embedded with {name}")
        if args.model in ("siamese", "all"):
            model_dir = models.siamese_dir(store, Path(args.model_dir) if args.model_dir else None)
            update, close = tqdm_progress("embedding (siamese)")
            try:
                added = models.embed_siamese(store, settings, model_dir, update)
            finally:
                close()
            print(f"{added} image(s) embedded with the Siamese model in {model_dir}")
    return 0


def _given_pairs(args: argparse.Namespace, store):
    """The --pairs file's pairs, one row a pair; says what was set right and writes the
    set-aside rows (pairs given with both labels, postings paired with themselves)."""
    path = Path(args.pairs)
    ids = store.postings(["posting_id"])["posting_id"]
    given, report = read_pairs_report(path, ids, strict=args.strict)
    written = None
    if not report.set_aside.empty:
        written = Path(args.conflicts) if args.conflicts else default_conflicts_path(path)
        write_csv(report.set_aside, written)
    said = report.summary(path.name, written)
    if said:
        print(said)
    return given


def _train_from_pairs(args: argparse.Namespace, store, settings) -> None:
    import pandas as pd

    if args.pipeline not in ("auto", "best"):
        raise SameSameError("--pairs trains the best matcher only: leave out --pipeline")
    given = _given_pairs(args, store)
    pairs = pd.concat([given.drop(columns=["row"]), verdict_pairs(store.reviews())])
    # A verdict in the database wins over the file for the same pair.
    keys = [pair_key(*p) for p in zip(pairs["left_id"], pairs["right_id"], strict=True)]
    pairs = pairs.assign(key=keys).drop_duplicates("key", keep="last").drop(columns=["key"])
    report = catalog_training.train_best_from_pairs(store, settings, Path(args.model), pairs)
    print(
        f"best matcher: trained from {report['pairs_used']:,} of {report['pairs_given']:,} "
        f"labelled pairs ({report['same_pairs']:,} same, {report['different_pairs']:,} "
        f"different; {report['pairs_not_candidates']:,} never offered as candidates) in "
        f"{report['seconds']:.0f}s, out-of-fold F1 {report['oof_f1']:.3f}, "
        f"threshold {models.best_threshold(Path(args.model)):.3f}; saved to {args.model}"
    )


def cmd_train(args: argparse.Namespace) -> int:
    if (args.strict or args.conflicts) and not args.pairs:
        raise SameSameError("--strict and --conflicts go with --pairs")
    with scratch_store(args) as store:
        settings = settings_from(args, store)
        if args.pairs:
            _train_from_pairs(args, store, settings)
            return 0
        if store.info()["label_groups"] == 0:
            raise SameSameError(
                "Training needs a labelled catalog: add a label_group column (postings of the "
                "same product share a value)."
            )
        has_images = store.info()["images"]["ok"] > 0
        for name, pipe in PIPELINES.items():
            wanted = args.pipeline == name or (
                args.pipeline == "auto"
                and pipe.trainable
                and (has_images or not pipe.trains_on_images)
            )
            if not wanted:
                continue
            if has_images and pipe.needs_model:
                # A model given photos learns from them: their vectors first.
                terminal = TqdmHooks()
                try:
                    embed_for_training(store, settings, terminal.progress)
                finally:
                    terminal.close()
            update, close = tqdm_progress(f"training {name}")
            try:
                report = pipe.train(store, settings, Path(args.model), update)
            finally:
                close()
            print(report["summary"])
    return 0


def _run(store, pipeline: str, settings, args):
    model_dir = Path(args.model) if getattr(args, "model", None) else None
    terminal = TqdmHooks()
    try:
        ensure_ready(
            store,
            pipeline,
            settings,
            model_dir=model_dir,
            hash_only=args.hash_only,
            hooks=terminal.hooks(),
        )
        update = terminal.progress(f"matching ({pipeline})")
        result = run_pipeline(
            store,
            pipeline,
            settings,
            model_dir=model_dir,
            hash_only=args.hash_only,
            progress=update,
            stages=terminal.progress,
        )
    finally:
        terminal.close()
    pipe = PIPELINES[pipeline]
    used_model = pipe.needs_model or not args.hash_only
    if (
        getattr(args, "command", None) == "evaluate"
        and used_model
        and pipe.in_sample(store, model_dir)
    ):
        print(
            f"note: {pipeline}'s model was trained on this catalog's labels, so its figures here "
            "are in-sample (see BENCHMARKS.md for held-out ones)",
            file=sys.stderr,
        )
    for notice in result.notices:
        print(f"note: {notice}", file=sys.stderr)
    return result


def _pipelines(args: argparse.Namespace, store) -> list[str]:
    """--pipeline all: every pipeline that can run here (or could once trained here)."""
    if args.pipeline != "all":
        return [args.pipeline]
    model_dir = Path(args.model) if args.model else None
    labelled = store.info()["label_groups"] > 0
    return [
        name
        for name, pipe in PIPELINES.items()
        if pipe.readiness(store, store.load_settings(), model_dir).ready
        or (pipe.needs_model and labelled)
    ]


def cmd_match(args: argparse.Namespace) -> int:
    if args.out and args.pipeline == "all":
        raise SameSameError("--out takes one pipeline; choose --pipeline " + "|".join(PIPELINES))
    with scratch_store(args) as store:
        settings = settings_from(args, store)
        for pipeline in _pipelines(args, store):
            result = _run(store, pipeline, settings, args)
            clusters = result.clusters()
            print(
                f"{pipeline}: {result.pair_count:,} matched pairs, {len(clusters.summary):,} "
                f"clusters (largest {int(clusters.summary['size'].max())}), "
                f"{result.capped:,} posting(s) at the {settings.max_matches}-match cap, "
                f"{result.seconds:.1f}s"
            )
            if args.out:
                write_csv(result.submission(clusters=args.clusters), Path(args.out))
                print(f"wrote {args.out}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    if args.submission:
        return _evaluate_submission(args)
    figures = {}
    with scratch_store(args) as store:
        settings = settings_from(args, store)
        for pipeline in _pipelines(args, store):
            result = _run(store, pipeline, settings, args)
            plain = evaluate_result(store, result)
            clustered = evaluate_result(store, result, clusters=True)
            if plain.get("unlabelled_matches"):
                print(
                    f"note: {pipeline}: {plain['unlabelled_matches']:,} match(es) point to "
                    "postings without a label and are not judged",
                    file=sys.stderr,
                )
            figures[pipeline] = {
                **plain,
                "cluster_f1": clustered["f1"],
                "cluster_precision": clustered["precision"],
                "cluster_recall": clustered["recall"],
                "capped": result.capped,
                "seconds": round(result.seconds, 2),
                "stages": {
                    name: round(value, 2)
                    for name, value in getattr(result.stats, "seconds", {}).items()
                },
                "peak_pairs": getattr(result.stats, "peak_pairs", None),
            }
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        print(
            f"{'pipeline':<10} {'F1':>7} {'precision':>10} {'recall':>7} {'cluster-F1':>11} "
            f"{'seconds':>8}"
        )
        for name, f in figures.items():
            print(
                f"{name:<10} {f['f1']:>7.4f} {f['precision']:>10.4f} {f['recall']:>7.4f} "
                f"{f['cluster_f1']:>11.4f} {f['seconds']:>8.1f}"
            )
    return 0


def _evaluate_submission(args: argparse.Namespace) -> int:
    import pandas as pd

    path = Path(args.submission)
    if not path.is_file():
        raise SameSameError(f"{path}: file not found")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (ValueError, UnicodeDecodeError) as exc:
        raise SameSameError(f"{path}: not a readable CSV ({str(exc)[:200]})") from exc
    with scratch_store(args) as store:
        figures = evaluate_submission(store, frame)
    if args.json:
        print(json.dumps({"submission": figures}, indent=2))
    else:
        print(
            f"{path.name}: F1 {figures['f1']:.4f}, precision {figures['precision']:.4f}, "
            f"recall {figures['recall']:.4f} over {figures['postings']:,} labelled postings"
        )
    if figures["unlabelled_matches"]:
        print(
            f"note: {figures['unlabelled_matches']:,} listed match(es) point to postings "
            "without a label and are not judged",
            file=sys.stderr,
        )
    return 0


__all__ = ["add_commands", "write_csv"]
