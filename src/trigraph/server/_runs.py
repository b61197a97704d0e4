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
from fastapi import APIRouter, HTTPException, Request
from starlette.responses import Response, StreamingResponse

from ._convert import API_MODES
from ._graphs import assistant_id
from ._routes import ctx
from ._schemas import CancelMany, RunCreate
from ._shapes import Context, respond, run_json
from ._sse import event_stream, sse_response
from ._store import TERMINAL, RunRecord

__all__ = ["router", "uuid7"]

router = APIRouter()
KEEPALIVE = 5.0


def uuid7() -> str:
    """A time-ordered UUID (version 7), as LangGraph's server makes ids."""
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & (2**48 - 1)) << 80 | 0x7 << 76 | (rand >> 68 & 0xFFF) << 64
    value |= 0b10 << 62 | rand & (2**62 - 1)
    return str(uuid.UUID(int=value))


def _paths(run: RunRecord, stateless: bool) -> tuple[str, str]:
    """The run's path and its thread-scoped path (what ``Location`` names)."""
    rid = quote(run.run_id, safe="")
    scoped = f"/threads/{quote(run.thread_id, safe='')}/runs/{rid}"
    return (f"/runs/{rid}" if stateless else scoped), scoped


async def _create(context: Context, thread_id: str | None, body: RunCreate) -> RunRecord:
    graphs = context.graphs
    graph_id = graphs.resolve(body.assistant_id)
    if graph_id is None:
        raise HTTPException(422, f"Invalid assistant: '{body.assistant_id}'. Must be either a "
                                 "valid assistant UUID or one of the registered graphs: "
                                 f"{', '.join(sorted(graphs.graphs))}")
    command = body.command
    if command is not None and command.goto is not None:
        raise HTTPException(422, "command.goto is not supported by trigraph serve; use "
                                 "command.update and command.resume")
    if command is not None and "resume" in command.model_fields_set and thread_id is None:
        raise HTTPException(400, "You must provide a thread_id when resuming.")
    nodes = set(graphs.graphs[graph_id].nodes)
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
        cmd = {k: getattr(command, k) for k in command.model_fields_set}
    kwargs = {
        "input": body.input, "command": cmd,
        "config": body.config.model_dump(exclude_none=True) if body.config else {},
        "context": body.context or {}, "stream_mode": body.modes(),
        "interrupt_before": body.interrupt_before, "interrupt_after": body.interrupt_after,
        "webhook": body.webhook, "feedback_keys": body.feedback_keys,
        "temporary": temporary, "subgraphs": body.stream_subgraphs,
        "resumable": body.stream_resumable, "checkpoint_during": body.checkpoint_during,
        "durability": body.durability or "async", "checkpoint_id": checkpoint_id,
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


async def _wait_done(context: Context, run_id: str, timeout: float) -> bytes | None:
    """The run's final body once it has ended, or ``None`` after *timeout*."""
    store = context.store
    deadline = trio.current_time() + timeout
    while True:
        wake = store.hub.event(f"done:{run_id}")
        run = await store.get_run(None, run_id)
        if run is None:
            return b"{}"  # rolled back: it left nothing
        if run.status in TERMINAL:
            return run.result or b"{}"
        left = deadline - trio.current_time()
        if left <= 0:
            return None
        await store.hub.wait(wake, min(left, store.poll))


async def _cancel_one(context: Context, run: RunRecord) -> None:
    await context.store.cancel_runs(run.thread_id, [run.run_id], "interrupt")


async def _wait_response(
    context: Context, run: RunRecord, headers: dict[str, str], cancel_on_disconnect: bool
) -> Response:
    first = await _wait_done(context, run.run_id, KEEPALIVE)
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


@router.post("/threads/{thread_id}/runs", tags=["runs"])
async def create_run(thread_id: str, body: RunCreate, request: Request) -> Response:
    context = ctx(request)
    run = await _create(context, thread_id, body)
    own, _ = _paths(run, False)
    return respond(run_json(run), headers={"Content-Location": own})


@router.post("/runs", tags=["stateless runs"])
async def create_stateless_run(body: RunCreate, request: Request) -> Response:
    run = await _create(ctx(request), None, body)
    own, _ = _paths(run, True)
    return respond(run_json(run), headers={"Content-Location": own})


@router.post("/threads/{thread_id}/runs/stream", tags=["runs"])
async def stream_run(thread_id: str, body: RunCreate, request: Request) -> Response:
    context = ctx(request)
    run = await _create(context, thread_id, body)
    return _stream(context, run, False, cancel_on_disconnect=body.on_disconnect == "cancel")


@router.post("/runs/stream", tags=["stateless runs"])
async def stream_stateless_run(body: RunCreate, request: Request) -> Response:
    context = ctx(request)
    run = await _create(context, None, body)
    return _stream(context, run, True, cancel_on_disconnect=body.on_disconnect == "cancel")


@router.post("/threads/{thread_id}/runs/wait", tags=["runs"])
async def wait_run(thread_id: str, body: RunCreate, request: Request) -> Response:
    context = ctx(request)
    run = await _create(context, thread_id, body)
    own, scoped = _paths(run, False)
    headers = {"Location": f"{scoped}/join", "Content-Location": own}
    return await _wait_response(context, run, headers, body.on_disconnect == "cancel")


@router.post("/runs/wait", tags=["stateless runs"])
async def wait_stateless_run(body: RunCreate, request: Request) -> Response:
    context = ctx(request)
    run = await _create(context, None, body)
    own, scoped = _paths(run, True)
    headers = {"Location": f"{scoped}/join", "Content-Location": own}
    return await _wait_response(context, run, headers, body.on_disconnect == "cancel")


# -- reading runs ------------------------------------------------------------------


async def _run_or_404(context: Context, thread_id: str | None, run_id: str) -> RunRecord:
    run = await context.store.get_run(thread_id, run_id)
    if run is None:
        raise HTTPException(404, f"Run {run_id} not found")
    return run


@router.get("/threads/{thread_id}/runs", tags=["runs"])
async def list_runs(
    thread_id: str, request: Request, limit: int = 10, offset: int = 0,
    status: str | None = None,
) -> Response:
    context = ctx(request)
    if not 1 <= limit <= 1000 or offset < 0:
        raise HTTPException(422, "limit must be 1..1000 and offset >= 0")
    if await context.store.get_thread(thread_id) is None:
        raise HTTPException(404, f"Thread with ID {thread_id} not found")
    runs = await context.store.list_runs(thread_id, limit=limit, offset=offset, status=status)
    return respond([run_json(r) for r in runs])


@router.get("/threads/{thread_id}/runs/{run_id}", tags=["runs"])
async def get_run(thread_id: str, run_id: str, request: Request) -> Response:
    return respond(run_json(await _run_or_404(ctx(request), thread_id, run_id)))


@router.get("/runs/{run_id}", tags=["stateless runs"])
async def get_stateless_run(run_id: str, request: Request) -> Response:
    return respond(run_json(await _run_or_404(ctx(request), None, run_id)))


@router.delete("/threads/{thread_id}/runs/{run_id}", tags=["runs"], status_code=204)
async def delete_run(thread_id: str, run_id: str, request: Request) -> Response:
    await ctx(request).store.delete_run(thread_id, run_id)
    return Response(status_code=204)


@router.get("/threads/{thread_id}/runs/{run_id}/join", tags=["runs"])
async def join_run(
    thread_id: str, run_id: str, request: Request, cancel_on_disconnect: bool = False
) -> Response:
    context = ctx(request)
    run = await _run_or_404(context, thread_id, run_id)
    return await _wait_response(context, run, {}, cancel_on_disconnect)


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


@router.get("/threads/{thread_id}/runs/{run_id}/stream", tags=["runs"])
async def join_stream(
    thread_id: str, run_id: str, request: Request, cancel_on_disconnect: bool = False
) -> Response:
    context = ctx(request)
    run = await _run_or_404(context, thread_id, run_id)
    return _stream(context, run, False, after=_last_event_id(request),
                   modes=_join_modes(request), cancel_on_disconnect=cancel_on_disconnect)


@router.get("/runs/{run_id}/stream", tags=["stateless runs"])
async def join_stateless_stream(
    run_id: str, request: Request, cancel_on_disconnect: bool = False
) -> Response:
    context = ctx(request)
    run = await _run_or_404(context, None, run_id)
    return _stream(context, run, True, after=_last_event_id(request),
                   modes=_join_modes(request), cancel_on_disconnect=cancel_on_disconnect)


# -- cancelling runs ---------------------------------------------------------------


def _action(action: str) -> str:
    if action not in ("interrupt", "rollback"):
        raise HTTPException(422, f"action must be 'interrupt' or 'rollback', not {action!r}")
    return action


@router.post("/threads/{thread_id}/runs/{run_id}/cancel", tags=["runs"])
async def cancel_run(
    thread_id: str, run_id: str, request: Request, wait: bool = False,
    action: str = "interrupt",
) -> Response:
    context = ctx(request)
    run = await _run_or_404(context, thread_id, run_id)
    await context.store.cancel_runs(thread_id, [run_id], _action(action))
    if not wait:
        return Response(status_code=202)
    return await _wait_response(context, run, {}, False)


@router.post("/runs/cancel", tags=["runs"], status_code=204)
async def cancel_many(body: CancelMany, request: Request, action: str = "interrupt") -> Response:
    status = None if body.status in (None, "all") else body.status
    if body.thread_id is None and body.run_ids is None and body.status is None:
        raise HTTPException(422, "name the runs to cancel: thread_id, run_ids or status")
    await ctx(request).store.cancel_runs(body.thread_id, body.run_ids, _action(action),
                                         status=status)
    return Response(status_code=204)
