"""Graphs served by the server tests (``trigraph serve tests/server_graphs.py:...``)."""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict

import trio

from trigraph import END, START, StateGraph, get_stream_writer, interrupt


class ChainState(TypedDict, total=False):
    items: Annotated[list[Any], operator.add]
    n_custom: int
    sleep: float
    fail: str


async def a(state: ChainState) -> dict[str, Any]:
    return {"items": ["a"]}


async def b(state: ChainState) -> dict[str, Any]:
    write = get_stream_writer()
    for i in range(state.get("n_custom", 0)):
        await write({"i": i})
    if state.get("sleep"):
        await trio.sleep(state["sleep"])
    if state.get("fail") == "b":
        raise ValueError("boom!")
    return {"items": ["b"]}


async def c(state: ChainState) -> dict[str, Any]:
    return {"items": ["c"]}


def _chain() -> StateGraph[ChainState]:
    g = StateGraph(ChainState)
    g.add_node("a", a).add_node("b", b).add_node("c", c)
    g.add_edge(START, "a").add_edge("a", "b").add_edge("b", "c").add_edge("c", END)
    return g


chain = _chain().compile()


class AskState(TypedDict, total=False):
    question: str
    answer: str


async def ask(state: AskState) -> dict[str, Any]:
    answer = interrupt({"question": state.get("question", "ok?")})
    return {"answer": answer}


def _ask() -> StateGraph[AskState]:
    g = StateGraph(AskState)
    g.add_node("ask", ask).add_edge(START, "ask").add_edge("ask", END)
    return g


ask_graph = _ask().compile()


class TickState(TypedDict, total=False):
    ticks: int
    delay: float
    done: Annotated[list[int], operator.add]


async def tick(state: TickState) -> dict[str, Any]:
    """One step per tick, each a checkpoint: a graph to kill workers in."""
    await trio.sleep(state.get("delay", 0.05))
    await get_stream_writer()({"tick": len(state.get("done", []))})
    return {"done": [len(state.get("done", []))]}


def _more(state: TickState) -> str:
    return "tick" if len(state.get("done", [])) < state.get("ticks", 5) else END


def _ticks() -> StateGraph[TickState]:
    g = StateGraph(TickState)
    g.add_node("tick", tick).add_edge(START, "tick")
    g.add_conditional_edges("tick", _more, {"tick": "tick", END: END})
    return g


ticks = _ticks().compile()


class Inner(TypedDict, total=False):
    items: Annotated[list[Any], operator.add]


async def inner_step(state: Inner) -> dict[str, Any]:
    await get_stream_writer()({"inner": True})
    return {"items": ["inner"]}


def _parent() -> StateGraph[ChainState]:
    sub = StateGraph(Inner)
    sub.add_node("inner_step", inner_step).add_edge(START, "inner_step")
    sub.add_edge("inner_step", END)
    g = StateGraph(ChainState)
    g.add_node("sub", sub.compile()).add_node("c", c)
    g.add_edge(START, "sub").add_edge("sub", "c").add_edge("c", END)
    return g


nested = _parent().compile()
