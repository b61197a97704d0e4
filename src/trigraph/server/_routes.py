"""The assistants and threads routes of the LangGraph Server API.

Assistants are the served graphs (read-only: ``search``, ``count``, ``get``,
``graph``, ``schemas``, ``subgraphs``). Threads live in the run store; their
state is read from and written to the checkpointer through the thread's
graph. A missing thread is 404; a thread state edit while a run holds the
thread is 409.
"""

from __future__ import annotations

import uuid
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from trigraph import GraphValidationError, InvalidUpdateError, ThreadBusyError

from ._api import bool_param, int_param, op, q_int
from ._convert import dumps
from ._schemas import (
    AssistantCount,
    AssistantSearch,
    HistoryRequest,
    StateAtCheckpoint,
    StateUpdate,
    ThreadCount,
    ThreadCreate,
    ThreadPatch,
    ThreadSearch,
    parse,
)
from ._shapes import Context, not_found, respond, state_json, thread_json

__all__ = ["ctx", "thread_or_404"]


def ctx(request: Request) -> Context:
    context: Context = request.app.state.trigraph
    return context


# -- assistants ----------------------------------------------------------------


def _assistant_or_404(context: Context, assistant_id: str) -> str:
    graph_id = context.graphs.resolve(assistant_id)
    if graph_id is None:
        raise HTTPException(404, f"Assistant {assistant_id} not found")
    return graph_id


def _assistants(context: Context, body: AssistantSearch | AssistantCount) -> list[dict[str, Any]]:
    found = [context.graphs.assistant(g) for g in sorted(context.graphs.graphs)]
    if body.graph_id is not None:
        found = [a for a in found if a["graph_id"] == body.graph_id]
    if body.name is not None:
        found = [a for a in found if body.name.lower() in a["name"].lower()]
    if body.metadata:
        found = [a for a in found
                 if all(a["metadata"].get(k) == v for k, v in body.metadata.items())]
    return found


@op("POST", "/assistants/search", tag="assistants", body=AssistantSearch)
async def search_assistants(request: Request) -> Response:
    """Search the assistants (the served graphs)."""
    body = parse(await request.body(), AssistantSearch)
    found = _assistants(ctx(request), body)
    if body.sort_by is not None:
        found.sort(key=lambda a: str(a[body.sort_by or "name"]),
                   reverse=body.sort_order == "desc")
    page = found[body.offset:body.offset + body.limit]
    headers = {}
    if body.offset + body.limit < len(found):
        headers["X-Pagination-Next"] = str(body.offset + body.limit)
    headers["X-Pagination-Total"] = str(len(found))
    return respond(page, headers=headers)


@op("POST", "/assistants/count", tag="assistants", body=AssistantCount)
async def count_assistants(request: Request) -> Response:
    """Count the assistants."""
    body = parse(await request.body(), AssistantCount)
    return respond(len(_assistants(ctx(request), body)))


@op("GET", "/assistants/{assistant_id}", tag="assistants")
async def get_assistant(request: Request) -> Response:
    """An assistant, by its id or its graph id."""
    assistant_id = request.path_params["assistant_id"]
    context = ctx(request)
    return respond(context.graphs.assistant(_assistant_or_404(context, assistant_id)))


@op("GET", "/assistants/{assistant_id}/graph", tag="assistants",
    query=[bool_param("xray")])
async def get_assistant_graph(request: Request) -> Response:
    """The assistant's graph: nodes and edges."""
    assistant_id = request.path_params["assistant_id"]
    context = ctx(request)
    return respond(context.graphs.drawing(_assistant_or_404(context, assistant_id)))


@op("GET", "/assistants/{assistant_id}/schemas", tag="assistants")
async def get_assistant_schemas(request: Request) -> Response:
    """The JSON Schemas of the assistant's state, input and output."""
    assistant_id = request.path_params["assistant_id"]
    context = ctx(request)
    return respond(context.graphs.schemas(_assistant_or_404(context, assistant_id)))


@op("GET", "/assistants/{assistant_id}/subgraphs", tag="assistants")
async def get_assistant_subgraphs(request: Request) -> Response:
    """The assistant's subgraphs (none are listed)."""
    _assistant_or_404(ctx(request), request.path_params["assistant_id"])
    return respond({})


# -- threads -------------------------------------------------------------------


async def thread_or_404(context: Context, thread_id: str) -> dict[str, Any]:
    row = await context.store.get_thread(thread_id)
    if row is None:
        raise HTTPException(404, f"Thread with ID {thread_id} not found")
    return row


@op("POST", "/threads", tag="threads", body=ThreadCreate)
async def create_thread(request: Request) -> Response:
    """Create a thread."""
    body = parse(await request.body(), ThreadCreate)
    context = ctx(request)
    if body.supersteps:
        raise HTTPException(422, "supersteps are not supported by trigraph serve; create "
                                 "the thread, then call update_state for each step")
    metadata = dict(body.metadata or {})
    if body.graph_id is not None:
        if body.graph_id not in context.graphs.graphs:
            raise HTTPException(422, f"Invalid graph_id {body.graph_id!r}; served graphs: "
                                     f"{', '.join(sorted(context.graphs.graphs))}")
        metadata.setdefault("graph_id", body.graph_id)
    thread_id = body.thread_id or str(uuid.uuid4())
    row = await context.store.create_thread(thread_id, metadata, body.if_exists)
    return respond(thread_json(row))


@op("POST", "/threads/search", tag="threads", body=ThreadSearch)
async def search_threads(request: Request) -> Response:
    """Search threads by metadata, values, ids and status."""
    body = parse(await request.body(), ThreadSearch)
    rows = await ctx(request).store.search_threads(
        metadata=body.metadata, status=body.status, ids=body.ids, limit=body.limit,
        offset=body.offset, sort_by=body.sort_by, sort_order=body.sort_order,
        values=body.values,
    )
    return respond([thread_json(r) for r in rows])


@op("POST", "/threads/count", tag="threads", body=ThreadCount)
async def count_threads(request: Request) -> Response:
    """Count threads."""
    body = parse(await request.body(), ThreadCount)
    return respond(await ctx(request).store.count_threads(
        metadata=body.metadata, status=body.status, values=body.values))


@op("GET", "/threads/{thread_id}", tag="threads")
async def get_thread(request: Request) -> Response:
    """A thread."""
    return respond(thread_json(await thread_or_404(ctx(request),
                                                   request.path_params["thread_id"])))


@op("PATCH", "/threads/{thread_id}", tag="threads", body=ThreadPatch)
async def patch_thread(request: Request) -> Response:
    """Merge metadata into a thread's."""
    thread_id = request.path_params["thread_id"]
    body = parse(await request.body(), ThreadPatch)
    row = await ctx(request).store.update_thread(thread_id, body.metadata or {})
    if row is None:
        raise HTTPException(404, f"Thread with ID {thread_id} not found")
    return respond(thread_json(row))


@op("DELETE", "/threads/{thread_id}", tag="threads", status=204)
async def delete_thread(request: Request) -> Response:
    """Delete a thread, its runs and its checkpoints."""
    thread_id = request.path_params["thread_id"]
    context = ctx(request)
    await context.store.delete_thread(thread_id)
    await context.checkpointer.delete_thread(thread_id)
    return Response(status_code=204)


async def _state(context: Context, thread_id: str, checkpoint_id: str | None) -> Response:
    thread = await thread_or_404(context, thread_id)
    graph = context.graph_for(thread)
    try:
        snap = await graph.get_state(thread_id, checkpoint_id=checkpoint_id)
    except KeyError:
        if checkpoint_id is not None:
            raise not_found(f"Checkpoint {checkpoint_id} of thread {thread_id}") from None
        return respond({"values": {}, "next": [], "tasks": [], "metadata": {},
                        "created_at": None, "checkpoint": None, "parent_checkpoint": None,
                        "interrupts": [], "checkpoint_id": None, "parent_checkpoint_id": None})
    record = await context.checkpointer.get(thread_id, "", snap.checkpoint_id)
    return respond(state_json(thread_id, snap, None if record is None else record.created_at))


@op("GET", "/threads/{thread_id}/state", tag="threads", query=[bool_param("subgraphs")])
async def get_state(request: Request) -> Response:
    """A thread's latest state."""
    return await _state(ctx(request), request.path_params["thread_id"], None)


@op("GET", "/threads/{thread_id}/state/{checkpoint_id}", tag="threads",
    query=[bool_param("subgraphs")])
async def get_state_at(request: Request) -> Response:
    """A thread's state at one checkpoint."""
    params = request.path_params
    return await _state(ctx(request), params["thread_id"], params["checkpoint_id"])


@op("POST", "/threads/{thread_id}/state/checkpoint", tag="threads", body=StateAtCheckpoint)
async def post_state_at(request: Request) -> Response:
    """A thread's state at the checkpoint named in the body."""
    body = parse(await request.body(), StateAtCheckpoint)
    return await _state(ctx(request), request.path_params["thread_id"],
                        body.checkpoint.checkpoint_id)


@op("POST", "/threads/{thread_id}/state", tag="threads", body=StateUpdate)
async def update_state(request: Request) -> Response:
    """Write values to a thread as a new checkpoint (optionally as a node)."""
    thread_id = request.path_params["thread_id"]
    body = parse(await request.body(), StateUpdate)
    context = ctx(request)
    thread = await thread_or_404(context, thread_id)
    graph = context.graph_for(thread)
    if body.checkpoint_id is not None or (body.checkpoint and body.checkpoint.checkpoint_id):
        raise HTTPException(422, "update_state on an older checkpoint is not supported; "
                                 "fork with a run's checkpoint_id instead")
    try:
        checkpoint_id = await graph.update_state(thread_id, body.values, as_node=body.as_node)
    except ThreadBusyError as exc:
        raise HTTPException(409, str(exc)) from None
    except (GraphValidationError, InvalidUpdateError, ValueError, TypeError, KeyError) as exc:
        raise HTTPException(422, str(exc)) from None
    snap = await graph.get_state(thread_id)
    await context.store.set_thread_state(thread_id, dumps(snap.values), None, None)
    ref = {"thread_id": thread_id, "checkpoint_ns": "", "checkpoint_id": checkpoint_id}
    return respond({"checkpoint": ref, "configurable": ref, "checkpoint_id": checkpoint_id})


async def _history(context: Context, thread_id: str, body: HistoryRequest) -> Response:
    thread = await thread_or_404(context, thread_id)
    graph = context.graph_for(thread)
    snaps = await graph.get_state_history(thread_id)
    created = {r.id: r.created_at for r in await context.checkpointer.history(thread_id, "")}
    before = body.before
    cursor = before if isinstance(before, str) else (before.checkpoint_id if before else None)
    if cursor is not None:
        ids = [s.checkpoint_id for s in snaps]
        snaps = snaps[ids.index(cursor) + 1:] if cursor in ids else []
    if body.checkpoint is not None and body.checkpoint.checkpoint_id:
        snaps = [s for s in snaps if s.checkpoint_id == body.checkpoint.checkpoint_id]
    out = [state_json(thread_id, s, created.get(s.checkpoint_id)) for s in snaps]
    if body.metadata:
        out = [s for s in out
               if all(s["metadata"].get(k) == v for k, v in (body.metadata or {}).items())]
    return respond(out[:body.limit])


@op("POST", "/threads/{thread_id}/history", tag="threads", body=HistoryRequest)
async def post_history(request: Request) -> Response:
    """A thread's checkpoints, newest first."""
    body = parse(await request.body(), HistoryRequest)
    return await _history(ctx(request), request.path_params["thread_id"], body)


@op("GET", "/threads/{thread_id}/history", tag="threads",
    query=[int_param("limit", 10, 1, 1000)])
async def get_history(request: Request) -> Response:
    """A thread's checkpoints, newest first."""
    limit = q_int(request, "limit", 10, 1, 1000)
    before = request.query_params.get("before") or None
    return await _history(ctx(request), request.path_params["thread_id"],
                          HistoryRequest(limit=limit, before=before))
