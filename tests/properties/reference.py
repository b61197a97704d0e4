"""A reference interpreter for trigraph's superstep semantics.

Deliberately simple: sequential, no Trio, no concurrency, no batching, no
cleverness; one loop that follows DESIGN.md "Execution model" and
"Semantics in detail" line by line. It runs a ``GraphSpec`` (whose nodes and
routers are pure functions of what they read) and records what every run of
the real engine must produce: the state after each step (``Values``), the
multiset of ``Update`` events and streamed chunks of each step, the tasks
of each step, join firings, and whether (and where) two tasks of one step
write a key that has no reducer.

Rules implemented here, each from the contract:

- the input is step 0, applied through the reducers as if ``START`` wrote it;
  a reducer key starts from its type's empty value (``0`` or ``[]``);
- a step's tasks all read the state as it was before the step; their writes
  are applied after the step in task order; a key without a reducer takes
  one write per step, a second one is an ``InvalidUpdateError``;
- the next step's tasks: plain targets (static edges, completed joins,
  router results, ``Command(goto=...)`` names) once each, in the order the
  nodes were added to the graph; then ``Send`` targets in the order they
  were produced (task by task in task order; per task its routers in the
  order they were added, then its ``goto``);
- routers run after the step's writes are applied, once per task of their
  source node;
- a join remembers which of its sources have run, across steps, and fires
  once each time the set is complete, then starts over;
- a subgraph node runs its graph on the keys of its input that the subgraph
  has (a fresh run: its reducer keys start empty and take the input through
  their reducers) and contributes what the subgraph's nodes wrote, not its
  final state: every write to a reducer key, and the final value of each
  written key without one. Its ``Update`` carries the final values of the
  keys it wrote.
"""

from __future__ import annotations

import copy
import json
from collections import Counter
from typing import Any

import attrs

from trigraph import END, START, Send
from trigraph.testing import Chunk, GraphSpec

__all__ = ["Conflict", "Trace", "canonical_update", "run_reference"]

READS_STATE = object()
"""A task's argument when it reads the state (it was not started by a Send)."""


def canonical_update(node: str, update: Any) -> str:
    """One ``Update`` event as a hashable, order-free string."""
    return json.dumps([node, update], sort_keys=True)


@attrs.frozen
class Conflict:
    """Two or more tasks of *step* wrote a key without a reducer.

    *writers* maps each such key to the nodes that wrote it, in task order.
    """

    step: int
    writers: dict[str, list[str]]


@attrs.define
class Trace:
    """What a run of the spec does, step by step (step 0 is the input)."""

    values: list[dict[str, Any]] = attrs.Factory(list)
    writes: list[tuple[str, Any]] = attrs.Factory(list)  # every write, in order
    deepest: int = 0  # the most steps of this run or of any subgraph run in it
    sub_deepest: int = 0  # the most steps of any subgraph run in it
    tasks: list[list[tuple[str, Any]]] = attrs.Factory(list)
    updates: list[Counter[str]] = attrs.Factory(list)
    chunks: list[Counter[Chunk]] = attrs.Factory(list)
    join_fires: list[tuple[int, int]] = attrs.Factory(list)
    conflict: Conflict | None = None
    final: dict[str, Any] | None = None

    @property
    def steps(self) -> int:
        """The number of supersteps the run took (or reached, if it failed)."""
        return len(self.tasks)

    def updates_of(self, step: int) -> Counter[str]:
        return self.updates[step - 1]

    def chunks_of(self, step: int) -> Counter[Chunk]:
        return self.chunks[step - 1]


def _empty(kind: str) -> Any:
    return 0 if kind == "add" else []


def _merge(kind: str, old: Any, new: Any) -> Any:
    if kind in ("add", "concat"):
        return old + new
    if kind == "union":
        return sorted(set(old) | set(new))
    raise AssertionError(f"no reducer for {kind}")


def _run_subgraph(
    sub: GraphSpec, read: Any, kinds: dict[str, str]
) -> tuple[list[tuple[str, Any]], dict[str, Any], int]:
    """What a subgraph node contributes: (writes, its Update, the steps taken)."""
    own = {key.name for key in sub.keys}
    given = read if isinstance(read, dict) else {}
    trace = run_reference(attrs.evolve(sub, input={k: v for k, v in given.items() if k in own}))
    assert trace.conflict is None, "a subgraph wrote a key without a reducer twice in a step"
    assert trace.final is not None
    written = [(k, v) for k, v in trace.writes if k in kinds]
    final = {k: trace.final[k] for k, _ in written}
    writes = [(k, v) for k, v in written if kinds[k] != "plain"]
    writes += [(k, v) for k, v in final.items() if kinds[k] == "plain"]
    return writes, final, trace.deepest


def run_reference(spec: GraphSpec, max_steps: int = 10_000) -> Trace:
    """Run *spec* on ``spec.input`` and return its :class:`Trace`."""
    kinds = {key.name: key.reducer for key in spec.keys}
    order = [node.name for node in spec.nodes]
    trace = Trace()

    state: dict[str, Any] = {k: _empty(r) for k, r in kinds.items() if r != "plain"}
    for key, value in spec.input.items():
        state[key] = value if kinds[key] == "plain" else _merge(kinds[key], state[key], value)
    trace.values.append(copy.deepcopy(state))

    seen: list[set[str]] = [set() for _ in spec.joins]

    def plan(ran: list[tuple[str, list[str | Send]]], step: int) -> list[tuple[str, Any]]:
        plain: set[str] = set()
        sends: list[tuple[str, Any]] = []

        def add(target: str | Send) -> None:
            if isinstance(target, Send):
                sends.append((target.node, target.arg))
            elif target != END:
                plain.add(target)

        for node, goto in ran:
            for source, target in spec.edges:
                if source == node:
                    add(target)
            for j, join in enumerate(spec.joins):
                if node in join.sources:
                    seen[j].add(node)
                    if seen[j] == set(join.sources):
                        add(join.target)
                        trace.join_fires.append((step, j))
                        seen[j] = set()
            for router in spec.routers:
                if router.source == node:
                    for target in spec.route(router, copy.deepcopy(state)):
                        add(target)
            for target in goto:
                add(target)
        return [(name, READS_STATE) for name in order if name in plain] + sends

    plans = plan([(START, [])], 0)
    step = 0
    while plans and step < max_steps:
        step += 1
        trace.tasks.append(plans)
        updates: Counter[str] = Counter()
        chunks: Counter[Chunk] = Counter()
        ran: list[tuple[str, list[str | Send]]] = []
        written: list[tuple[str, str, Any]] = []  # (node, key, value) in task order
        for node, arg in plans:
            read = copy.deepcopy(state) if arg is READS_STATE else arg
            subgraph = spec.node(node).subgraph
            if subgraph is not None:
                sub_writes, update, depth = _run_subgraph(subgraph, read, kinds)
                trace.deepest = max(trace.deepest, depth)
                trace.sub_deepest = max(trace.sub_deepest, depth)
                updates[canonical_update(node, update)] += 1
                ran.append((node, []))
                written += [(node, key, value) for key, value in sub_writes]
                continue
            writes = spec.writes(node, read)
            updates[canonical_update(node, writes or None)] += 1
            chunks.update(spec.chunks(node, read))
            ran.append((node, spec.goto(node, read)))
            written += [(node, key, value) for key, value in writes.items()]
        trace.updates.append(updates)
        trace.chunks.append(chunks)

        writers: dict[str, list[str]] = {}
        for node, key, _ in written:
            writers.setdefault(key, []).append(node)
        conflicts = {
            key: nodes for key, nodes in writers.items()
            if kinds[key] == "plain" and len(nodes) > 1
        }
        if conflicts:
            trace.conflict = Conflict(step, conflicts)
            return trace

        trace.writes += [(key, value) for _, key, value in written]
        for _, key, value in written:
            if kinds[key] == "plain":
                state[key] = value
            else:
                state[key] = _merge(kinds[key], state[key], value)
        plans = plan(ran, step)
        trace.values.append(copy.deepcopy(state))

    if plans:
        raise AssertionError(f"the spec did not end within {max_steps} steps")
    trace.deepest = max(trace.deepest, trace.steps)
    trace.final = copy.deepcopy(state)
    return trace
