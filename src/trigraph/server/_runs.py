"""The runs routes: create, stream, wait, join, join_stream, cancel, list, get,
delete, on a thread or stateless.

Every run is queued in the store and executed by a worker; a route never
runs a graph itself. ``/stream`` queues the run and streams its events from
the store, ``/wait`` and ``/join`` wait for its end (writing ``\\n`` every
:data:`KEEPALIVE` seconds while they wait, as LangGraph's server does) and
answer with its final values, or ``{"__error__": ...}`` with status 200 when
the graph failed. Headers name the run with relative paths: ``Content-Location``
the run, ``Location`` the route to reconnect to.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import orjson
import trio
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from ._api import Param, bool_param, choice_param, int_param, op, q_bool, q_choice, q_int
from ._convert import API_MODES
from ._graphs import assistant_id
from ._routes import ctx
from ._schemas import UNSET, CancelMany, RunCreate, parse
from ._shapes import Context, respond, run_json
from ._sse import event_stream, sse_response
from ._store import SAFETY, TERMINAL, RunRecord

__all__ = ["uuid7"]

KEEPALIVE = 5.0


def uuid7() -> str:
    """A time-ordered UUID (version 7), as LangGraph's server makes ids."""
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & (2**48 - 1)) << 80 | 0x7 << 76 | (rand >> 68 & 0xFFF) << 64
    value |= 0b10 << 62 | rand & (2**62 - 1)
    return str(uuid.UUID(int=value))


def _goto(goto: Any, nodes: set[str], graph_id: str) -> list[Any]:
    """``command.goto`` as a list of node names and ``{"node", "input"}`` sends,
    checked against the graph's nodes."""
    if goto is None:
        return []
    items = goto if isinstance(goto, list) else [goto]
    out: list[Any] = []
    for item in items:
        if isinstance(item, dict) and set(item) <= {"node", "input"} and "node" in item:
            name = item["node"]
        elif isinstance(item, str):
            name = item
        else:
            raise HTTPException(422, "command.goto takes a node name, a {\"node\", \"input\"} "
                                     f"send, or a list of them, not {item!r}")
        if name not in nodes and name != "__end__":
            raise HTTPException(422, f"command.goto names unknown node {name!r} of graph "
                                     f"{graph_id!r}; its nodes are {sorted(nodes)}")
        out.append(item)
    return out


def _config(body: RunCreate) -> dict[str, Any]:
    config = body.config
    if config is None:
        return {}
    out = {"recursion_limit": config.recursion_limit, "configurable": config.configurable,
           "tags": config.tags}
    return {k: v for k, v in out.items() if v is not None}


def _paths(run: RunRecord, stateless: bool) -> tuple[str, str]:
    """The run's path and its thread-scoped path (what ``Location`` names)."""
    rid = quote(run.run_id, safe="")
    scoped = f"/threads/{quote(run.thread_id, safe='')}/runs/{rid}"
    return (f"/runs/{rid}" if stateless else scoped), scoped


async def _create(
    context: Context, thread_id: str | None, body: RunCreate, *, streamed: bool = False
) -> RunRecord:
    graphs = context.graphs
    graph_id = graphs.resolve(body.assistant_id)
    if graph_id is None:
        raise HTTPException(422, f"Invalid assistant: '{body.assistant_id}'. Must be either a "
                                 "valid assistant UUID or one of the registered graphs: "
                                 f"{', '.join(sorted(graphs.graphs))}")
    command = body.command
    if command is not None and command.resume is not UNSET and thread_id is None:
        raise HTTPException(400, "You must provide a thread_id when resuming.")
    nodes = set(graphs.graphs[graph_id].nodes)
    goto = None if command is None else _goto(command.goto, nodes, graph_id)
    if goto and command is not None and command.resume is not UNSET:
        raise HTTPException(422, "command.goto cannot be combined with command.resume; "
                                 "resume first, then run with goto")
    for name in ("interrupt_before", "interrupt_after"):
        value = getattr(body, name)
        if isinstance(value, list) and not set(value) <= nodes:
            unknown = sorted(set(value) - nodes)
            raise HTTPException(422, f"{name} names unknown node(s) {unknown} of graph "
                                     f"{graph_id!r}; its nodes are {sorted(nodes)}")
    checkpoint_id = body.checkpoint_id or (body.checkpoint.checkpoint_id
                                           if body.checkpoint else None)
    temporary = thread_id is None
    cmd: dict[str, Any] | None = None
    if command is not None:
        cmd = {} if command.update is None else {"update": command.update}
        if goto:
            cmd["goto"] = goto
        if command.resume is not UNSET:
            cmd["resume"] = command.resume
    kwargs = {
        "input": body.input, "command": cmd,
        "config": _config(body),
        "context": body.context or {}, "stream_mode": body.modes(),
        "interrupt_before": body.interrupt_before, "interrupt_after": body.interrupt_after,
        "webhook": body.webhook, "feedback_keys": body.feedback_keys,
        "temporary": temporary, "subgraphs": body.stream_subgraphs,
        "resumable": body.stream_resumable, "checkpoint_during": body.checkpoint_during,
        "streamed": streamed,
        "durability": body.durability or ("exit" if temporary and body.on_completion == "delete"
                                          else "async"),
        "checkpoint_id": checkpoint_id,
        "on_completion": body.on_completion if temporary else "keep",
    }
    now = time.time()
    run = RunRecord(
        run_id=uuid7(), thread_id=thread_id or str(uuid.uuid4()),
        assistant_id=assistant_id(graph_id),
        graph_id=graph_id, status="pending", created_at=now, updated_at=now,
        metadata=body.metadata or {}, kwargs=kwargs,
        multitask_strategy=body.multitask_strategy, temporary=temporary,
    )
    await context.store.create_run(
        run, if_not_exists="create" if temporary else body.if_not_exists,
        after_seconds=body.after_seconds,
    )
    return run


async def _wait_done(
    context: Context, run_id: str, timeout: float, *, created: bool = False
) -> bytes | None:
    """The run's final body once it has ended, or ``None`` after *timeout*
    (*created*: the run was queued just now, so it cannot have ended yet)."""
    store = context.store
    deadline = trio.current_time() + timeout
    while True:
        wake = store.hub.event(f"done:{run_id}")
        if created:
            created = False
            await store.hub.wait(wake, min(timeout, SAFETY))
        run = await store.get_run(None, run_id)
        if run is None:
            return b"{}"  # rolled back: it left nothing
        if run.status in TERMINAL:
            return run.result or b"{}"
        left = deadline - trio.current_time()
        if left <= 0:
            return None
        await store.hub.wait(wake, min(left, SAFETY))


async def _cancel_one(context: Context, run: RunRecord) -> None:
    await context.store.cancel_runs(run.thread_id, [run.run_id], "interrupt")


async def _wait_response(
    context: Context, run: RunRecord, headers: dict[str, str], cancel_on_disconnect: bool,
    *, created: bool = False,
) -> Response:
    first = await _wait_done(context, run.run_id, KEEPALIVE, created=created)
    if first is not None:
        return respond(first, headers=headers)

    async def body() -> AsyncIterator[bytes]:
        done = False
        try:
            while True:
                yield b"\n"
                result = await _wait_done(context, run.run_id, KEEPALIVE)
                if result is not None:
                    done = True
                    yield result
                    return
        finally:
            if not done and cancel_on_disconnect:
                with trio.CancelScope(shield=True), trio.move_on_after(10):
                    await _cancel_one(context, run)

    return StreamingResponse(body(), media_type="application/json", headers=headers)


def _stream(
    context: Context, run: RunRecord, stateless: bool, *, after: int = 0,
    modes: list[str] | None = None, cancel_on_disconnect: bool = False,
) -> Response:
    own, _ = _paths(run, stateless)
    headers = {"Location": f"{own}/stream", "Content-Location": own}

    async def disconnected() -> None:
        if cancel_on_disconnect:
            await _cancel_one(context, run)

    return sse_response(event_stream(context.store, run.run_id, after=after, modes=modes),
                        headers=headers, on_disconnect=disconnected)


# -- creating runs ---------------------------------------------------------------


@op("POST", "/threads/{thread_id}/runs", tag="runs", body=RunCreate)
async def create_run(request: Request) -> Response:
    """Queue a run on a thread."""
    body = parse(await request.body(), RunCreate)
    context = ctx(request)
    run = await _create(context, request.path_params["thread_id"], body)
    own, _ = _paths(run, False)
    return respond(run_json(run), headers={"Content-Location": own})


@op("POST", "/runs", tag="stateless runs", body=RunCreate)
async def create_stateless_run(request: Request) -> Response:
    """Queue a run on a new temporary thread."""
    body = parse(await request.body(), RunCreate)
    run = await _create(ctx(request), None, body)
    own, _ = _paths(run, True)
    return respond(run_json(run), headers={"Content-Location": own})


@op("POST", "/threads/{thread_id}/runs/stream", tag="runs", body=RunCreate, sse=True)
async def stream_run(request: Request) -> Response:
    """Queue a run on a thread and stream its events (SSE)."""
    body = parse(await request.body(), RunCreate)
    context = ctx(request)
    run = await _create(context, request.path_params["thread_id"], body, streamed=True)
    return _stream(context, run, False, cancel_on_disconnect=body.on_disconnect == "cancel")


@op("POST", "/runs/stream", tag="stateless runs", body=RunCreate, sse=True)
async def stream_stateless_run(request: Request) -> Response:
    """Queue a run on a temporary thread and stream its events (SSE)."""
    body = parse(await request.body(), RunCreate)
    context = ctx(request)
    run = await _create(context, None, body, streamed=True)
    return _stream(context, run, True, cancel_on_disconnect=body.on_disconnect == "cancel")


@op("POST", "/threads/{thread_id}/runs/wait", tag="runs", body=RunCreate)
async def wait_run(request: Request) -> Response:
    """Queue a run on a thread and answer with its final values."""
    body = parse(await request.body(), RunCreate)
    context = ctx(request)
    run = await _create(context, request.path_params["thread_id"], body)
    own, scoped = _paths(run, False)
    headers = {"Location": f"{scoped}/join", "Content-Location": own}
    return await _wait_response(context, run, headers, body.on_disconnect == "cancel",
                                created=True)


@op("POST", "/runs/wait", tag="stateless runs", body=RunCreate)
async def wait_stateless_run(request: Request) -> Response:
    """Queue a run on a temporary thread and answer with its final values."""
    body = parse(await request.body(), RunCreate)
    context = ctx(request)
    run = await _create(context, None, body)
    own, scoped = _paths(run, True)
    headers = {"Location": f"{scoped}/join", "Content-Location": own}
    return await _wait_response(context, run, headers, body.on_disconnect == "cancel",
                                created=True)


# -- reading runs ------------------------------------------------------------------


async def _run_or_404(context: Context, thread_id: str | None, run_id: str) -> RunRecord:
    run = await context.store.get_run(thread_id, run_id)
    if run is None:
        raise HTTPException(404, f"Run {run_id} not found")
    return run


_STATUSES = ("pending", "running", "success", "error", "timeout", "interrupted")


@op("GET", "/threads/{thread_id}/runs", tag="runs",
    query=[int_param("limit", 10, 1, 1000), int_param("offset", 0, 0, 2**31),
           choice_param("status", _STATUSES)])
async def list_runs(request: Request) -> Response:
    """A thread's runs, newest first."""
    thread_id = request.path_params["thread_id"]
    limit = q_int(request, "limit", 10, 1, 1000)
    offset = q_int(request, "offset", 0, 0, 2**31)
    status = q_choice(request, "status", None, _STATUSES)
    context = ctx(request)
    if await context.store.get_thread(thread_id) is None:
        raise HTTPException(404, f"Thread with ID {thread_id} not found")
    runs = await context.store.list_runs(thread_id, limit=limit, offset=offset, status=status)
    return respond([run_json(r) for r in runs])


@op("GET", "/threads/{thread_id}/runs/{run_id}", tag="runs")
async def get_run(request: Request) -> Response:
    """A run."""
    params = request.path_params
    return respond(run_json(await _run_or_404(ctx(request), params["thread_id"],
                                              params["run_id"])))


@op("GET", "/runs/{run_id}", tag="stateless runs")
async def get_stateless_run(request: Request) -> Response:
    """A run, by its id alone."""
    return respond(run_json(await _run_or_404(ctx(request), None,
                                              request.path_params["run_id"])))


@op("DELETE", "/threads/{thread_id}/runs/{run_id}", tag="runs", status=204)
async def delete_run(request: Request) -> Response:
    """Delete a finished run and its events."""
    params = request.path_params
    await ctx(request).store.delete_run(params["thread_id"], params["run_id"])
    return Response(status_code=204)


@op("GET", "/threads/{thread_id}/runs/{run_id}/join", tag="runs",
    query=[bool_param("cancel_on_disconnect")])
async def join_run(request: Request) -> Response:
    """Wait for a run to end and answer with its final values."""
    params = request.path_params
    context = ctx(request)
    run = await _run_or_404(context, params["thread_id"], params["run_id"])
    return await _wait_response(context, run, {}, q_bool(request, "cancel_on_disconnect"))


def _join_modes(request: Request) -> list[str] | None:
    raw = [m for m in request.query_params.getlist("stream_mode") if m.strip()]
    modes: list[str] = []
    for item in raw:
        if item.startswith("["):
            try:
                parsed = orjson.loads(item)
            except orjson.JSONDecodeError:
                raise HTTPException(422, f"stream_mode {item!r} is not a JSON list") from None
            if not isinstance(parsed, list) or not all(isinstance(m, str) for m in parsed):
                raise HTTPException(422, f"stream_mode {item!r} is not a list of modes")
            modes.extend(parsed)
        else:
            modes.append(item)
    unknown = sorted(set(modes) - API_MODES)
    if unknown:
        raise HTTPException(422, f"unknown stream_mode {unknown}; choose from "
                                 f"{sorted(API_MODES)}")
    return modes or None


def _last_event_id(request: Request) -> int:
    raw = request.headers.get("last-event-id")
    if raw is None or not raw.strip():
        return 0
    try:
        value = int(raw)
    except ValueError:
        raise HTTPException(422, f"Last-Event-ID {raw!r} is not an event id of this server "
                                 "(ids are integers)") from None
    return max(value, 0)


_JOIN_QUERY = [bool_param("cancel_on_disconnect"), Param(
    "stream_mode", {"type": "string"}, "repeat (or a JSON list) to keep only these modes")]


@op("GET", "/threads/{thread_id}/runs/{run_id}/stream", tag="runs", query=_JOIN_QUERY,
    sse=True)
async def join_stream(request: Request) -> Response:
    """Stream a run's events (SSE), after the Last-Event-ID header if given."""
    params = request.path_params
    context = ctx(request)
    run = await _run_or_404(context, params["thread_id"], params["run_id"])
    return _stream(context, run, False, after=_last_event_id(request),
                   modes=_join_modes(request),
                   cancel_on_disconnect=q_bool(request, "cancel_on_disconnect"))


@op("GET", "/runs/{run_id}/stream", tag="stateless runs", query=_JOIN_QUERY, sse=True)
async def join_stateless_stream(request: Request) -> Response:
    """Stream a run's events (SSE) by its id alone."""
    context = ctx(request)
    run = await _run_or_404(context, None, request.path_params["run_id"])
    return _stream(context, run, True, after=_last_event_id(request),
                   modes=_join_modes(request),
                   cancel_on_disconnect=q_bool(request, "cancel_on_disconnect"))


# -- cancelling runs ---------------------------------------------------------------


_ACTIONS = ("interrupt", "rollback")


@op("POST", "/threads/{thread_id}/runs/{run_id}/cancel", tag="runs",
    query=[bool_param("wait"), choice_param("action", _ACTIONS)])
async def cancel_run(request: Request) -> Response:
    """Cancel a run (202; with wait=1, 200 and its final values once it stopped)."""
    thread_id, run_id = request.path_params["thread_id"], request.path_params["run_id"]
    wait = q_bool(request, "wait")
    action = q_choice(request, "action", "interrupt", _ACTIONS)
    context = ctx(request)
    run = await _run_or_404(context, thread_id, run_id)
    await context.store.cancel_runs(thread_id, [run_id], action)
    if not wait:
        return Response(status_code=202)
    return await _wait_response(context, run, {}, False)


@op("POST", "/runs/cancel", tag="runs", body=CancelMany, status=204,
    query=[choice_param("action", _ACTIONS)])
async def cancel_many(request: Request) -> Response:
    """Cancel the runs of a thread, by ids, or by status."""
    body = parse(await request.body(), CancelMany)
    action = q_choice(request, "action", "interrupt", _ACTIONS)
    status = None if body.status in (None, "all") else body.status
    if body.thread_id is None and body.run_ids is None and body.status is None:
        raise HTTPException(422, "name the runs to cancel: thread_id, run_ids or status")
    await ctx(request).store.cancel_runs(body.thread_id, body.run_ids, action, status=status)
    return Response(status_code=204)
