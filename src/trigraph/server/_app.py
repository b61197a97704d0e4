"""The ASGI application: routes, the API key, body limits, CORS, errors, ``/ui``.

Layers, outermost first: CORS (so a browser's preflight is answered before
the key is asked for), the API key check (every path but ``/ok`` and the
page's own static files, ``GET /`` and ``GET /ui/...``, needs ``x-api-key``
when a key is set; 401 otherwise, compared in constant time; the page holds
no data and asks for the key when the API first answers 401),
the body size limit (413 past ``max_body`` bytes, counted as the body
arrives, so a lying ``Content-Length`` does not get past it), then the Starlette router.
Errors become JSON ``{"detail": ...}``: 404 for an unknown thread or run,
409 for a busy thread, 422 for a body that fails validation, 503 when the
database fails; nothing a client sends makes a 500.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from importlib import resources
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from trigraph import CheckpointError, ThreadBusyError, __version__

from . import _routes, _runs  # noqa: F401  (their operations register themselves)
from ._api import openapi, routes
from ._shapes import Context, respond
from ._store import Busy, Conflict, NotFound

__all__ = ["DEFAULT_MAX_BODY", "create_app"]

log = logging.getLogger("trigraph.server")
DEFAULT_MAX_BODY = 10 * 1024 * 1024


def _public(scope: Scope) -> bool:
    """``/ok``, and reading the page's static files (``/``, ``/ui``, ``/ui/...``)."""
    path: str = scope["path"]
    if path == "/ok":
        return True
    return scope["method"] in ("GET", "HEAD") and (
        path in ("/", "/ui") or path.startswith("/ui/"))


class _ApiKey:
    """Refuse every request but ``/ok``, the page's static files (and CORS
    preflights) without the key."""

    def __init__(self, app: ASGIApp, key: str) -> None:
        self.app = app
        self.key = key.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or _public(scope):
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(b"x-api-key", b"")
        if not secrets.compare_digest(given, self.key):
            detail = ("Missing API key: send it in the x-api-key header" if not given
                      else "Invalid API key")
            await respond({"detail": detail}, 401)(scope, receive, send)
            return
        await self.app(scope, receive, send)


class _BodyLimit:
    """Answer 413 for a request body over *limit* bytes."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_big = respond({"detail": f"Request body over {self.limit} bytes"}, 413,
                          headers={"Connection": "close"})
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            if length.isdigit():
                await too_big(scope, receive, send)
            else:
                await respond({"detail": "Bad Content-Length"}, 400)(scope, receive, send)
            return
        if scope["method"] in ("GET", "HEAD", "DELETE", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        # The body is read whole before the app sees it (routes parse it whole
        # anyway), so one that grows past the limit is refused as it arrives.
        parts: list[bytes] = []
        seen = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > self.limit:
                await too_big(scope, receive, send)
                return
            parts.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(parts)
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def _ui_app() -> ASGIApp | None:
    folder = resources.files("trigraph.server").joinpath("static")
    if not folder.is_dir():
        return None
    return StaticFiles(directory=str(folder), html=True)


def create_app(
    context: Context,
    *,
    api_key: str | None = None,
    cors_origins: Sequence[str] = (),
    max_body: int = DEFAULT_MAX_BODY,
) -> ASGIApp:
    """The ASGI application serving *context*'s graphs with the LangGraph Server API.

    Args:
      context: the store, graphs and checkpointer the routes use.
      api_key: when set, every route but ``/ok`` and the page's static
        files needs it in ``x-api-key``.
      cors_origins: origins a browser may call the API from (``"*"``: any).
      max_body: the largest request body accepted, in bytes.

    The app only queues runs and reads what workers store: run a
    :class:`Worker` (or :func:`run_worker`) on the same database beside it.
    :func:`serve` does both, on Hypercorn.

    .. versionadded:: 0.2
    """
    document = respond(openapi("trigraph server", __version__))

    async def ok(request: Request) -> Response:
        return respond({"ok": True})

    async def info(request: Request) -> Response:
        return respond({"version": __version__, "server": "trigraph",
                        "graphs": sorted(context.graphs.graphs),
                        "flags": {"assistants": True, "crons": False, "langsmith": False}})

    async def spec(request: Request) -> Response:
        return document

    async def root(request: Request) -> Response:
        return RedirectResponse("/ui/", status_code=307)

    table: list[BaseRoute] = [
        Route("/ok", ok), Route("/info", info), Route("/openapi.json", spec),
        Route("/", root), *routes(),
    ]
    ui = _ui_app()
    if ui is not None:
        table.append(Mount("/ui", ui, name="ui"))

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return respond({"detail": exc.detail}, exc.status_code,
                       headers=dict(exc.headers) if exc.headers else None)

    def handler(status: int) -> Any:
        async def handle(request: Request, exc: Exception) -> Response:
            return respond({"detail": str(exc)}, status)
        return handle

    async def unavailable(request: Request, exc: Exception) -> Response:
        log.error("database error on %s %s: %s", request.method, request.url.path, exc)
        return respond({"detail": f"the database failed: {exc}"}, 503)

    async def crashed(request: Request, exc: Exception) -> Response:
        log.error("error on %s %s", request.method, request.url.path, exc_info=exc)
        return respond({"detail": f"internal error: {type(exc).__name__}: {exc}"}, 500)

    app = Starlette(routes=table, exception_handlers={
        HTTPException: http_error, NotFound: handler(404), Busy: handler(409),
        Conflict: handler(409), ThreadBusyError: handler(409), CheckpointError: unavailable,
        Exception: crashed,
    })
    app.state.trigraph = context
    wrapped: ASGIApp = _BodyLimit(app, max_body)
    if api_key:
        wrapped = _ApiKey(wrapped, api_key)
    if cors_origins:
        wrapped = CORSMiddleware(
            wrapped, allow_origins=list(cors_origins), allow_methods=["*"],
            allow_headers=["*"], expose_headers=["Location", "Content-Location",
                                                 "X-Pagination-Next", "X-Pagination-Total"],
        )
    return wrapped
