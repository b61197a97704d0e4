"""The response objects of the API (Thread, Run, ThreadState) and the shared
plumbing every route needs (the :class:`Context`, JSON responses, errors).

Responses are encoded once with orjson (:func:`respond`); times are ISO 8601
in UTC. A :class:`~trigraph.StateSnapshot` becomes a ThreadState with the
thread's checkpoint ids, its next tasks and their pending interrupts.
"""

from __future__ import annotations

import datetime
from typing import Any

import attrs
from starlette.exceptions import HTTPException
from starlette.responses import Response

from trigraph import CompiledGraph, StateSnapshot
from trigraph.abc import Checkpointer

from ._convert import dumps, interrupt_json
from ._graphs import Graphs
from ._store import RunRecord, RunStore

__all__ = ["Context", "iso", "not_found", "respond", "run_json", "state_json", "thread_json"]


@attrs.define(eq=False)
class Context:
    """What the routes share: the store, the graphs and their checkpointer."""

    store: RunStore
    graphs: Graphs
    checkpointer: Checkpointer

    def graph_for(self, thread: dict[str, Any] | None) -> CompiledGraph:
        """The graph of *thread* (its ``graph_id`` metadata), else the only one."""
        graph_id = None if thread is None else thread["metadata"].get("graph_id")
        if graph_id in self.graphs.graphs:
            return self.graphs.graphs[graph_id]
        if len(self.graphs.graphs) == 1:
            return next(iter(self.graphs.graphs.values()))
        raise HTTPException(400, "the thread has no graph yet: run it, or create it with "
                                 "graph_id, before reading or editing its state")


def respond(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON response of *body* (bytes are sent as they are)."""
    content = body if isinstance(body, bytes) else dumps(body)
    return Response(content, status, headers=headers, media_type="application/json")


def not_found(what: str) -> HTTPException:
    return HTTPException(404, f"{what} not found")


def iso(t: float | None) -> str | None:
    if t is None:
        return None
    return datetime.datetime.fromtimestamp(t, datetime.UTC).isoformat()


def thread_json(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "thread_id": row["thread_id"], "created_at": iso(row["created_at"]),
        "updated_at": iso(row["updated_at"]), "state_updated_at": iso(row["state_updated_at"]),
        "metadata": row["metadata"], "status": row["status"], "config": {},
        "values": row["values"], "interrupts": row["interrupts"] or {}, "error": None,
    }


def run_json(run: RunRecord) -> dict[str, Any]:
    return {
        "run_id": run.run_id, "thread_id": run.thread_id, "assistant_id": run.assistant_id,
        "created_at": iso(run.created_at), "updated_at": iso(run.updated_at),
        "status": run.status, "metadata": run.metadata, "kwargs": run.kwargs,
        "multitask_strategy": run.multitask_strategy,
    }


def _ref(thread_id: str, checkpoint_id: str | None) -> dict[str, Any] | None:
    if checkpoint_id is None:
        return None
    return {"thread_id": thread_id, "checkpoint_ns": "", "checkpoint_id": checkpoint_id}


def state_json(thread_id: str, snap: StateSnapshot, created_at: float | None) -> dict[str, Any]:
    """A ThreadState: values, next, tasks (with their interrupts), checkpoint ids."""
    by_node: dict[str, list[dict[str, Any]]] = {}
    for intr in snap.interrupts:
        by_node.setdefault(intr.node, []).append(interrupt_json(intr.value, intr.id))
    tasks = [
        {"id": f"{snap.step + 1}.{i}", "name": node, "path": ["__pregel_pull", node],
         "error": None, "interrupts": by_node.get(node, []), "checkpoint": None,
         "state": None, "result": None}
        for i, node in enumerate(snap.next)
    ]
    return {
        "values": snap.values,
        "next": list(snap.next),
        "tasks": tasks,
        "metadata": {"step": snap.step, "source": "loop" if snap.step > 0 else "input",
                     "parents": {}},
        "created_at": iso(created_at),
        "checkpoint": _ref(thread_id, snap.checkpoint_id),
        "parent_checkpoint": _ref(thread_id, snap.parent_checkpoint_id),
        "interrupts": [interrupt_json(i.value, i.id) for i in snap.interrupts],
        "checkpoint_id": snap.checkpoint_id,
        "parent_checkpoint_id": snap.parent_checkpoint_id,
    }
