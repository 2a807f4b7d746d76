"""``serve``: the HTTP API over one database (`core.service`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from core.cli.common import open_store
from core.errors import SameSameError
from core.service.limits import read_api_key


def add_commands(sub) -> None:
    p = sub.add_parser(
        "serve",
        help="answer 'which postings are the same product?' over HTTP (docs at /docs)",
    )
    p.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: this machine only)"
    )
    p.add_argument("--port", type=int, default=8600, help="port (default 8600)")
    p.add_argument(
        "--api-key-file",
        help="file holding the API key requests must send in X-API-Key (default: no key)",
    )
    p.add_argument(
        "--max-upload-mb",
        type=float,
        default=10.0,
        help="largest request body, e.g. an image upload, in MB (default 10)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        help="server processes (default 1); each holds its own copy of the models and index",
    )
    p.set_defaults(run=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    from core.service.app import serve  # FastAPI and uvicorn load only to serve

    if not 0 < args.max_upload_mb <= 64:
        raise SameSameError("--max-upload-mb must be more than 0 and at most 64")
    if not 1 <= args.workers <= 64:
        raise SameSameError("--workers must be between 1 and 64")
    if args.api_key_file:
        read_api_key(args.api_key_file)  # refuse an unreadable or short key before starting
    with open_store(args) as store:  # opens (and migrates) the database before serving it
        path = store.path
        postings = store.count_postings()
    print(f"serving {path} ({postings:,} postings) on http://{args.host}:{args.port} (docs: /docs)")
    key_file = Path(args.api_key_file).resolve() if args.api_key_file else None
    serve(path, args.host, args.port, key_file, int(args.max_upload_mb * 2**20), args.workers)
    return 0
