"""The teardown harness: after every kind of cancellation, nothing of the run is
left: no task, no file descriptor, no HTTP connection, and the durable thread
resumes.

These tests use real sockets (the shipped token server on 127.0.0.1) and a
SQLite file, so they run on the real clock; the server streams slowly enough
that every cancellation lands in the middle of an answer.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypedDict

import pytest
import trio
from _helpers import TaskTracker

from trigraph import (
    END,
    START,
    CompiledGraph,
    NodeTimeoutError,
    RunTimeoutError,
    SqliteCheckpointer,
    StateGraph,
)
from trigraph.llm import ChatModel
from trigraph.llm.testing import TokenServer, open_token_server

pytestmark = pytest.mark.slow


class Chat(TypedDict, total=False):
    prompt: str
    answer: str
    other: str


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@asynccontextmanager
async def world(tmp_path: Path) -> AsyncIterator[tuple[TokenServer, ChatModel, SqliteCheckpointer]]:
    async with (
        open_token_server(tokens_per_second=40) as server,
        ChatModel(server.base_url, "story", api_key="") as model,
        SqliteCheckpointer(tmp_path / "threads.db") as cp,
    ):
        yield server, model, cp


def chat_graph(
    model: ChatModel, cp: SqliteCheckpointer, first: trio.Event, **node: Any
) -> CompiledGraph:
    async def talk(state: Chat) -> dict[str, Any]:
        text = ""
        async with model.stream(state["prompt"]) as tokens:
            async for token in tokens:
                text += token
                first.set()
        return {"answer": text}

    async def elsewhere(state: Chat) -> dict[str, Any]:
        await trio.sleep(0.01)
        return {"other": "done"}

    g = StateGraph(Chat).add_node("talk", talk, **node).add_node("elsewhere", elsewhere)
    g.add_edge(START, "elsewhere").add_edge("elsewhere", "talk").add_edge("talk", END)
    return g.compile(checkpointer=cp)


PROMPT = " ".join(f"word{i}" for i in range(200))


async def cancel_from_outside(graph: CompiledGraph, first: trio.Event) -> None:
    async with trio.open_nursery() as nursery:
        nursery.start_soon(lambda: graph.ainvoke({"prompt": PROMPT}, thread="t"))
        await first.wait()
        nursery.cancel_scope.cancel()


async def leave_the_stream(graph: CompiledGraph, first: trio.Event) -> None:
    async with graph.stream({"prompt": PROMPT}, thread="t", modes="messages") as events:
        async for _ in events:
            break


async def run_timeout(graph: CompiledGraph, first: trio.Event) -> None:
    with pytest.raises(RunTimeoutError):
        await graph.ainvoke({"prompt": PROMPT}, thread="t", timeout=0.3)


async def node_timeout(graph: CompiledGraph, first: trio.Event) -> None:
    with pytest.raises(NodeTimeoutError):
        await graph.ainvoke({"prompt": PROMPT}, thread="t")


KINDS: dict[str, tuple[Callable[..., Any], dict[str, Any]]] = {
    "outer cancel scope": (cancel_from_outside, {}),
    "leaving stream()": (leave_the_stream, {}),
    "run timeout=": (run_timeout, {}),
    "node timeout=": (node_timeout, {"timeout": 0.3}),
}


@pytest.mark.parametrize("kind", sorted(KINDS))
async def test_cancellation_leaves_nothing_behind_and_the_thread_resumes(
    kind: str, tmp_path: Path, task_tracker: TaskTracker
) -> None:
    cancel, node_options = KINDS[kind]
    async with world(tmp_path) as (server, model, cp):
        first = trio.Event()
        graph = chat_graph(model, cp, first, **node_options)
        await cp.threads()  # the database file is open before the baseline
        baseline = open_fds()

        with task_tracker.watch():
            await cancel(graph, first)
        await server.wait_idle()

        run_tasks = [n for n in task_tracker.alive_names() if "serve_listeners" not in n]
        assert run_tasks == [], "a task of the run outlived it (the server's are not counted)"
        assert server.statistics().open_connections == 0
        assert server.statistics().aborted == 1, "the server did not see the client leave"
        assert open_fds() == baseline, "a file descriptor of the run is still open"

        snapshot = await graph.get_state("t")
        assert snapshot.next == ("talk",)
        assert snapshot.values["other"] == "done"

        resumed = chat_graph(model, cp, trio.Event())  # no timeout on the resume
        final = await resumed.ainvoke(None, thread="t")
        assert final["answer"].startswith("Once upon a time")
        assert final["other"] == "done"
