"""One run per thread, under every schedule: any mix of concurrent runs (and
``update_state`` edits) on a few threads never loses a write and never
interleaves two writers' checkpoints on one thread. A writer that finds its
thread busy fails with ``ThreadBusyError`` and writes nothing.

Runs are started at random virtual times with random node delays under
``MockClock``, on ``MemoryCheckpointer`` and ``SqliteCheckpointer``.
"""

from __future__ import annotations

import operator
import shutil
import tempfile
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest
import trio
import trio.testing
from hypothesis import given, note, strategies as st

from trigraph import (
    END,
    START,
    MemoryCheckpointer,
    SqliteCheckpointer,
    StateGraph,
    ThreadBusyError,
)
from trigraph.abc import Checkpointer

THREADS = ("t0", "t1", "t2")
NODES = ("n0", "n1", "n2")


class S(TypedDict):
    log: Annotated[list[str], operator.add]
    pause: dict[str, float]


def build(cp: Checkpointer) -> Any:
    g = StateGraph(S)
    prev = START
    for name in NODES:
        async def node(state: S, name: str = name) -> dict[str, Any]:
            # The run's tag is the first entry it wrote: the input's.
            tag = state["log"][-1].split(":")[0] if state["log"] else "?"
            await trio.sleep(state["pause"].get(f"{tag}:{name}", 0))
            return {"log": [f"{tag}:{name}"]}

        g.add_node(name, node).add_edge(prev, name)
        prev = name
    g.add_edge(prev, END)
    return g.compile(checkpointer=cp)


writers = st.lists(
    st.tuples(
        st.sampled_from(THREADS),
        st.sampled_from(["run", "edit"]),
        st.floats(0, 3, allow_nan=False).map(lambda x: round(x, 1)),  # start time
        st.lists(st.sampled_from([0.0, 0.5, 1.0, 2.0]), min_size=3, max_size=3),  # node delays
    ),
    min_size=1,
    max_size=8,
)


async def _exercise(cp: Checkpointer, plan: list[tuple[str, str, float, list[float]]]) -> None:
    graph = build(cp)
    outcome: dict[str, str] = {}

    async def writer(i: int, thread: str, kind: str, at: float, delays: list[float]) -> None:
        tag = f"w{i}"
        await trio.sleep(at)
        pause = {f"{tag}:{n}": d for n, d in zip(NODES, delays, strict=True)}
        try:
            if kind == "run":
                # The tag goes last in the input, so nodes read it as the latest entry.
                await graph.ainvoke({"log": [f"{tag}:in"], "pause": pause}, thread=thread)
            else:
                await graph.update_state(thread, {"log": [f"{tag}:edit"]})
        except ThreadBusyError as exc:
            outcome[tag] = "busy" if exc.thread == thread else f"busy on {exc.thread}"
        else:
            outcome[tag] = "ok"

    async with trio.open_nursery() as nursery:
        for i, (thread, kind, at, delays) in enumerate(plan):
            nursery.start_soon(writer, i, thread, kind, at, delays)
    note(f"outcome: {outcome}")

    for thread in THREADS:
        mine = [(f"w{i}", kind) for i, (t, kind, _, _) in enumerate(plan) if t == thread]
        records = list(reversed(await cp.history(thread, "")))
        state = (await graph.get_state(thread)).values["log"] if records else []
        # No write lost: every writer that succeeded is in the state, whole and in
        # one piece; nothing of a refused writer is anywhere.
        expected: list[str] = []
        for tag, _ in mine:
            assert outcome[tag] in ("ok", "busy")
            if outcome[tag] == "busy":
                assert not any(e.startswith(f"{tag}:") for e in state)
        # Writers' entries form contiguous blocks, in the order the writers held the thread.
        blocks: list[str] = []
        for entry in state:
            tag = entry.split(":")[0]
            if not blocks or blocks[-1] != tag:
                assert tag not in blocks, f"{tag} interleaved with another writer: {state}"
                blocks.append(tag)
        for tag in blocks:
            kind = dict(mine)[tag]
            entries = ["in", *NODES] if kind == "run" else ["edit"]
            expected.extend(f"{tag}:{e}" for e in entries)
        assert state == expected
        assert sorted(blocks) == sorted(t for t, _ in mine if outcome[t] == "ok")
        # Checkpoints: each record was written by one writer, and the records of
        # one writer are consecutive in the thread's history.
        owners: list[str] = []
        for record in records:
            text = record.body.decode() + (record.snapshot or b"").decode()
            tags = {tag for tag, _ in mine if f'"{tag}:' in text}
            if record.snapshot is None:
                assert len(tags) <= 1, tags
            owner = max(tags, key=lambda t: text.rfind(f'"{t}:')) if tags else None
            if owner is not None and (not owners or owners[-1] != owner):
                assert owner not in owners, f"checkpoints of {owner} interleaved: {owners}"
                owners.append(owner)


@pytest.mark.slow
@pytest.mark.parametrize("store", ["memory", "sqlite"])
@given(plan=writers)
def test_concurrent_writers_on_threads_never_lose_or_interleave(
    store: str, plan: list[tuple[str, str, float, list[float]]]
) -> None:
    folder = Path(tempfile.mkdtemp())
    try:

        async def main() -> None:
            if store == "memory":
                await _exercise(MemoryCheckpointer(), plan)
            else:
                async with SqliteCheckpointer(folder / "threads.db") as cp:
                    await _exercise(cp, plan)

        trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    finally:
        shutil.rmtree(folder)
