"""Property tests for your own graph, with ``trigraph.testing`` (pytest style).

A research graph fans out one ``research`` task per topic (``Send``), then a
``write`` node (an async generator) streams one line per note and writes the
report. Whatever order the research tasks finish in, the report must list
the topics in the order they were asked for, and every run must stream the
same thing. Hypothesis draws the topics and the schedule (virtual delays for
each node and for the stream's reader); ``run_graph`` runs the graph under
Trio's ``MockClock``, so hundreds of runs with delays of seconds take no real
time. Run it with::

    pip install "trigraph[testing]" pytest
    pytest examples/property_test_my_graph.py

Set ``HYPOTHESIS_PROFILE=thorough`` (see ``trigraph.testing``) for a longer
search; the suite of trigraph itself registers that profile in its conftest.
"""

from __future__ import annotations

import operator
from collections.abc import AsyncIterator
from typing import Annotated, Any, TypedDict

import trio
from hypothesis import given, strategies as st

from trigraph import END, START, Command, Send, StateGraph
from trigraph.events import Custom
from trigraph.testing import Delays, delays, run_graph


class State(TypedDict, total=False):
    topics: list[str]
    notes: Annotated[list[str], operator.add]
    report: str


async def research(arg: dict[str, str]) -> dict[str, Any]:
    await trio.sleep(2.0)  # stands for a web search; virtual time under run_graph
    return {"notes": [f"notes on {arg['topic']}"]}


def plan(state: State) -> list[Send]:
    return [Send("research", {"topic": topic}) for topic in state["topics"]]


async def write(state: State) -> AsyncIterator[Any]:
    for note in state["notes"]:
        yield note.upper()  # streamed to the reader as a Custom event
    yield Command(update={"report": " | ".join(state["notes"])})


builder = StateGraph(State)
builder.add_node(research).add_node(write)
builder.add_conditional_edges(START, plan, ["research"])
builder.add_edge("research", "write")
builder.add_edge("write", END)
graph = builder.compile()

topics = st.lists(
    st.sampled_from(["trio", "httpx", "attrs", "hypothesis"]), min_size=1, max_size=4, unique=True
)


@given(topics=topics, schedule=delays(graph))
def test_report_lists_every_topic_in_the_order_asked(topics: list[str], schedule: Delays) -> None:
    result = run_graph(graph, {"topics": topics}, delays=schedule)
    assert result.final_state is not None
    assert result.final_state["report"] == " | ".join(f"notes on {t}" for t in topics)


@given(topics=topics, first=delays(graph), second=delays(graph), buffer=st.integers(0, 3))
def test_every_schedule_streams_the_same_events(
    topics: list[str], first: Delays, second: Delays, buffer: int
) -> None:
    one = run_graph(graph, {"topics": topics}, delays=first, buffer=buffer)
    two = run_graph(graph, {"topics": topics}, delays=second)
    assert one.values() == two.values()
    streamed = [e.data for e in one.events if isinstance(e, Custom)]
    assert streamed == [f"NOTES ON {t.upper()}" for t in topics]


@given(topics=topics)
def test_research_runs_in_parallel(topics: list[str]) -> None:
    # Every research task sleeps 2 s: in parallel, the run takes 2 s, not 2 s per topic.
    assert run_graph(graph, {"topics": topics}).duration == 2.0
