"""The graph behind ``trigraph demo``: a research chatbot in the style of the
seed chapter (async nodes fetching data in parallel, then an LLM answer
streamed token by token).

Three research nodes run in parallel in one superstep and report progress as
custom events; a join waits for all three; ``answer`` streams the model's
reply (each token reaches the run's ``"messages"`` stream by itself); then
``fact_check`` takes a moment before the run ends. It needs nothing
configured: unless ``OPENAI_BASE_URL`` is set, ``answer`` starts the local
token server of ``trigraph.llm.testing`` for the length of its own call, so
the graph works the same under ``run``, ``resume`` and ``demo``, offline.
``examples/research_chat.py`` runs the same graph from Python.
"""

from __future__ import annotations

import operator
from contextlib import AbstractAsyncContextManager
from typing import Annotated, Any, TypedDict

import trio

from .._context import get_stream_writer
from .._graph import StateGraph
from .._types import END, START

__all__ = ["TARGET", "ResearchState", "build", "graph", "open_chat_model"]

TARGET = "trigraph._cli._demo:graph"
"""How the command line names this graph (for ``resume`` hints)."""

TOKENS_PER_SECOND = 60.0
"""The local model's pace: slow enough to watch the answer being typed."""

# A local stand-in for the outside world: what each "source" knows.
_LIBRARY = {
    "web": [
        "Trio runs every concurrent task inside a nursery, which waits for all of them.",
        "Cancelling a nursery's scope cancels every task in it, at its next checkpoint.",
    ],
    "papers": [
        "Structured concurrency: no task outlives the block that started it.",
    ],
    "notes": [
        "A superstep runs its nodes in one nursery and applies their writes afterwards.",
    ],
}
_LATENCY = {"web": 0.30, "papers": 0.45, "notes": 0.15}


class ResearchState(TypedDict, total=False):
    """The chat's state: the question, what research found, and the answer."""

    question: str
    findings: Annotated[list[str], operator.add]
    answer: str
    checked: str


def _researcher(source: str) -> Any:
    async def research(state: ResearchState) -> dict[str, Any]:
        write = get_stream_writer()
        await write(f"searching {source} for {state.get('question', 'anything')!r}")
        await trio.sleep(_LATENCY[source])  # a slow API, simulated
        found = _LIBRARY[source]
        await write(f"{len(found)} result(s) from {source}")
        return {"findings": [f"[{source}] {text}" for text in found]}

    research.__name__ = f"search_{source}"
    return research


def open_chat_model() -> AbstractAsyncContextManager[Any]:
    """A ``ChatModel``: ``$OPENAI_BASE_URL`` if set, else a local token server
    (see :func:`trigraph.llm.testing.open_demo_model`)."""
    from ..llm.testing import open_demo_model

    return open_demo_model(tokens_per_second=TOKENS_PER_SECOND)


async def answer(state: ResearchState) -> dict[str, Any]:
    """Ask the model, streaming its answer (tokens reach the stream by themselves)."""
    findings = "\n".join(f"- {f}" for f in state.get("findings", []))
    messages = [
        {"role": "system", "content": f"Answer briefly, using these findings:\n{findings}"},
        {"role": "user", "content": state.get("question", "")},
    ]
    async with open_chat_model() as model:
        text = await model.complete(messages)
    return {"answer": text}


async def fact_check(state: ResearchState) -> dict[str, Any]:
    """Take a moment to check the answer against the findings."""
    write = get_stream_writer()
    sources = len(state.get("findings", []))
    await write(f"checking the answer against {sources} findings")
    await trio.sleep(0.5)
    return {"checked": f"consistent with {sources} findings"}


def build() -> StateGraph[ResearchState]:
    """The research chat graph, not yet compiled."""
    builder = StateGraph(ResearchState)
    sources = list(_LIBRARY)
    for source in sources:
        builder.add_node(f"search_{source}", _researcher(source))
        builder.add_edge(START, f"search_{source}")
    builder.add_node("answer", answer)
    builder.add_edge([f"search_{source}" for source in sources], "answer")
    builder.add_node("fact_check", fact_check)
    builder.add_edge("answer", "fact_check")
    builder.add_edge("fact_check", END)
    return builder


graph = build().compile(name="research_chat")
"""The compiled demo graph (no checkpointer: the command line adds one)."""
