"""The ``Checkpointer`` protocol, on ``MemoryCheckpointer`` (the reference) and on
``SqliteCheckpointer`` where the behaviour is shared, plus one state machine
that drives both with the same operations against a model.
"""

from __future__ import annotations

import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing
from hypothesis import settings, strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    invariant,
    rule,
)

from trigraph import MemoryCheckpointer, SqliteCheckpointer, ThreadBusyError
from trigraph.abc import Checkpointer, CheckpointRecord


def rec(
    id: str,
    parent: str | None = None,
    *,
    thread: str = "t",
    ns: str = "",
    step: int = 0,
    snapshot: bytes | None = None,
    pending: bytes | None = None,
    body: bytes = b'{"delta":{}}',
) -> CheckpointRecord:
    return CheckpointRecord(
        thread=thread, ns=ns, id=id, parent_id=parent, step=step, created_at=1234.5,
        body=body, snapshot=snapshot, pending=pending,
    )


async def test_both_implement_the_protocol(tmp_path: Path) -> None:
    assert isinstance(MemoryCheckpointer(), Checkpointer)
    sqlite = SqliteCheckpointer(tmp_path / "x.db")
    assert isinstance(sqlite, Checkpointer)
    await sqlite.aclose()


async def test_records_round_trip_exactly(cp: Checkpointer) -> None:
    r = rec("a", body=b"\x00\xff binary", snapshot=b"{}", pending=b"\x01")
    await cp.put(r)
    assert await cp.get("t", "", "a") == r
    assert await cp.get("t", "") == r


async def test_get_latest_by_id_and_missing(cp: Checkpointer) -> None:
    assert await cp.get("t", "") is None
    r0, r1 = rec("r0", snapshot=b"{}"), rec("r1", "r0", step=1)
    await cp.put(r0)
    await cp.put(r1)
    assert await cp.get("t", "") == r1
    assert await cp.get("t", "", "r0") == r0
    assert await cp.get("t", "", "nope") is None
    assert await cp.get("other", "") is None


async def test_chain_stops_at_a_snapshot_or_the_root(cp: Checkpointer) -> None:
    r0 = rec("r0", snapshot=b"{}")
    r1 = rec("r1", "r0", step=1)
    r2 = rec("r2", "r1", step=2, snapshot=b"{}")
    r3 = rec("r3", "r2", step=3)
    r4 = rec("r4", "r3", step=4)
    for r in (r0, r1, r2, r3, r4):
        await cp.put(r)
    assert await cp.chain("t", "", "r4") == [r4, r3, r2]
    assert await cp.chain("t", "", "r2") == [r2]
    assert await cp.chain("t", "", "r1") == [r1, r0]
    assert await cp.chain("t", "", "nope") == []
    lone = rec("lone", thread="u")
    await cp.put(lone)
    assert await cp.chain("u", "", "lone") == [lone]


async def test_history_is_newest_first_with_forks(cp: Checkpointer) -> None:
    r0, r1, r2 = rec("r0", snapshot=b"{}"), rec("r1", "r0", step=1), rec("r2", "r1", step=2)
    fork = rec("f1", "r1", step=1, snapshot=b"{}")
    for r in (r0, r1, r2, fork):
        await cp.put(r)
    assert await cp.history("t", "") == [fork, r2, r1, r0]
    assert await cp.get("t", "") == fork
    assert await cp.history("nope", "") == []


async def test_namespaces_are_kept_apart(cp: Checkpointer) -> None:
    top = rec("top", snapshot=b"{}")
    sub = rec("sub1", ns="sub:1.0", snapshot=b"{}")
    only_sub = rec("x", thread="u", ns="sub:1.0", snapshot=b"{}")
    for r in (top, sub, only_sub):
        await cp.put(r)
    assert await cp.get("t", "") == top
    assert await cp.get("t", "sub:1.0") == sub
    assert await cp.history("t", "") == [top]
    assert await cp.history("t", "sub:1.0") == [sub]
    assert await cp.get("t", "", "sub1") is None
    assert await cp.threads() == ["t"]


async def test_threads_most_recently_written_first(cp: Checkpointer) -> None:
    await cp.put(rec("a0", thread="a", snapshot=b"{}"))
    await cp.put(rec("b0", thread="b", snapshot=b"{}"))
    await cp.put(rec("c0", thread="c", snapshot=b"{}"))
    assert await cp.threads() == ["c", "b", "a"]
    await cp.put(rec("a1", "a0", thread="a", step=1))
    assert await cp.threads() == ["a", "c", "b"]


async def test_put_pending_replaces_only_the_pending_field(cp: Checkpointer) -> None:
    r0, r1 = rec("r0", snapshot=b"{}"), rec("r1", "r0", step=1)
    await cp.put(r0)
    await cp.put(r1)
    await cp.put_pending("t", "", "r0", b"pending")
    got = await cp.get("t", "", "r0")
    assert got == CheckpointRecord(
        thread="t", ns="", id="r0", parent_id=None, step=0, created_at=1234.5,
        body=r0.body, snapshot=b"{}", pending=b"pending",
    )
    # Replacing pending writes does not make a record the latest.
    assert await cp.get("t", "") == r1
    assert await cp.history("t", "") == [r1, got]
    await cp.put_pending("t", "", "r0", None)
    assert await cp.get("t", "", "r0") == r0


Call = Callable[[Checkpointer], Awaitable[Any]]

CALLS: list[tuple[str, Call]] = [
    ("put", lambda c: c.put(rec("n", "r0", step=1))),
    ("put_pending", lambda c: c.put_pending("t", "", "r0", b"x")),
    ("get", lambda c: c.get("t", "")),
    ("get_id", lambda c: c.get("t", "", "r0")),
    ("get_missing", lambda c: c.get("nope", "")),
    ("chain", lambda c: c.chain("t", "", "r0")),
    ("history", lambda c: c.history("t", "")),
    ("threads", lambda c: c.threads()),
    ("aclose", lambda c: c.aclose()),
]


@pytest.mark.parametrize(("name", "call"), CALLS, ids=[name for name, _ in CALLS])
async def test_every_method_is_a_checkpoint(cp: Checkpointer, name: str, call: Call) -> None:
    await cp.put(rec("r0", snapshot=b"{}"))
    with trio.testing.assert_checkpoints():
        await call(cp)


async def test_memory_aclose_forgets_everything() -> None:
    cp = MemoryCheckpointer()
    await cp.put(rec("r0", snapshot=b"{}"))
    await cp.aclose()
    assert await cp.history("t", "") == []
    assert await cp.threads() == []


# -- both stores agree with a model ------------------------------------------------

THREADS = st.sampled_from(["t1", "t2"])
NAMESPACES = st.sampled_from(["", "sub:1.0"])
BLOBS = st.binary(max_size=6)


class CheckpointerAgreement(RuleBasedStateMachine):
    """Memory and SQLite, driven with the same operations, agree with a model."""

    records = Bundle("records")

    def __init__(self) -> None:
        super().__init__()
        self.tmp = tempfile.TemporaryDirectory()
        self.memory = MemoryCheckpointer()
        self.sqlite = SqliteCheckpointer(Path(self.tmp.name) / "m.db")
        self.model: list[CheckpointRecord] = []
        self.count = 0

    def both(self, fn: Callable[[Checkpointer], Awaitable[Any]]) -> tuple[Any, Any]:
        async def go() -> tuple[Any, Any]:
            return await fn(self.memory), await fn(self.sqlite)

        return trio.run(go)

    @rule(
        target=records, thread=THREADS, ns=NAMESPACES, body=BLOBS,
        snapshot=st.none() | BLOBS, data=st.data(),
    )
    def put(
        self, thread: str, ns: str, body: bytes, snapshot: bytes | None, data: st.DataObject
    ) -> CheckpointRecord:
        same = [r for r in self.model if (r.thread, r.ns) == (thread, ns)]
        parent = data.draw(st.none() | st.sampled_from(same)) if same else None
        self.count += 1
        r = rec(
            f"c{self.count}", None if parent is None else parent.id, thread=thread, ns=ns,
            step=0 if parent is None else parent.step + 1, body=body, snapshot=snapshot,
        )
        self.both(lambda c: c.put(r))
        self.model.append(r)
        return r

    @rule(target_record=records, pending=st.none() | BLOBS)
    def put_pending(self, target_record: CheckpointRecord, pending: bytes | None) -> None:
        r = next(m for m in self.model if m.id == target_record.id)
        self.both(lambda c: c.put_pending(r.thread, r.ns, r.id, pending))
        i = self.model.index(r)
        self.model[i] = CheckpointRecord(
            thread=r.thread, ns=r.ns, id=r.id, parent_id=r.parent_id, step=r.step,
            created_at=r.created_at, body=r.body, snapshot=r.snapshot, pending=pending,
        )

    def model_chain(self, r: CheckpointRecord) -> list[CheckpointRecord]:
        by_id = {m.id: m for m in self.model if (m.thread, m.ns) == (r.thread, r.ns)}
        out = [r]
        while r.snapshot is None and r.parent_id is not None:
            r = by_id[r.parent_id]
            out.append(r)
        return out

    @invariant()
    def agree(self) -> None:
        model = self.model

        async def check(c: Checkpointer) -> None:
            for thread in ("t1", "t2", "t3"):
                for ns in ("", "sub:1.0"):
                    mine = [r for r in model if (r.thread, r.ns) == (thread, ns)]
                    assert await c.history(thread, ns) == mine[::-1]
                    assert await c.get(thread, ns) == (mine[-1] if mine else None)
            for r in model:
                assert await c.get(r.thread, r.ns, r.id) == r
                assert await c.chain(r.thread, r.ns, r.id) == self.model_chain(r)
            latest: dict[str, int] = {}
            for i, r in enumerate(model):
                if r.ns == "":
                    latest[r.thread] = i
            assert await c.threads() == sorted(latest, key=latest.__getitem__, reverse=True)

        self.both(check)

    def teardown(self) -> None:
        trio.run(self.sqlite.aclose)
        self.tmp.cleanup()


CheckpointerAgreement.TestCase.settings = settings(stateful_step_count=10)
CheckpointerAgreement.TestCase.pytestmark = [pytest.mark.slow]  # type: ignore[attr-defined]
test_checkpointers_agree_with_a_model = CheckpointerAgreement.TestCase


# -- one run per thread, deleting and pruning --------------------------------


async def test_a_thread_has_one_claim_at_a_time(cp: Checkpointer) -> None:
    lock = await cp.lock_thread("t")
    assert lock.thread == "t"
    with pytest.raises(ThreadBusyError, match="thread 't' has a run in progress") as info:
        await cp.lock_thread("t")
    assert info.value.thread == "t"
    assert not info.value.lost
    other = await cp.lock_thread("u")  # other threads are free
    await cp.renew_lock(lock)
    await cp.unlock_thread(lock)
    await cp.unlock_thread(lock)  # releasing twice does nothing
    again = await cp.lock_thread("t")
    assert again.token != lock.token
    await cp.unlock_thread(again)
    await cp.unlock_thread(other)


async def test_fenced_writes_are_refused_once_the_claim_is_gone(cp: Checkpointer) -> None:
    lock = await cp.lock_thread("t")
    await cp.put(rec("a"), lock=lock)
    await cp.put_pending("t", "", "a", b"p", lock=lock)
    await cp.unlock_thread(lock)
    with pytest.raises(ThreadBusyError, match="lost its claim") as info:
        await cp.put(rec("b", "a"), lock=lock)
    assert info.value.lost
    with pytest.raises(ThreadBusyError, match="lost its claim"):
        await cp.put_pending("t", "", "a", b"q", lock=lock)
    with pytest.raises(ThreadBusyError, match="lost its claim"):
        await cp.renew_lock(lock)
    assert [r.id for r in await cp.history("t", "")] == ["a"]
    assert (await cp.get("t", "", "a")).pending == b"p"  # type: ignore[union-attr]
    # A new claim's writes go through; the old one's still do not.
    new = await cp.lock_thread("t")
    with pytest.raises(ThreadBusyError):
        await cp.put(rec("b", "a"), lock=lock)
    await cp.put(rec("b", "a"), lock=new)
    await cp.unlock_thread(new)


async def test_delete_thread_removes_every_namespace(cp: Checkpointer) -> None:
    await cp.put(rec("a"))
    await cp.put(rec("s", ns="sub:1.0"))
    await cp.put(rec("x", thread="keep"))
    await cp.delete_thread("t")
    assert await cp.get("t", "") is None
    assert await cp.get("t", "sub:1.0") is None
    assert await cp.threads() == ["keep"]
    await cp.delete_thread("nothing-here")  # not an error


async def test_delete_thread_refuses_a_thread_a_run_holds(cp: Checkpointer) -> None:
    await cp.put(rec("a"))
    lock = await cp.lock_thread("t")
    with pytest.raises(ThreadBusyError):
        await cp.delete_thread("t")
    assert await cp.get("t", "") is not None
    await cp.unlock_thread(lock)
    await cp.delete_thread("t")
    assert await cp.get("t", "") is None


async def test_prune_keeps_the_latest_and_what_they_need(cp: Checkpointer) -> None:
    # a(snap) <- b <- c <- d(snap) <- e, and a fork f from b; sub namespace too.
    for r in (rec("a", snapshot=b"{}"), rec("b", "a"), rec("c", "b"),
              rec("d", "c", snapshot=b"{}"), rec("e", "d"), rec("f", "b")):
        await cp.put(r)
    for r in (rec("s1", ns="n", snapshot=b"{}"), rec("s2", "s1", ns="n"), rec("s3", "s2", ns="n")):
        await cp.put(r)
    latest = await cp.chain("t", "", "f")
    assert await cp.prune("t", keep=2) == 1  # keeps e, f and what they need: d, b, a; drops c
    assert [r.id for r in await cp.history("t", "")] == ["f", "e", "d", "b", "a"]
    assert await cp.chain("t", "", "f") == latest
    assert await cp.get("t", "") == rec("f", "b")
    assert [r.id for r in await cp.history("t", "n")] == ["s3", "s2", "s1"]
    assert await cp.prune("t", keep=1) == 2  # f needs b and a; e and d go
    assert [r.id for r in await cp.history("t", "")] == ["f", "b", "a"]
    assert await cp.prune("t", keep=1) == 0
    with pytest.raises(ValueError, match="keep"):
        await cp.prune("t", keep=0)
