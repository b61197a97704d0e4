"""Agent systems: run a background task while the main workflow continues.

The seed chapter's third use case. A superstep waits for all of its tasks, so
a slow node would hold back any node that shares its step. The main workflow
(``plan`` -> ``draft``) therefore runs as a *subgraph* beside the slow
``index_documents`` node: both start in step 1, the subgraph takes its own
supersteps (streamed with ``ns == ("main:<task id>",)``) while the index is
being built, and ``review`` runs once both are done.

Run it: ``python examples/background_agent.py``
"""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict

import trio

from trigraph import END, START, StateGraph
from trigraph.events import Update


class State(TypedDict, total=False):
    question: str
    log: Annotated[list[str], operator.add]
    index: list[str]
    draft: str


async def index_documents(state: State) -> dict[str, Any]:
    await trio.sleep(0.3)  # a slow crawl, running in the background
    return {"index": ["doc-a", "doc-b", "doc-c"], "log": ["indexed 3 documents"]}


async def plan(state: State) -> dict[str, Any]:
    await trio.sleep(0.05)
    return {"log": [f"planned an answer to {state['question']!r}"]}


async def draft(state: State) -> dict[str, Any]:
    await trio.sleep(0.05)
    return {"draft": f"A first answer to {state['question']!r}.", "log": ["drafted"]}


async def review(state: State) -> dict[str, Any]:
    cited = ", ".join(state["index"])
    return {"draft": f"{state['draft']} (sources: {cited})", "log": ["reviewed"]}


def build() -> Any:
    main_path = StateGraph(State)
    main_path.add_node(plan).add_node(draft)
    main_path.add_edge(START, "plan").add_edge("plan", "draft").add_edge("draft", END)

    g = StateGraph(State)
    g.add_node(index_documents)
    g.add_node("main", main_path.compile())
    g.add_node(review)
    g.add_edge(START, "index_documents")
    g.add_edge(START, "main")
    g.add_edge(["main", "index_documents"], "review")
    g.add_edge("review", END)
    return g.compile()


async def main() -> None:
    graph = build()
    started = trio.current_time()
    async with graph.stream({"question": "why Trio?", "log": []}, modes="updates") as events:
        async for event in events:
            assert isinstance(event, Update)
            elapsed = trio.current_time() - started
            where = "/".join(event.ns) or "top"
            print(f"{elapsed:5.2f}s  {where:<10} step {event.step}  {event.node:<16} "
                  f"{event.update['log']}")
    final = await graph.ainvoke({"question": "why Trio?", "log": []})
    print(final["draft"])


if __name__ == "__main__":
    trio.run(main)
