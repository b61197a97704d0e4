"""``SqliteCheckpointer``: the file it makes, the files it refuses, one
transaction per checkpoint, several runs and processes on one file, and
storage that grows with what was written rather than with steps x state.
"""

from __future__ import annotations

import functools
import operator
import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest
import trio

from trigraph import (
    END,
    START,
    CheckpointError,
    CompiledGraph,
    SqliteCheckpointer,
    StateGraph,
    ThreadBusyError,
)
from trigraph._checkpoint_sqlite import SCHEMA_VERSION
from trigraph.abc import Checkpointer, CheckpointRecord


def rec(
    id: str, parent: str | None = None, *, thread: str = "t", step: int = 0
) -> CheckpointRecord:
    return CheckpointRecord(
        thread=thread, ns="", id=id, parent_id=parent, step=step, created_at=1.0,
        body=b'{"delta":{}}', snapshot=b"{}" if parent is None else None,
    )


class Counter(TypedDict):
    n: int
    log: Annotated[list[str], operator.add]


def counter_graph(cp: Checkpointer, steps: int) -> CompiledGraph:
    async def inc(state: Counter) -> dict[str, Any]:
        return {"n": state["n"] + 1, "log": [f"s{state['n'] + 1}"]}

    def route(state: Counter) -> str:
        return END if state["n"] >= steps else "inc"

    g = StateGraph(Counter)
    g.add_node("inc", inc).add_edge(START, "inc").add_conditional_edges("inc", route)
    return g.compile(checkpointer=cp)


def counter_values(steps: int) -> dict[str, Any]:
    return {"n": steps, "log": [f"s{i}" for i in range(1, steps + 1)]}


# -- the file -------------------------------------------------------------------------


async def test_first_use_makes_a_versioned_wal_database(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "threads.db"
    cp = SqliteCheckpointer(path)
    assert not path.exists()  # nothing happens before first use
    await cp.put(rec("r0"))
    await cp.aclose()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION >= 1
    conn.close()


async def test_async_with_opens_and_closes(tmp_path: Path) -> None:
    async with SqliteCheckpointer(tmp_path / "t.db") as cp:
        await cp.put(rec("r0"))
        assert await cp.get("t", "") == rec("r0")
    with pytest.raises(RuntimeError, match="closed"):
        await cp.get("t", "")


async def test_records_survive_reopening(tmp_path: Path) -> None:
    async with SqliteCheckpointer(tmp_path / "t.db") as cp:
        await cp.put(rec("r0"))
        await cp.put(rec("r1", "r0", step=1))
    async with SqliteCheckpointer(tmp_path / "t.db") as cp:
        assert await cp.history("t", "") == [rec("r1", "r0", step=1), rec("r0")]
        assert await cp.threads() == ["t"]


async def test_a_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    garbage = b"these are my notes, not a database\n" * 200
    path.write_bytes(garbage)
    cp = SqliteCheckpointer(path)  # no I/O yet
    with pytest.raises(CheckpointError, match="not a trigraph database"):
        await cp.get("t", "")
    await cp.aclose()
    assert path.read_bytes() == garbage


async def test_another_apps_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
    conn.close()
    cp = SqliteCheckpointer(path)
    graph = counter_graph(cp, 2)
    with pytest.raises(CheckpointError, match="users"):
        await graph.ainvoke({"n": 0, "log": []}, thread="t")
    await cp.aclose()
    with sqlite3.connect(path) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert tables == {"users"}
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 0
    conn.close()


async def test_a_newer_schema_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    async with SqliteCheckpointer(path) as cp:
        await cp.put(rec("r0"))
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    conn.close()
    cp = SqliteCheckpointer(path)
    with pytest.raises(CheckpointError, match="newer"):
        await cp.history("t", "")
    await cp.aclose()


async def test_a_failed_write_is_rolled_back_and_the_store_stays_usable(tmp_path: Path) -> None:
    async with SqliteCheckpointer(tmp_path / "t.db") as cp:
        await cp.put(rec("r0"))
        with pytest.raises(CheckpointError):
            await cp.put(rec("r0"))  # the same id twice
        with pytest.raises(CheckpointError):
            await cp.put_pending("t", "", "nope", b"x")
        assert await cp.history("t", "") == [rec("r0")]
        await cp.put(rec("r1", "r0", step=1))
        assert [r.id for r in await cp.history("t", "")] == ["r1", "r0"]


# -- sharing the file ---------------------------------------------------------------


async def test_many_runs_at_once_on_one_checkpointer(tmp_path: Path) -> None:
    async with SqliteCheckpointer(tmp_path / "t.db") as cp:
        graph = counter_graph(cp, 15)
        async with trio.open_nursery() as nursery:
            for i in range(6):
                run = functools.partial(graph.ainvoke, {"n": 0, "log": []}, thread=f"t{i}")
                nursery.start_soon(run)
        for i in range(6):
            assert (await graph.get_state(f"t{i}")).values == counter_values(15)
            assert len(await cp.history(f"t{i}", "")) == 16
        assert sorted(await cp.threads()) == [f"t{i}" for i in range(6)]


async def test_two_checkpointers_on_one_file_at_once(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    cps = [SqliteCheckpointer(path), SqliteCheckpointer(path)]

    async def run(i: int) -> None:
        await counter_graph(cps[i], 25).ainvoke({"n": 0, "log": []}, thread=f"t{i}")

    async with trio.open_nursery() as nursery:
        for i in range(2):
            nursery.start_soon(run, i)
    for cp in cps:
        for i in range(2):
            assert (await counter_graph(cp, 25).get_state(f"t{i}")).values == counter_values(25)
        await cp.aclose()


WRITER = """
import sys, trio
sys.path.insert(0, {tests!r})
from test_checkpoint_sqlite import counter_graph
from trigraph import SqliteCheckpointer

async def main(path, thread):
    async with SqliteCheckpointer(path, busy_timeout=30) as cp:
        await counter_graph(cp, 60).ainvoke({{"n": 0, "log": []}}, thread=thread)

trio.run(main, sys.argv[1], sys.argv[2])
"""


@pytest.mark.slow
async def test_two_processes_share_one_file(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    script = tmp_path / "writer.py"
    script.write_text(textwrap.dedent(WRITER.format(tests=str(Path(__file__).parent))))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done: list[subprocess.CompletedProcess[bytes]] = []

    async def writer(i: int) -> None:
        done.append(
            await trio.run_process(
                [sys.executable, str(script), str(path), f"p{i}"], env=env,
                capture_stdout=True, capture_stderr=True, check=False,
            )
        )

    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            for i in range(2):
                nursery.start_soon(writer, i)
    for proc in done:
        assert proc.returncode == 0, proc.stderr.decode()
    async with SqliteCheckpointer(path) as cp:
        for i in range(2):
            graph = counter_graph(cp, 60)
            assert (await graph.get_state(f"p{i}")).values == counter_values(60)
            history = await cp.history(f"p{i}", "")
            assert [r.step for r in history] == list(range(60, -1, -1))


# -- storage grows with what was written --------------------------------------------


class Chat(TypedDict):
    n: int
    messages: Annotated[list[str], operator.add]


def message(i: int) -> str:
    return f"{i:05d}:" + "m" * 1018  # 1 KB


@pytest.mark.slow
async def test_storage_grows_with_what_was_written(tmp_path: Path) -> None:
    steps = 1000

    async def talk(state: Chat) -> dict[str, Any]:
        return {"n": state["n"] + 1, "messages": [message(state["n"])]}

    def route(state: Chat) -> str:
        return END if state["n"] >= steps else "talk"

    g = StateGraph(Chat)
    g.add_node("talk", talk).add_edge(START, "talk").add_conditional_edges("talk", route)
    path = tmp_path / "chat.db"
    expected = [message(i) for i in range(steps)]

    async with SqliteCheckpointer(path) as cp:
        graph = g.compile(checkpointer=cp)
        final = await graph.ainvoke(
            {"n": 0, "messages": []}, thread="chat", recursion_limit=steps + 10
        )
        assert final == {"n": steps, "messages": expected}
    size = path.stat().st_size
    wal = path.with_name(path.name + "-wal")
    if wal.exists():
        size += wal.stat().st_size
    assert size < 5_000_000, f"{size:,} bytes for {steps} KB of messages"

    async with SqliteCheckpointer(path) as cp:
        graph = g.compile(checkpointer=cp)
        snap = await graph.get_state("chat")
        assert snap.values == {"n": steps, "messages": expected}
        assert (snap.step, snap.next) == (steps, ())
        history = await graph.get_state_history("chat")
        assert [s.step for s in history] == list(range(steps, -1, -1))
        for s in history:
            assert s.values["n"] == s.step
            assert s.values["messages"] == expected[: s.step]
        middle = await graph.get_state("chat", checkpoint_id=history[steps - 517].checkpoint_id)
        assert middle.values == {"n": 517, "messages": expected[:517]}


# -- claims and the worker thread ----------------------------------------------------


async def test_two_spellings_of_one_database_share_their_claims(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real)
    a = SqliteCheckpointer(real / "t.db")
    b = SqliteCheckpointer(tmp_path / "link" / "t.db")
    async with a, b:
        held = await a.lock_thread("t")
        with pytest.raises(ThreadBusyError, match="another run in this process"):
            await b.lock_thread("t")
        # Releasing another claim through the other spelling keeps a's claim.
        other = await b.lock_thread("u")
        await b.unlock_thread(other)
        await a.renew_lock(held)
        await a.put(rec("a"), lock=held)
        await a.unlock_thread(held)


async def test_an_in_memory_database_keeps_its_claims_to_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    async with SqliteCheckpointer(":memory:") as one, SqliteCheckpointer(":memory:") as two:
        lock = await one.lock_thread("t")
        with pytest.raises(ThreadBusyError):
            await one.lock_thread("t")
        other = await two.lock_thread("t")  # another database: not busy
        await two.unlock_thread(other)
        await one.unlock_thread(lock)
    assert os.listdir(tmp_path) == []  # no ":memory:-locks" file


async def test_aclose_closes_even_when_cancelled(tmp_path: Path) -> None:
    cp = SqliteCheckpointer(tmp_path / "t.db")
    with trio.CancelScope() as scope:
        async with cp:
            await cp.threads()
            scope.cancel()
            await trio.sleep_forever()
    with pytest.raises(RuntimeError, match="closed"):
        await cp.threads()
    await cp.aclose()  # again: nothing to do


def test_a_checkpointer_nobody_closed_ends_its_thread(tmp_path: Path) -> None:
    import gc
    import threading

    def open_and_forget() -> None:
        cp = SqliteCheckpointer(tmp_path / "t.db")
        trio.run(cp.threads)

    for _ in range(5):
        open_and_forget()
    gc.collect()
    for _ in range(100):
        names = [t.name for t in threading.enumerate() if t.name.startswith("SqliteCheckpointer")]
        if not names:
            break
        time.sleep(0.01)
    assert names == []


FORK = """
import os, sys, warnings
warnings.simplefilter("ignore", DeprecationWarning)
import trio
from trigraph import SqliteCheckpointer
cp = SqliteCheckpointer(sys.argv[1])
trio.run(cp.threads)
pid = os.fork()
if pid == 0:
    try:
        trio.run(cp.threads)
    except RuntimeError as exc:
        print(exc, flush=True)
    os._exit(0)
os.waitpid(pid, 0)
"""


@pytest.mark.slow
def test_a_checkpointer_used_across_fork_says_so(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-c", FORK, str(tmp_path / "t.db")],
                         capture_output=True, text=True, timeout=30)
    assert "was opened before this process forked; open a new one here" in out.stdout
