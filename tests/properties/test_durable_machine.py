"""Durable threads under random sequences of operations, against simple models.

``DurableThreads`` drives one small graph on two threads with ``ainvoke``
(new input), ``ainvoke(None)`` (continue), ``Command(resume=...)``,
``update_state`` (with or without ``as_node``) and forks from any checkpoint
of the history (``ainvoke(None | Command, thread, checkpoint_id=...)``), in
random order, and checks every result, ``get_state`` and the whole
``get_state_history`` against a model: a list of checkpoints per thread. It
runs on ``MemoryCheckpointer`` and on ``SqliteCheckpointer``.

``CheckpointerAgreement`` drives ``MemoryCheckpointer`` and
``SqliteCheckpointer`` with the same raw protocol operations (``put``,
``put_pending``, ``get``, ``chain``, ``history``, ``threads``) and checks
both against a dict model (STYLE.md section 8).

Each rule is one ``trio.run`` under ``MockClock``; the stores live across runs.
"""

from __future__ import annotations

import operator
import shutil
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypedDict, TypeVar

import attrs
import pytest
import trio
import trio.testing
from hypothesis import note, strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
)

from trigraph import (
    END,
    START,
    Command,
    CompiledGraph,
    EmptyInputError,
    MemoryCheckpointer,
    SqliteCheckpointer,
    StateGraph,
    interrupt,
)
from trigraph.abc import Checkpointer, CheckpointRecord

T = TypeVar("T")


def run_trio(fn: Callable[..., Awaitable[T]], *args: Any) -> T:
    return trio.run(fn, *args, clock=trio.testing.MockClock(autojump_threshold=0))


def open_store(kind: str, folder: Path) -> Checkpointer:
    if kind == "memory":
        return MemoryCheckpointer()
    return SqliteCheckpointer(folder / "threads.db")


# -- the graph: a -> b (asks for approval with interrupt()) -> c (interrupt_before)


class State(TypedDict, total=False):
    log: Annotated[list[str], operator.add]
    n: int


async def a(state: State) -> dict[str, Any]:
    await trio.sleep(1)
    return {"log": ["a"], "n": state.get("n", 0) + 1}


async def b(state: State) -> dict[str, Any]:
    answer = interrupt(f"approve n={state.get('n', 0)}?")
    return {"log": [f"b:{answer}"]}


def c(state: State) -> dict[str, Any]:
    return {"log": ["c"]}


def build(checkpointer: Checkpointer) -> CompiledGraph:
    g = StateGraph(State)
    g.add_node(a).add_node(b).add_node(c)
    g.add_edge(START, "a").add_edge("a", "b").add_edge("b", "c").add_edge("c", END)
    return g.compile(checkpointer=checkpointer, interrupt_before=["c"])


NEXT = {START: ("a",), "a": ("b",), "b": ("c",), "c": ()}


@attrs.frozen
class Checkpoint:
    """The model of one checkpoint: what ``get_state_history`` must show, and
    whether the run paused on it before ``c`` (``interrupt_before``; not shown,
    but continuing from there runs ``c`` instead of pausing again)."""

    values: dict[str, Any]
    next: tuple[str, ...]
    step: int
    interrupt: str | None = None  # the pending interrupt's value
    paused_before: bool = attrs.field(default=False, eq=False)

    @property
    def started(self) -> bool:
        """The next step already began: continuing does not pause before it."""
        return self.paused_before or self.interrupt is not None


def _apply(values: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    out = dict(values)
    for key, value in update.items():
        out[key] = out.get(key, []) + value if key == "log" else value
    return out


THREADS = st.sampled_from(["t0", "t1"])
UPDATES = st.fixed_dictionaries(
    {}, optional={"log": st.lists(st.sampled_from("xyz"), max_size=2), "n": st.integers(0, 5)}
)


class DurableThreads(RuleBasedStateMachine):
    store_kind = "memory"

    def __init__(self) -> None:
        super().__init__()
        self.folder = Path(tempfile.mkdtemp(prefix="trigraph-machine-"))
        self.cp = open_store(self.store_kind, self.folder)
        self.graph = build(self.cp)
        self.model: dict[str, list[Checkpoint]] = {}
        self.last_put: dict[str, int] = {}
        self.puts = 0

    def teardown(self) -> None:
        run_trio(self.cp.aclose)
        shutil.rmtree(self.folder, ignore_errors=True)

    async def invoke_on(
        self, given_input: Any, thread: str, checkpoint_id: str | None = None
    ) -> dict[str, Any]:
        return await self.graph.ainvoke(given_input, thread=thread, checkpoint_id=checkpoint_id)

    # -- the model ----------------------------------------------------------

    def head(self, thread: str) -> Checkpoint | None:
        history = self.model.get(thread)
        return history[-1] if history else None

    def put(self, thread: str, checkpoint: Checkpoint) -> None:
        self.model.setdefault(thread, []).append(checkpoint)
        self.puts += 1
        self.last_put[thread] = self.puts

    def mark_head(self, thread: str, **changes: Any) -> None:
        history = self.model[thread]
        history[-1] = attrs.evolve(history[-1], **changes)

    def continue_from(
        self, thread: str, start: Checkpoint, resume: str | None = None, started: bool = False
    ) -> None:
        """The model of running the graph on from *start* (the thread's head)."""
        values, nxt, step = start.values, start.next, start.step
        while nxt:
            node = nxt[0]
            if node == "c" and not started:
                # interrupt_before=["c"]; the pause replaces what was pending there
                self.mark_head(thread, paused_before=True, interrupt=None)
                return
            started = False
            if node == "a":
                values = _apply(values, {"log": ["a"], "n": values.get("n", 0) + 1})
            elif node == "b":
                if resume is None:
                    question = f"approve n={values.get('n', 0)}?"
                    self.mark_head(thread, interrupt=question, paused_before=False)
                    return
                values = _apply(values, {"log": [f"b:{resume}"]})
                resume = None
            else:
                values = _apply(values, {"log": ["c"]})
            step += 1
            nxt = NEXT[node]
            self.put(thread, Checkpoint(values, nxt, step))

    def expected_result(self, thread: str) -> dict[str, Any]:
        head = self.head(thread)
        assert head is not None
        return head.values

    def check_result(self, thread: str, result: dict[str, Any]) -> None:
        head = self.head(thread)
        assert head is not None
        interrupts = result.pop("__interrupt__", ())
        assert result == head.values
        assert [i.value for i in interrupts] == ([head.interrupt] if head.interrupt else [])

    # -- rules ----------------------------------------------------------------

    @rule(thread=THREADS, update=UPDATES)
    def invoke(self, thread: str, update: dict[str, Any]) -> None:
        result = run_trio(self.invoke_on, update, thread)
        head = self.head(thread)
        values = head.values if head is not None else {"log": []}
        start = Checkpoint(_apply(values, update), ("a",), head.step + 1 if head else 0)
        self.put(thread, start)
        self.continue_from(thread, start)
        self.check_result(thread, result)

    @rule(thread=THREADS)
    def continue_thread(self, thread: str) -> None:
        head = self.head(thread)
        if head is None:
            with pytest.raises(EmptyInputError):
                run_trio(self.invoke_on, None, thread)
            return
        result = run_trio(self.invoke_on, None, thread)
        self.continue_from(thread, head, started=head.started)
        self.check_result(thread, result)

    @rule(thread=THREADS, answer=st.sampled_from(["yes", "no"]))
    def resume(self, thread: str, answer: str) -> None:
        head = self.head(thread)
        if head is None or head.interrupt is None:
            with pytest.raises(EmptyInputError):
                run_trio(self.invoke_on, Command(resume=answer), thread)
            return
        result = run_trio(self.invoke_on, Command(resume=answer), thread)
        self.continue_from(thread, head, resume=answer, started=True)
        self.check_result(thread, result)

    @rule(thread=THREADS, update=UPDATES, as_node=st.sampled_from([None, START, "a", "b", "c"]))
    def update_state(self, thread: str, update: dict[str, Any], as_node: str | None) -> None:
        run_trio(self.graph.update_state, thread, update, as_node)
        head = self.head(thread)
        values = head.values if head is not None else {"log": []}
        step = (head.step if head is not None else 0) + (0 if as_node is None or not head else 1)
        if as_node is None and head is not None:
            # The edit keeps the next tasks, and what is pending for them.
            edited = attrs.evolve(head, values=_apply(values, update), step=step)
        else:
            # An edit made during a pause before a node keeps that pause: continuing
            # runs the next step instead of pausing again.
            nxt = NEXT[as_node] if as_node is not None else ()
            paused = head is not None and head.paused_before
            edited = Checkpoint(_apply(values, update), nxt, step, paused_before=paused)
        self.put(thread, edited)

    @rule(data=st.data(), answer=st.sampled_from([None, "yes"]))
    def fork(self, data: st.DataObject, answer: str | None) -> None:
        if not self.model:
            return
        thread = data.draw(st.sampled_from(sorted(self.model)), label="thread")
        history = self.model[thread]
        # Answering needs a pending interrupt at the checkpoint (the invalid call
        # has its own test: test_issue_failed_fork_resume_leaves_the_thread_unchanged).
        candidates = [i for i, cp in enumerate(history) if answer is None or cp.interrupt]
        if not candidates:
            answer, candidates = None, list(range(len(history)))
        index = data.draw(st.sampled_from(candidates), label="checkpoint index")
        origin = history[index]
        snapshots = run_trio(self.graph.get_state_history, thread)
        checkpoint_id = snapshots[len(history) - 1 - index].checkpoint_id
        note(f"fork {thread} from checkpoint #{index} ({origin}) answering {answer!r}")
        given_input = None if answer is None else Command(resume=answer)
        result = run_trio(self.invoke_on, given_input, thread, checkpoint_id)
        # The fork starts from a copy; answering keeps the interrupt it answers
        # listed there (so the copy can be forked and answered again).
        copy = Checkpoint(origin.values, origin.next, origin.step, answer and origin.interrupt)
        self.put(thread, copy)
        self.continue_from(thread, copy, resume=answer, started=answer is not None)
        self.check_result(thread, result)

    # -- invariants -------------------------------------------------------------

    @invariant()
    def history_matches_the_model(self) -> None:
        async def read() -> dict[str, list[Any]]:
            return {t: await self.graph.get_state_history(t) for t in ("t0", "t1")}

        histories = run_trio(read)
        for thread in ("t0", "t1"):
            got = [
                Checkpoint(
                    s.values, s.next, s.step, s.interrupts[0].value if s.interrupts else None
                )
                for s in histories[thread]
            ]
            assert got == list(reversed(self.model.get(thread, [])))

    @invariant()
    def threads_are_listed_most_recent_first(self) -> None:
        want = sorted(self.last_put, key=self.last_put.__getitem__, reverse=True)
        assert run_trio(self.cp.threads) == want


class DurableThreadsOnSqlite(DurableThreads):
    store_kind = "sqlite"


TestDurableThreadsInMemory = DurableThreads.TestCase
TestDurableThreadsOnSqlite = DurableThreadsOnSqlite.TestCase


def test_issue_failed_fork_resume_leaves_the_thread_unchanged() -> None:
    """``ainvoke(Command(resume=...), thread, checkpoint_id=c)`` where *c* has no
    pending interrupt raises ``EmptyInputError``; a call that fails like that
    must not change the thread (its history and its current state)."""

    async def main() -> None:
        graph = build(MemoryCheckpointer())
        await graph.ainvoke({"log": ["x"]}, thread="t")
        before = await graph.get_state_history("t")
        first = before[-1]  # the input checkpoint: next is "a", nothing pending
        with pytest.raises(EmptyInputError):
            await graph.ainvoke(
                Command(resume="yes"), thread="t", checkpoint_id=first.checkpoint_id
            )
        after = await graph.get_state_history("t")
        assert [s.checkpoint_id for s in after] == [s.checkpoint_id for s in before]
        assert (await graph.get_state("t")).values == before[0].values

    run_trio(main)


# -- raw protocol agreement: MemoryCheckpointer vs SqliteCheckpointer ------------

NAMES = st.text(st.characters(codec="utf-8"), max_size=3)
BLOBS = st.binary(max_size=8)


class CheckpointerAgreement(RuleBasedStateMachine):
    """Both stores, fed the same operations, agree with a dict model."""

    records = Bundle("records")

    def __init__(self) -> None:
        super().__init__()
        self.folder = Path(tempfile.mkdtemp(prefix="trigraph-agreement-"))
        self.stores: list[Checkpointer] = [
            MemoryCheckpointer(),
            SqliteCheckpointer(self.folder / "agreement.db"),
        ]
        self.model: dict[tuple[str, str], dict[str, CheckpointRecord]] = {}
        self.thread_order: list[str] = []  # most recently written last

    def teardown(self) -> None:
        for store in self.stores:
            run_trio(store.aclose)
        shutil.rmtree(self.folder, ignore_errors=True)

    def each(self, op: Callable[[Checkpointer], Awaitable[T]]) -> list[T]:
        async def main() -> list[T]:
            return [await op(store) for store in self.stores]

        return run_trio(main)

    @initialize()
    def open_stores(self) -> None:
        self.each(lambda store: store.threads())

    @rule(
        target=records,
        data=st.data(),
        thread=st.sampled_from(["t", "u"]) | NAMES,
        ns=st.sampled_from(["", "sub:1.0"]) | NAMES,
        checkpoint_id=NAMES,
        step=st.integers(0, 2**31),
        created_at=st.floats(allow_nan=False, allow_infinity=False),
        body=BLOBS,
        snapshot=st.none() | BLOBS,
        pending=st.none() | BLOBS,
    )
    def put(
        self,
        data: st.DataObject,
        thread: str,
        ns: str,
        checkpoint_id: str,
        step: int,
        created_at: float,
        body: bytes,
        snapshot: bytes | None,
        pending: bytes | None,
    ) -> tuple[str, str, str]:
        existing = self.model.setdefault((thread, ns), {})
        while checkpoint_id in existing:  # a store never gets the same id twice
            checkpoint_id += "'"
        parents = [None, *existing]
        parent = data.draw(st.sampled_from(parents), label="parent_id")
        record = CheckpointRecord(
            thread, ns, checkpoint_id, parent, step, created_at, body, snapshot, pending
        )
        self.each(lambda store: store.put(record))
        existing[checkpoint_id] = record
        if ns == "":
            if thread in self.thread_order:
                self.thread_order.remove(thread)
            self.thread_order.append(thread)
        return (thread, ns, checkpoint_id)

    @rule(key=records, pending=st.none() | BLOBS)
    def put_pending(self, key: tuple[str, str, str], pending: bytes | None) -> None:
        thread, ns, checkpoint_id = key
        self.each(lambda store: store.put_pending(thread, ns, checkpoint_id, pending))
        stored = self.model[(thread, ns)]
        stored[checkpoint_id] = attrs.evolve(stored[checkpoint_id], pending=pending)

    @rule(key=records)
    def get(self, key: tuple[str, str, str]) -> None:
        thread, ns, checkpoint_id = key
        want = self.model[(thread, ns)][checkpoint_id]
        assert self.each(lambda store: store.get(thread, ns, checkpoint_id)) == [want, want]

    @rule(key=records)
    def get_latest(self, key: tuple[str, str, str]) -> None:
        thread, ns, _ = key
        want = list(self.model[(thread, ns)].values())[-1]
        assert self.each(lambda store: store.get(thread, ns)) == [want, want]

    @rule(thread=NAMES, ns=NAMES, checkpoint_id=st.none() | NAMES)
    def get_any(self, thread: str, ns: str, checkpoint_id: str | None) -> None:
        stored = self.model.get((thread, ns), {})
        if checkpoint_id is None:
            want = list(stored.values())[-1] if stored else None
        else:
            want = stored.get(checkpoint_id)
        assert self.each(lambda store: store.get(thread, ns, checkpoint_id)) == [want, want]

    @rule(key=records)
    def chain(self, key: tuple[str, str, str]) -> None:
        thread, ns, checkpoint_id = key
        stored = self.model[(thread, ns)]
        want = []
        current: CheckpointRecord | None = stored[checkpoint_id]
        while current is not None:
            want.append(current)
            if current.snapshot is not None or current.parent_id is None:
                break
            current = stored.get(current.parent_id)
        assert self.each(lambda store: store.chain(thread, ns, checkpoint_id)) == [want, want]

    @rule(key=records)
    def history(self, key: tuple[str, str, str]) -> None:
        thread, ns, _ = key
        want = list(reversed(self.model[(thread, ns)].values()))
        assert self.each(lambda store: store.history(thread, ns)) == [want, want]

    @rule()
    def threads(self) -> None:
        want = list(reversed(self.thread_order))
        assert self.each(lambda store: store.threads()) == [want, want]


TestCheckpointerAgreement = CheckpointerAgreement.TestCase
