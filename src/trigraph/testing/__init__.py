"""Property-based testing for trigraph graphs: Hypothesis strategies and a
``MockClock`` runner.

Install with the ``testing`` extra (``pip install trigraph[testing]``); this
module imports Hypothesis, and ``import trigraph`` never imports it.

- :func:`run_graph` runs a compiled graph under
  ``trio.testing.MockClock(autojump_threshold=0)`` and returns a
  :class:`RunResult`: the events, the final state, the virtual duration.
  Sleeps cost no real time, so a test can run a graph hundreds of times.
- :func:`delays` draws :class:`Delays`, virtual sleeps for each node's tasks
  and for the stream's consumer. Whatever the delays, a graph's final state
  and its ``Values`` events must not change: that is trigraph's schedule
  independence, and your graph keeps it as long as its nodes depend only on
  what they read.
- :func:`graphs` draws random valid graphs as :class:`GraphSpec` values:
  plain data that Hypothesis shrinks to a readable minimal example, from
  which ``spec.compile()`` builds the real graph. trigraph's own property
  tests compare them against a reference interpreter.

Testing an invariant of your own graph: draw delays for its nodes, run it,
and assert what must hold under every schedule.

>>> import operator
>>> from typing import Annotated, TypedDict
>>> from hypothesis import given, settings
>>> from trigraph import END, START, Send, StateGraph
>>> from trigraph.testing import delays, run_graph
>>> class State(TypedDict):
...     docs: list[str]
...     summaries: Annotated[list[str], operator.add]
>>> async def summarise(doc: str) -> dict:
...     return {"summaries": [doc.upper()]}
>>> def fan_out(state: State) -> list[Send]:
...     return [Send("summarise", doc) for doc in state["docs"]]
>>> builder = StateGraph(State)
>>> _ = builder.add_node(summarise).add_edge("summarise", END)
>>> _ = builder.add_conditional_edges(START, fan_out, ["summarise"])
>>> graph = builder.compile()
>>> @settings(max_examples=20, deadline=None)
... @given(schedule=delays(graph))
... def test_summaries_keep_document_order(schedule):
...     result = run_graph(graph, {"docs": ["a", "b", "c"]}, delays=schedule)
...     assert result.final_state["summaries"] == ["A", "B", "C"]
>>> test_summaries_keep_document_order()

The repository's ``examples/property_test_my_graph.py`` is the same idea as
a pytest file.

Hypothesis profiles. trigraph's test suite registers two profiles in
``tests/conftest.py`` and picks one with the environment variable
``HYPOTHESIS_PROFILE``. ``ci`` (the default) is derandomized, so every run
tries the same examples, and keeps each property to 25 examples: the whole
property suite (``tests/properties``) takes about half a minute on two
cores. ``thorough`` runs 500 new random examples per property and state
machine on every run, about twelve minutes for the property suite on two
cores: run it after changing the superstep loop, the merge, streaming or
durability, ``HYPOTHESIS_PROFILE=thorough pytest tests/properties``, and
keep any failure it finds as an explicit ``@example`` or regression test. In
your own project, register profiles the same way with
``hypothesis.settings.register_profile`` and ``settings.load_profile``.

.. versionadded:: 0.1
"""

from .._util import fixup_module_metadata as _fixup
from ._harness import (
    Delays as Delays,
    RunResult as RunResult,
    arun_graph as arun_graph,
    run_graph as run_graph,
    with_delays as with_delays,
)
from ._spec import (
    Chunk as Chunk,
    GraphSpec as GraphSpec,
    JoinSpec as JoinSpec,
    KeySpec as KeySpec,
    LoopSpec as LoopSpec,
    NodeSpec as NodeSpec,
    RouterSpec as RouterSpec,
    SendSpec as SendSpec,
    WriteSpec as WriteSpec,
    digest as digest,
    set_union as set_union,
)
from ._strategies import delays as delays, graphs as graphs

_fixup(__name__, globals())
del _fixup
