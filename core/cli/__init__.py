"""``python -m core`` (``samesame`` once installed): import, embed, train, match, evaluate,
query, calibrate, ocr, link, export, demo, info, spark-match, serve, app.

Exit codes: 0 success, 2 bad input or a problem the user can fix (message on stderr), 130 when
interrupted.
"""

from __future__ import annotations

import argparse
import logging
import sys

from core.cli import answers, app, catalog, link, matching, ocr, serve, spark
from core.cli.common import EXIT_BAD_INPUT
from core.errors import SameSameError

logger = logging.getLogger("core.cli")


def build_parser(prog: str = "python -m core") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="SameSame: find which product postings are the same product.",
    )
    parser.add_argument("--db", help="database file (default: the user data folder's samesame.db)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    catalog.add_commands(sub)
    matching.add_commands(sub)
    answers.add_commands(sub)
    ocr.add_commands(sub)
    link.add_commands(sub)
    spark.add_commands(sub)
    serve.add_commands(sub)
    app.add_commands(sub)
    for subparser in sub.choices.values():
        # `--db` is accepted after the command too (`import X.csv --db PATH`); SUPPRESS keeps
        # a value given before the command when it is not repeated after it.
        subparser.add_argument(
            "--db", default=argparse.SUPPRESS, help="database file (same as before the command)"
        )
    return parser


def command_names() -> list[str]:
    """Every subcommand, as the parser knows them."""
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sorted(sub.choices)


def main(argv: list[str] | None = None, prog: str = "python -m core") -> int:
    parser = build_parser(prog)
    args, passed_on = parser.parse_known_args(argv)
    if passed_on:
        # Only a command that hands its options to another program (app: streamlit run)
        # takes options it does not know.
        if not hasattr(args, "passed_on"):
            parser.error(f"unrecognized arguments: {' '.join(passed_on)}")
        args.passed_on = passed_on
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return args.run(args)
    except SameSameError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print(
            "interrupted: work saved so far is kept; run the command again to continue.",
            file=sys.stderr,
        )
        return 130


def console() -> int:
    """The ``samesame`` command that ``pip install`` creates: ``python -m core`` by its name."""
    return main(prog="samesame")


__all__ = ["EXIT_BAD_INPUT", "build_parser", "command_names", "console", "main"]
