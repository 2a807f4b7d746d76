"""What every command shares: progress bars, the settings flags (generated from the settings'
own descriptions), opening the database, one-shot catalogs, writing files."""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from core.catalog import import_catalog
from core.errors import SameSameError
from core.matching import Hooks
from core.pipelines import PIPELINES, pipeline_names
from core.settings import SETTING_SPECS, MatchSettings
from core.store import Store
from core.workspace import default_db_path

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


class TqdmHooks:
    """`core.matching.Hooks` for a terminal: one tqdm bar per stage, notes on stderr."""

    def __init__(self) -> None:
        self._closers: list[Callable[[], None]] = []

    def progress(self, stage: str) -> Callable[[int, int], None]:
        update, close = tqdm_progress(stage)
        self._closers.append(close)
        return update

    def note(self, text: str) -> None:
        self.close()
        print(text, file=sys.stderr)

    def close(self) -> None:
        for close in self._closers:
            close()
        self._closers.clear()

    def hooks(self):
        return Hooks(progress=self.progress, note=self.note)


def flag_of(spec) -> str:
    return spec.flag or "--" + spec.name.replace("_", "-")


def settings_args(parser: argparse.ArgumentParser) -> None:
    """One flag per setting, with its help and range, from `core.settings.SETTING_SPECS`."""
    group = parser.add_argument_group("settings (default: what the database has stored)")
    for spec in SETTING_SPECS:
        text = f"{spec.label}: {spec.help}".replace("%", "%%")
        if spec.choices is None and spec.minimum is not None:
            text += f" [{spec.minimum:g} to {spec.maximum:g}]"
        text += f" (default {spec.default!r})"
        options: dict = {"dest": spec.name, "help": text, "default": None}
        if spec.kind is bool:
            options["action"] = argparse.BooleanOptionalAction
        elif spec.number_sets is not None:
            options["type"] = _choice_or_number(spec)
            options["metavar"] = "|".join(spec.choices) + "|NUMBER"
        else:
            options["type"] = spec.kind
            options["metavar"] = spec.name.split("_")[-1].upper()
            if spec.choices is not None:
                options["choices"] = list(spec.choices)
        group.add_argument(flag_of(spec), **options)


def _choice_or_number(spec):
    """argparse type of a flag that takes one of the spec's choices or a number."""

    def parse(raw: str):
        if raw in spec.choices:
            return raw
        try:
            return float(raw)
        except ValueError:
            shown = ", ".join(spec.choices)
            raise argparse.ArgumentTypeError(f"use {shown} or a number, not {raw!r}") from None

    parse.__name__ = spec.name
    return parse


def settings_from(args: argparse.Namespace, store) -> MatchSettings:
    """The database's stored settings with this command's flags on top."""
    settings = store.load_settings()
    overrides = {
        spec.name: getattr(args, spec.name)
        for spec in SETTING_SPECS
        if getattr(args, spec.name, None) is not None
    }
    for spec in SETTING_SPECS:
        value = overrides.get(spec.name)
        if spec.number_sets is not None and isinstance(value, float):
            # A number means "this fixed value": the first choice, with the number set.
            overrides[spec.name] = spec.choices[0]
            overrides[spec.number_sets] = value
    return settings.replace(**overrides) if overrides else settings


def open_store(args: argparse.Namespace):
    return Store(Path(args.db) if args.db else default_db_path())


def oneshot_args(parser: argparse.ArgumentParser) -> None:
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


class scratch_store:
    """The --db store, or with --catalog (and no --db) a temporary one that is removed after."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.tmp: Path | None = None
        self.store = None

    def __enter__(self):
        args = self.args
        if getattr(args, "catalog", None) and not args.db:
            self.tmp = Path(tempfile.mkdtemp(prefix="samesame-"))
            self.store = Store(self.tmp / "oneshot.db")
        else:
            self.store = open_store(args)
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


def write_csv(frame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    frame.to_csv(tmp, index=False)
    tmp.replace(path)


def pipeline_choice(value: str) -> str:
    """argparse type: a registered pipeline name (or 'all')."""
    if value != "all" and value not in PIPELINES:
        raise argparse.ArgumentTypeError(
            f"unknown pipeline {value!r}; choose one of {', '.join(PIPELINES)} or all"
        )
    return value


def default_pipeline() -> str:
    """The first registered pipeline (the original write-up's baseline)."""
    return pipeline_names()[0]


def require(condition: bool, message: str) -> None:
    if not condition:
        raise SameSameError(message)
