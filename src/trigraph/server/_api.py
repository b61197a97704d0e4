"""The route table: every operation once, for Starlette's router and for the
OpenAPI document.

:func:`op` registers an endpoint (``async def endpoint(request) -> Response``)
with its method, path, request body struct and query parameters;
:func:`routes` gives Starlette its routes and :func:`openapi` the document
(schemas from the msgspec structs). Query parameters are read with
:func:`q_int`, :func:`q_bool` and :func:`q_choice`, which refuse a bad value
with 422 naming the parameter.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import attrs
import msgspec
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

__all__ = ["op", "openapi", "q_bool", "q_choice", "q_int", "routes"]

Endpoint = Callable[[Request], Awaitable[Response]]


@attrs.frozen
class Param:
    name: str
    schema: dict[str, Any]
    description: str = ""


@attrs.frozen
class Op:
    method: str
    path: str
    endpoint: Endpoint
    tag: str
    summary: str
    body: type | None = None
    query: tuple[Param, ...] = ()
    status: int = 200
    sse: bool = False


OPS: list[Op] = []


def op(
    method: str, path: str, *, tag: str, body: type | None = None,
    query: Sequence[Param] = (), status: int = 200, sse: bool = False,
) -> Callable[[Endpoint], Endpoint]:
    """Register the decorated endpoint as *method* *path*."""

    def register(fn: Endpoint) -> Endpoint:
        summary = (fn.__doc__ or fn.__name__).strip().splitlines()[0]
        OPS.append(Op(method, path, fn, tag, summary, body, tuple(query), status, sse))
        return fn

    return register


def routes() -> list[Route]:
    by_path: dict[str, dict[str, Endpoint]] = {}
    for o in OPS:
        by_path.setdefault(o.path, {})[o.method] = o.endpoint
    out = []
    for path, methods in by_path.items():
        async def dispatch(request: Request, _methods: dict[str, Endpoint] = methods) -> Response:
            return await _methods[request.method](request)

        out.append(Route(path, dispatch, methods=list(methods)))
    return out


def openapi(title: str, version: str) -> dict[str, Any]:
    bodies = sorted({o.body for o in OPS if o.body is not None}, key=lambda t: t.__name__)
    schemas, components = msgspec.json.schema_components(
        bodies, ref_template="#/components/schemas/{name}")
    refs = dict(zip(bodies, schemas, strict=True))
    paths: dict[str, Any] = {}
    for o in OPS:
        params: list[dict[str, Any]] = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in _path_params(o.path)
        ]
        params += [{"name": p.name, "in": "query", "required": False, "schema": p.schema,
                    "description": p.description} for p in o.query]
        responses: dict[str, Any] = {str(o.status): {"description": "OK"}}
        if o.sse:
            responses[str(o.status)]["content"] = {"text/event-stream": {}}
        elif o.status != 204 and o.status != 202:
            responses[str(o.status)]["content"] = {"application/json": {}}
        operation: dict[str, Any] = {
            "tags": [o.tag], "summary": o.summary,
            "operationId": f"{o.endpoint.__name__}_{o.method.lower()}",
            "parameters": params, "responses": {
                **responses,
                "404": {"description": "Not found"}, "409": {"description": "Conflict"},
                "422": {"description": "Invalid request"},
            },
        }
        if o.body is not None:
            operation["requestBody"] = {"required": True, "content": {
                "application/json": {"schema": refs[o.body]}}}
        paths.setdefault(o.path, {})[o.method.lower()] = operation
    return {"openapi": "3.1.0", "info": {"title": title, "version": version},
            "paths": paths, "components": {"schemas": components}}


def _path_params(path: str) -> list[str]:
    return [part[1:-1].split(":")[0] for part in path.split("/") if part.startswith("{")]


def q_int(request: Request, name: str, default: int, lo: int, hi: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise HTTPException(422, f"query parameter {name} must be an integer, "
                                 f"not {raw!r}") from None
    if not lo <= value <= hi:
        raise HTTPException(422, f"query parameter {name} must be between {lo} and {hi}")
    return value


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def q_bool(request: Request, name: str, default: bool = False) -> bool:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if raw.lower() in _TRUE:
        return True
    if raw.lower() in _FALSE:
        return False
    raise HTTPException(422, f"query parameter {name} must be true or false, not {raw!r}")


def q_choice(request: Request, name: str, default: str | None, choices: Sequence[str]) -> Any:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if raw not in choices:
        raise HTTPException(422, f"query parameter {name} must be one of "
                                 f"{', '.join(choices)}, not {raw!r}")
    return raw


def int_param(name: str, default: int, lo: int, hi: int) -> Param:
    return Param(name, {"type": "integer", "minimum": lo, "maximum": hi, "default": default})


def bool_param(name: str) -> Param:
    return Param(name, {"type": "boolean", "default": False})


def choice_param(name: str, choices: Sequence[str]) -> Param:
    return Param(name, {"type": "string", "enum": list(choices)})
