"""Guards in front of the service's routes: request bodies over a size limit are refused before
they are read, and with an API key set, requests without it are refused. Both answer in the
service's JSON error shape, ``{"error": {"field": ..., "message": ...}}``."""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable
from pathlib import Path

from core.errors import SameSameError

Scope = dict
Message = dict
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Paths anyone may read with an API key set: the API's own description.
OPEN_PATHS = frozenset({"/docs", "/openapi.json", "/docs/oauth2-redirect", "/redoc"})


def error_body(field: str | None, message: str) -> dict:
    return {"error": {"field": field, "message": message}}


async def send_error(send: Send, status: int, field: str | None, message: str) -> None:
    body = json.dumps(error_body(field, message)).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


class BodyLimit:
    """Refuses bodies over ``max_bytes`` with 413: at once from the Content-Length header (the
    body is never read), or, for a chunked body, as soon as the bytes read pass the limit (so
    at most ``max_bytes`` are held; the body is then replayed to the route)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _too_large(self) -> str:
        return f"the request is larger than the {self.max_bytes / 2**20:g} MB upload limit"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _header(scope, b"content-length")
        if declared is not None:
            if not declared.isdigit():
                await send_error(send, 400, "Content-Length", "Content-Length is not a number")
            elif int(declared) > self.max_bytes:
                await send_error(send, 413, "image", self._too_large())
            else:
                await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_bytes:
                await send_error(send, 413, "image", self._too_large())
                return
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": b"".join(chunks), "more_body": False}

        await self.app(scope, replay, send)


class ApiKey:
    """With a key, every request but `OPEN_PATHS` needs it in ``X-API-Key`` (or
    ``Authorization: Bearer``), compared in constant time."""

    def __init__(self, app: ASGIApp, key: str) -> None:
        self.app = app
        self.key = key.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        given = _header(scope, b"x-api-key")
        bearer = _header(scope, b"authorization")
        if given is None and bearer and bearer.lower().startswith("bearer "):
            given = bearer[7:].strip()
        if given is None or not hmac.compare_digest(given.encode(), self.key):
            await send_error(send, 401, "X-API-Key", "a valid API key is needed (header X-API-Key)")
            return
        await self.app(scope, receive, send)


def read_api_key(path: str | Path) -> str:
    """The key a key file holds (what `ApiKey` checks): refused when the file cannot be read,
    or the key is shorter than 16 characters or not printable ASCII."""
    file = Path(path)
    try:
        key = file.read_text().strip()
    except OSError as exc:
        raise SameSameError(f"cannot read the API key file {file}: {exc.strerror}") from exc
    if len(key) < 16:
        raise SameSameError(f"the API key in {file} is shorter than 16 characters")
    if not key.isascii() or not key.isprintable():
        raise SameSameError(f"the API key in {file} must be printable ASCII (HTTP headers are)")
    return key
