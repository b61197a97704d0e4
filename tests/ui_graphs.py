"""Graphs served to the browser tests of the page at ``/ui`` (``tests/test_ui.py``).

- ``story``: a router with a ``Command`` (dashed destinations), an LLM node
  whose tokens stream from ``trigraph.llm.testing``'s token server, and a
  conditional edge;
- ``ask``: an ``interrupt()`` that asks a question;
- ``agent``: ``create_agent`` with a tool that needs a person's approval;
- ``ticks``: a node that streams *count* custom events, *delay* apart (and
  then fails, with *fail*).

The token server runs in its own process (``python tests/ui_graphs.py``
prints its address); ``trigraph serve`` finds it in ``TRIGRAPH_UI_LLM``.
"""

from __future__ import annotations

import operator
import os
import sys
from typing import Annotated, Any, Literal, TypedDict

import trio

from trigraph import (
    END,
    START,
    Command,
    MemoryCheckpointer,
    StateGraph,
    get_stream_writer,
    interrupt,
)
from trigraph.agents import create_agent
from trigraph.llm import ChatModel
from trigraph.llm.testing import Script, serve
from trigraph.tools import tool

LLM = os.environ.get("TRIGRAPH_UI_LLM", "http://127.0.0.1:9/v1")
model = ChatModel(LLM, "trigraph-story", api_key="")


class StoryState(TypedDict, total=False):
    topic: str
    short: bool
    story: str
    drafts: Annotated[list[str], operator.add]


async def plan(state: StoryState) -> Command[Literal["write", "skip"]]:
    return Command(goto="skip" if state.get("short") else "write")


async def write(state: StoryState) -> dict[str, Any]:
    text = await model.complete(f"a story about {state.get('topic', 'a fox')}")
    return {"story": text, "drafts": [text]}


async def skip(state: StoryState) -> dict[str, Any]:
    return {"story": "(no story)"}


def _enough(state: StoryState) -> str:
    return "done" if state.get("drafts") else "again"


def _story() -> StateGraph[StoryState]:
    g = StateGraph(StoryState)
    g.add_node("plan", plan).add_node("write", write).add_node("skip", skip)
    g.add_node("review", lambda state: None)
    g.add_edge(START, "plan").add_edge("write", "review").add_edge("skip", END)
    g.add_conditional_edges("review", _enough, {"again": "write", "done": END})
    return g


story = _story().compile()


class AskState(TypedDict, total=False):
    question: str
    answer: Any


async def ask(state: AskState) -> dict[str, Any]:
    return {"answer": interrupt({"question": state.get("question", "Go on?")})}


async def confirm(state: AskState) -> dict[str, Any]:
    return {}


def _ask() -> StateGraph[AskState]:
    g = StateGraph(AskState)
    g.add_node("ask", ask).add_node("confirm", confirm)
    g.add_edge(START, "ask").add_edge("ask", "confirm").add_edge("confirm", END)
    return g


ask_graph = _ask().compile()


@tool
async def book_flight(to: str, seats: int = 1) -> str:
    """Book a flight.

    Args:
        to: the city to fly to.
        seats: how many seats.
    """
    return f"booked {seats} seat(s) to {to}"


agent = create_agent(model, [book_flight], approve={"book_flight"},
                     checkpointer=MemoryCheckpointer(), system_prompt="Be brief.")


class TickState(TypedDict, total=False):
    count: int
    delay: float
    fail: bool
    total: int


async def tick(state: TickState) -> dict[str, Any]:
    write = get_stream_writer()
    delay = state.get("delay", 0.0)
    for i in range(state.get("count", 10)):
        await write({"n": i})
        if delay:
            await trio.sleep(delay)
    if state.get("fail"):
        raise ValueError("the tick node failed on purpose")
    return {"total": state.get("count", 10)}


def _ticks() -> StateGraph[TickState]:
    g = StateGraph(TickState)
    g.add_node("tick", tick).add_edge(START, "tick").add_edge("tick", END)
    return g


ticks = _ticks().compile()


AGENT_TURNS = [Script(tool_calls=[("book_flight", {"to": "Oslo", "seats": 2})]),
               Script(answer="Your trip is settled.")]


def script(chat: dict[str, Any]) -> Script:
    """The agent's conversation when the request offers tools; else a story."""
    if chat.get("tools"):
        turn = sum(1 for m in chat["messages"] if m.get("role") == "assistant")
        return AGENT_TURNS[min(turn, len(AGENT_TURNS) - 1)]
    return Script()


async def _main() -> None:
    async with trio.open_nursery() as nursery:
        server = await nursery.start(lambda task_status: serve(
            script=script, tokens_per_second=40.0, task_status=task_status))
        print(f"token server on {server.base_url}", flush=True)


if __name__ == "__main__":
    try:
        trio.run(_main)
    except KeyboardInterrupt:
        sys.exit(0)

