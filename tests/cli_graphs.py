"""Graphs that tests/test_cli.py runs through the ``trigraph`` command line.

Loaded by the CLI as ``tests/cli_graphs.py:<name>`` (a file target), never
imported by pytest. Environment variables steer the nodes so that one graph
can fail, or be slow, in one process and succeed when resumed in the next:

- ``CLI_FAIL``: ``flaky`` raises ``ValueError`` while it is set;
- ``CLI_SLOW``: seconds ``slow`` sleeps (default 0).
"""

from __future__ import annotations

import operator
import os
from typing import Annotated, Any, TypedDict

import attrs
import trio

from trigraph import END, START, MemoryCheckpointer, StateGraph, get_stream_writer, interrupt


class Counter(TypedDict, total=False):
    n: int
    log: Annotated[list[str], operator.add]


async def inc(state: Counter) -> dict[str, Any]:
    await get_stream_writer()({"progress": "inc"})
    return {"n": state.get("n", 0) + 1, "log": ["inc"]}


def double(state: Counter) -> dict[str, Any]:  # a sync node
    return {"n": state["n"] * 2, "log": ["double"]}


async def flaky(state: Counter) -> dict[str, Any]:
    if os.environ.get("CLI_FAIL"):
        raise ValueError("boom")
    return {"log": ["flaky"]}


async def slow(state: Counter) -> dict[str, Any]:
    await trio.sleep(float(os.environ.get("CLI_SLOW", "0")))
    return {"log": ["slow"]}


def _chain(*nodes: Any) -> StateGraph[Counter]:
    builder = StateGraph(Counter)
    previous = START
    for fn in nodes:
        builder.add_node(fn)
        builder.add_edge(previous, fn.__name__)
        previous = fn.__name__
    builder.add_edge(previous, END)
    return builder


counter = _chain(inc, double).compile()
"""inc, then double: ``{"n": 1}`` ends as ``{"n": 4}``."""

counter_builder = _chain(inc, double)
"""The same graph as a ``StateGraph`` (compiled by the CLI)."""

failing = _chain(inc, flaky, double).compile()
"""Fails in ``flaky`` (step 2) while ``CLI_FAIL`` is set."""

sleepy = _chain(inc, slow, double).compile(checkpointer=MemoryCheckpointer())
"""Sleeps ``CLI_SLOW`` seconds in step 2; has a checkpointer the CLI replaces."""


async def ask(state: Counter) -> dict[str, Any]:
    answer = interrupt({"question": "approve?", "n": state.get("n", 0)})
    return {"log": [f"ask: {answer}"]}


async def ask_too(state: Counter) -> dict[str, Any]:
    answer = interrupt("and you?")
    return {"log": [f"ask_too: {answer}"]}


def _asking() -> StateGraph[Counter]:
    builder = StateGraph(Counter)
    builder.add_node(inc).add_node(ask).add_node(ask_too)
    builder.add_edge(START, "inc")
    builder.add_edge("inc", "ask").add_edge("inc", "ask_too")
    builder.add_edge("ask", END).add_edge("ask_too", END)
    return builder


asking = _chain(inc, ask).compile()
"""Pauses in ``ask`` (step 2) until resumed with an answer."""

asking_twice = _asking().compile()
"""Two parallel nodes that each ask a question in step 2."""

paused = _chain(inc, double).compile(checkpointer=MemoryCheckpointer(),
                                      interrupt_before=["double"])
"""Pauses before ``double``; ``resume`` without an answer continues it."""


@attrs.define
class Point:
    x: int
    y: int


class Shapes(TypedDict, total=False):
    point: Point


async def place(state: Shapes) -> dict[str, Any]:
    return {"point": Point(1, 2)}


shapes = StateGraph(Shapes).add_node(place).add_edge(START, "place").add_edge("place", END)
"""A state holding an attrs value (read back without the graph as ``Point(x=1, y=2)``)."""

not_a_graph = 42
