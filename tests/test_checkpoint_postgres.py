"""``PostgresCheckpointer`` beyond the shared conformance tests: its schema
(versioned, in a namespace of its own, refusing what is not its own), leases
across checkpointers and processes, fencing in the same statement, queries
cancelled by Trio, bad DSNs, passwords never shown, and a server that goes
away in the middle of a run.

The ``pg_dsn`` server is shared by the session; each test uses schemas of
its own and drops them.
"""

from __future__ import annotations

import itertools
import os
import secrets
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import trio

from trigraph import (
    END,
    START,
    CheckpointError,
    CompiledGraph,
    PostgresCheckpointer,
    StateGraph,
    ThreadBusyError,
)
from trigraph._records import read_checkpoint
from trigraph.abc import Checkpointer, CheckpointRecord
from trigraph.postgres._db import Database
from trigraph.postgres._dsn import describe_dsn, redact_dsn
from trigraph.postgres._sql import COMPONENT

psycopg = pytest.importorskip("psycopg")  # the test extra has it; pg_dsn fails without it in CI


def rec(
    id: str, parent: str | None = None, *, thread: str = "t", step: int = 0
) -> CheckpointRecord:
    return CheckpointRecord(
        thread=thread, ns="", id=id, parent_id=parent, step=step, created_at=1.0,
        body=b'{"delta":{}}', snapshot=b"{}" if parent is None else None,
    )


def sql(dsn: str, query: str, *params: Any) -> list[tuple[Any, ...]]:
    """Run one statement on a fresh autocommit connection (sync)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        cur = conn.execute(query, params or None)
        return cur.fetchall() if cur.description else []


@pytest.fixture
def schema(pg_dsn: str) -> Iterator[str]:
    name = f"t_{secrets.token_hex(6)}"
    yield name
    sql(pg_dsn, f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


@pytest.fixture
async def pg(pg_dsn: str, schema: str) -> AsyncIterator[PostgresCheckpointer]:
    async with PostgresCheckpointer(pg_dsn, schema=schema) as cp:
        yield cp


def tables(dsn: str, schema: str) -> list[str]:
    return [r[0] for r in sql(
        dsn, "SELECT tablename FROM pg_tables WHERE schemaname = %s ORDER BY 1", schema)]


# -- the schema ---------------------------------------------------------------


async def test_first_use_creates_a_versioned_schema_of_its_own(pg_dsn: str, schema: str) -> None:
    cp = PostgresCheckpointer(pg_dsn, schema=schema)
    assert tables(pg_dsn, schema) == []  # nothing happens before first use
    await cp.put(rec("r0"))
    await cp.aclose()
    assert tables(pg_dsn, schema) == ["checkpoints", "schema_versions", "thread_claims"]
    assert sql(pg_dsn, f'SELECT component, version FROM "{schema}".schema_versions') == [
        ("checkpoints", COMPONENT.version)
    ]
    with pytest.raises(RuntimeError, match="closed"):
        await cp.get("t", "")
    async with PostgresCheckpointer(pg_dsn, schema=schema) as again:  # reopened: as it was
        assert await again.history("t", "") == [rec("r0")]


@pytest.mark.slow
async def test_processes_starting_at_once_create_the_schema_once(
    pg_dsn: str, schema: str
) -> None:
    stores = [PostgresCheckpointer(pg_dsn, schema=schema) for _ in range(6)]
    async with trio.open_nursery() as nursery:
        for store in stores:
            nursery.start_soon(store.__aenter__)
    for i, store in enumerate(stores):
        await store.put(rec(f"r{i}", thread=f"t{i}"))
        await store.aclose()
    assert sql(pg_dsn, f'SELECT count(*) FROM "{schema}".schema_versions') == [(1,)]


async def test_a_schema_holding_other_tables_is_refused_unchanged(
    pg_dsn: str, schema: str
) -> None:
    sql(pg_dsn, f'CREATE SCHEMA "{schema}"')
    sql(pg_dsn, f'CREATE TABLE "{schema}".users (id int)')
    cp = PostgresCheckpointer(pg_dsn, schema=schema)
    with pytest.raises(CheckpointError, match=f"schema '{schema}'.* is not trigraph's.*users"):
        await cp.get("t", "")
    await cp.aclose()
    assert tables(pg_dsn, schema) == ["users"]


async def test_a_newer_schema_version_is_refused_unchanged(pg_dsn: str, schema: str) -> None:
    async with PostgresCheckpointer(pg_dsn, schema=schema) as cp:
        await cp.put(rec("r0"))
    newer = COMPONENT.version + 1
    sql(pg_dsn, f'UPDATE "{schema}".schema_versions SET version = %s', newer)
    cp = PostgresCheckpointer(pg_dsn, schema=schema)
    with pytest.raises(CheckpointError, match="newer trigraph"):
        await cp.history("t", "")
    await cp.aclose()
    assert sql(pg_dsn, f'SELECT version FROM "{schema}".schema_versions') == [(newer,)]


def test_bad_arguments_fail_at_once(pg_dsn: str) -> None:
    with pytest.raises(ValueError, match="schema"):
        PostgresCheckpointer(pg_dsn, schema="")
    with pytest.raises(ValueError, match="63 bytes"):
        PostgresCheckpointer(pg_dsn, schema="x" * 64)
    with pytest.raises(ValueError, match="lock_ttl"):
        PostgresCheckpointer(pg_dsn, lock_ttl=0)
    with pytest.raises(CheckpointError, match="not a PostgreSQL connection string"):
        PostgresCheckpointer("this is = not 'a dsn")


# -- claims across checkpointers (as if in other processes) --------------------------


async def test_a_claim_holds_across_checkpointers(pg_dsn: str, schema: str) -> None:
    async with PostgresCheckpointer(pg_dsn, schema=schema) as a, \
            PostgresCheckpointer(pg_dsn, schema=schema) as b:
        lock = await a.lock_thread("t")
        assert lock.ttl == 30.0
        with pytest.raises(ThreadBusyError, match=r"another run in this process; its claim "
                                                   r"lapses in (29|30) s"):
            await b.lock_thread("t")
        with pytest.raises(ThreadBusyError):
            await b.delete_thread("t")
        await a.unlock_thread(lock)
        await b.unlock_thread(await b.lock_thread("t"))


@pytest.mark.slow
async def test_a_lapsed_claim_is_taken_over_and_its_writes_are_refused(
    pg_dsn: str, schema: str
) -> None:
    async with PostgresCheckpointer(pg_dsn, schema=schema, lock_ttl=1) as a, \
            PostgresCheckpointer(pg_dsn, schema=schema, lock_ttl=1) as b:
        old = await a.lock_thread("t")
        await a.put(rec("a0"), lock=old)
        await trio.sleep(0.6)
        await a.renew_lock(old)  # renewed: still held 0.6 s later
        await trio.sleep(0.6)
        with pytest.raises(ThreadBusyError):
            await b.lock_thread("t")
        await trio.sleep(0.6)
        # Lapsed but nobody took it: still this run's, renewing works.
        await a.renew_lock(old)
        await trio.sleep(1.1)
        new = await b.lock_thread("t")  # lapsed: another process takes it over
        with pytest.raises(ThreadBusyError, match="lost its claim") as info:
            await a.put(rec("a1", "a0", step=1), lock=old)
        assert info.value.lost
        with pytest.raises(ThreadBusyError, match="lost its claim"):
            await a.put_pending("t", "", "a0", b"late", lock=old)
        with pytest.raises(ThreadBusyError, match="lost its claim"):
            await a.renew_lock(old)
        await a.unlock_thread(old)  # not held: nothing happens
        await b.put(rec("b1", "a0", step=1), lock=new)
        assert [r.id for r in await b.history("t", "")] == ["b1", "a0"]
        assert (await b.get("t", "", "a0")).pending is None  # type: ignore[union-attr]
        await b.unlock_thread(new)


async def test_a_fenced_write_waits_for_a_takeover_in_progress_then_stores_nothing(
    pg_dsn: str, pg: PostgresCheckpointer, schema: str
) -> None:
    lock = await pg.lock_thread("t")
    with psycopg.connect(pg_dsn) as other:  # a takeover, not yet committed
        other.execute(
            f'UPDATE "{schema}".thread_claims SET token = %s WHERE thread = %s', ("thief", "t")
        )
        result: list[BaseException | None] = []

        async def write() -> None:
            try:
                await pg.put(rec("late"), lock=lock)
                result.append(None)
            except ThreadBusyError as exc:
                result.append(exc)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(write)
            await trio.sleep(0.2)
            assert result == []  # the write waits on the claim row
            await trio.to_thread.run_sync(other.commit)
    assert isinstance(result[0], ThreadBusyError)
    assert result[0].lost
    assert await pg.get("t", "") is None


# -- cancellation ----------------------------------------------------------------


def active_queries(dsn: str, text: str) -> list[tuple[Any, ...]]:
    return sql(dsn, "SELECT pid, state FROM pg_stat_activity WHERE query LIKE %s "
                    "AND pid <> pg_backend_pid()", f"%{text}%")


@pytest.mark.slow
async def test_a_trio_timeout_cancels_the_query_on_the_server(pg_dsn: str) -> None:
    db = Database(pg_dsn, min_size=1, max_size=1)
    await db.open()
    try:
        pid = await db.run(lambda c: c.execute("SELECT pg_backend_pid()").fetchone()[0])
        start = time.monotonic()
        with trio.move_on_after(0.3) as scope:
            await db.run(lambda c: c.execute("SELECT pg_sleep(20) /* cancel-me */"))
        assert scope.cancelled_caught
        assert time.monotonic() - start < 2.0
        assert [r for r in active_queries(pg_dsn, "cancel-me") if r[1] == "active"] == []
        # The one pooled connection is idle again and serves the next call.
        again = await db.run(lambda c: c.execute("SELECT pg_backend_pid(), 1").fetchone())
        assert again == (pid, 1)
    finally:
        await db.aclose()


@pytest.mark.slow
async def test_a_checkpointer_call_blocked_by_a_lock_returns_on_timeout(
    pg_dsn: str, schema: str
) -> None:
    async with PostgresCheckpointer(pg_dsn, schema=schema, max_connections=1) as cp:
        await cp.put(rec("r0"))
        with psycopg.connect(pg_dsn) as other:
            other.execute(f'LOCK TABLE "{schema}".checkpoints IN ACCESS EXCLUSIVE MODE')
            start = time.monotonic()
            with trio.move_on_after(0.3) as scope:
                await cp.put(rec("r1", "r0", step=1))
            assert scope.cancelled_caught
            # A call waiting for the pool's only connection is cancelled too.
            with trio.move_on_after(0.2):
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(cp.history, "t", "")
                    nursery.start_soon(cp.history, "t", "")
            assert time.monotonic() - start < 3.0
            other.rollback()
        assert await cp.history("t", "") == [rec("r0")]  # the cancelled write did not happen


@pytest.mark.slow
async def test_a_cancelled_claim_or_release_leaves_no_claim_behind(
    pg_dsn: str, pg: PostgresCheckpointer, schema: str
) -> None:
    with psycopg.connect(pg_dsn) as other:
        other.execute(f'LOCK TABLE "{schema}".thread_claims IN ACCESS EXCLUSIVE MODE')

        async def unlock_later() -> None:
            await trio.sleep(0.5)
            await trio.to_thread.run_sync(other.rollback)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(unlock_later)
            with trio.move_on_after(0.2) as scope:
                await pg.lock_thread("t")
            assert scope.cancelled_caught
    assert sql(pg_dsn, f'SELECT count(*) FROM "{schema}".thread_claims') == [(0,)]
    lock = await pg.lock_thread("t")
    with trio.CancelScope() as cancelled:
        cancelled.cancel()
        await pg.unlock_thread(lock)  # released even so
    assert sql(pg_dsn, f'SELECT count(*) FROM "{schema}".thread_claims') == [(0,)]


# -- bad input, and passwords ---------------------------------------------------


def test_dsns_are_redacted_and_described() -> None:
    url = "postgresql://app:hunter2@db.example:6543/prod?sslmode=require"
    assert redact_dsn(url) == "postgresql://app:***@db.example:6543/prod?sslmode=require"
    assert describe_dsn(url) == "db.example:6543/prod"
    assert redact_dsn("host=x password=hunter2 user=u") == "host=x password=*** user=u"
    assert redact_dsn("host=x password='hun ter2'") == "host=x password=***"
    assert "hunter2" not in redact_dsn("postgresql:///db?host=/tmp&password=hunter2")
    cp = PostgresCheckpointer(url)
    assert "hunter2" not in repr(cp)
    assert cp.dsn == redact_dsn(url)


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A TCP port that accepts connections and never answers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        yield s.getsockname()[1]


@pytest.mark.slow
async def test_an_unanswering_server_fails_within_the_connect_timeout(silent_port: int) -> None:
    cp = PostgresCheckpointer(
        f"postgresql://app:hunter2@127.0.0.1:{silent_port}/db", connect_timeout=2
    )
    start = time.monotonic()
    with pytest.raises(CheckpointError, match=f"127.0.0.1:{silent_port}/db") as info:
        await cp.get("t", "")
    assert time.monotonic() - start < 6
    assert "hunter2" not in str(info.value)
    await cp.aclose()


async def test_a_refused_connection_is_an_error_naming_the_host() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cp = PostgresCheckpointer(f"host=127.0.0.1 port={port} password=hunter2 dbname=x")
    with pytest.raises(CheckpointError, match=f"127.0.0.1:{port}/x.*cannot connect") as info:
        await cp.threads()
    assert "hunter2" not in str(info.value)
    await cp.aclose()


async def test_a_wrong_password_is_an_error_naming_the_host(pg_dsn: str) -> None:
    role = f"pw_{secrets.token_hex(4)}"
    sql(pg_dsn, f"CREATE ROLE {role} LOGIN PASSWORD 'right-one'")
    hba = sql(pg_dsn, "SHOW hba_file")[0][0]
    try:
        original = sql(pg_dsn, "SELECT pg_read_file(%s)", hba)[0][0]
    except Exception:  # pragma: no cover - a server we may not reconfigure
        pytest.skip("cannot read pg_hba.conf on this server")
    if not os.access(hba, os.W_OK):  # pragma: no cover - a server of another machine
        pytest.skip("cannot edit pg_hba.conf of this server")
    await trio.to_thread.run_sync(
        Path(hba).write_text, f"local all {role} scram-sha-256\n" + original
    )
    sql(pg_dsn, "SELECT pg_reload_conf()")
    try:
        params = dict(p.split("=", 1) for p in pg_dsn.split())
        dsn = f"host={params['host']} port={params['port']} dbname=postgres user={role} " \
              "password=wrong-one"
        cp = PostgresCheckpointer(dsn)
        with pytest.raises(CheckpointError, match="password authentication failed") as info:
            await cp.threads()
        assert "wrong-one" not in str(info.value)
        assert describe_dsn(dsn) in str(info.value)
        await cp.aclose()
    finally:
        await trio.to_thread.run_sync(Path(hba).write_text, original)
        sql(pg_dsn, "SELECT pg_reload_conf()")
        sql(pg_dsn, f"DROP ROLE {role}")


def test_importing_trigraph_does_not_import_psycopg() -> None:
    code = "import sys, trigraph; print('psycopg' in sys.modules, 'psycopg_pool' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_without_psycopg_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)
    with pytest.raises(ImportError, match=r'pip install "trigraph\[postgres\]"'):
        PostgresCheckpointer("postgresql://x/y")


# -- processes racing, and a server that goes away ---------------------------------

RACE = """
import sys, time, trio
from trigraph import END, START, PostgresCheckpointer, StateGraph, ThreadBusyError

async def step(state):
    await trio.sleep(0.2)
    return {"log": state["log"] + [sys.argv[3]]}

async def main(dsn, schema, me, go):
    g = StateGraph(dict)
    g.add_node("a", step).add_node("b", step).add_node("c", step)
    g.add_edge(START, "a").add_edge("a", "b").add_edge("b", "c").add_edge("c", END)
    async with PostgresCheckpointer(dsn, schema=schema) as cp:
        graph = g.compile(checkpointer=cp)
        await graph.get_state_history("t")  # connected and ready
        while time.time() < go:
            await trio.sleep(0.001)
        try:
            await graph.ainvoke({"log": []}, thread="t")
            print("ran")
        except ThreadBusyError:
            print("busy")

trio.run(main, sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]))
"""


@pytest.mark.slow
async def test_two_processes_racing_on_one_thread(pg_dsn: str, schema: str, tmp_path: Path) -> None:
    script = tmp_path / "race.py"
    script.write_text(textwrap.dedent(RACE))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    go = str(time.time() + 2.0)
    results: dict[str, str] = {}

    async def one(me: str) -> None:
        done = await trio.run_process(
            [sys.executable, str(script), pg_dsn, schema, me, go], env=env,
            capture_stdout=True, capture_stderr=True, check=False,
        )
        assert done.returncode == 0, done.stderr.decode()
        results[me] = done.stdout.decode().strip()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(one, "A")
        nursery.start_soon(one, "B")
    assert sorted(results.values()) == ["busy", "ran"]
    winner = next(me for me, said in results.items() if said == "ran")
    async with PostgresCheckpointer(pg_dsn, schema=schema) as cp:
        history = await cp.history("t", "")
    # One run's checkpoints only, one chain, nothing interleaved.
    assert [r.step for r in history] == [3, 2, 1, 0]
    assert all(r.parent_id == p.id for r, p in itertools.pairwise(history))
    async with PostgresCheckpointer(pg_dsn, schema=schema) as cp:
        state = await read_checkpoint(cp, "t")
    assert state is not None
    assert state.values == {"log": [winner] * 3}


def stopping_graph(cp: Checkpointer, on_step: dict[int, Any], calls: list[int]) -> CompiledGraph:
    async def inc(state: dict[str, Any]) -> dict[str, Any]:
        n = state["n"] + 1
        calls.append(n)
        if n in on_step:
            await on_step.pop(n)()
        return {"n": n}

    def again(state: dict[str, Any]) -> str:
        return END if state["n"] >= 5 else "inc"

    g = StateGraph(dict)
    g.add_node(inc).add_edge(START, "inc").add_conditional_edges("inc", again)
    return g.compile(checkpointer=cp)


@pytest.mark.slow
@pytest.mark.usefixtures("pg_binaries")
async def test_the_server_going_away_mid_run_then_coming_back() -> None:
    from _pg import PgServer

    server = await trio.to_thread.run_sync(PgServer.start)
    try:
        async with PostgresCheckpointer(server.dsn, lock_ttl=1, connect_timeout=3) as cp:
            calls: list[int] = []

            async def halt() -> None:
                await trio.to_thread.run_sync(server.halt)

            graph = stopping_graph(cp, {3: halt}, calls)
            with pytest.raises(CheckpointError, match=str(server.folder)):
                await graph.ainvoke({"n": 0}, thread="t")
            await trio.to_thread.run_sync(server.resume)
            # The failed run's claim could not be released: it lapses after 1 s.
            for _ in range(100):
                try:
                    final = await graph.ainvoke(None, thread="t")
                    break
                except ThreadBusyError:
                    await trio.sleep(0.1)
            else:
                pytest.fail("the thread never came free")
            assert final == {"n": 5}
            assert calls == [1, 2, 3, 3, 4, 5]  # only the step in flight ran again
            assert [r.step for r in await cp.history("t", "")] == [5, 4, 3, 2, 1, 0]
    finally:
        await trio.to_thread.run_sync(server.stop)
