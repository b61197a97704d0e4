"""The benchmark's three-node graph, in trigraph (served by ``trigraph serve``)."""

import operator
from typing import Annotated, TypedDict

from trigraph import END, START, StateGraph, get_stream_writer


class State(TypedDict, total=False):
    items: Annotated[list, operator.add]
    n_custom: int


async def a(state: State) -> dict:
    return {"items": ["a"]}


async def b(state: State) -> dict:
    write = get_stream_writer()
    for i in range(state.get("n_custom", 0)):
        await write({"i": i})
    return {"items": ["b"]}


async def c(state: State) -> dict:
    return {"items": ["c"]}


builder = StateGraph(State)
builder.add_node("a", a)
builder.add_node("b", b)
builder.add_node("c", c)
builder.add_edge(START, "a")
builder.add_edge("a", "b")
builder.add_edge("b", "c")
builder.add_edge("c", END)
graph = builder.compile()
