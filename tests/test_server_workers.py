"""One API process and two ``trigraph worker`` processes on one database: a
worker SIGKILLed mid-run loses the run to the other, and the client's stream
is complete with no event lost or repeated; a cancel from the API process
stops a run on a worker within a second.

Each test runs on a SQLite file (processes of one machine, wake-ups by
polling) and on PostgreSQL (LISTEN/NOTIFY), in a fresh database of the
session's disposable server.
"""

from __future__ import annotations

import asyncio
import secrets
import sqlite3
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from _server import TARGETS, Proc, Server

pytest.importorskip("langgraph_sdk")
from langgraph_sdk import get_client

pytestmark = pytest.mark.slow


def _pg_url(request: pytest.FixtureRequest) -> str:
    """A fresh database of the session's PostgreSQL server, as a URL."""
    try:
        dsn = request.getfixturevalue("pg_dsn")
    except pytest.FixtureLookupError:
        pytest.skip("this trigraph has no PostgreSQL support yet")
    import psycopg

    name = f"server_{secrets.token_hex(4)}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    params = psycopg.conninfo.conninfo_to_dict(dsn)
    query = "&".join(f"{k}={quote(str(v), safe='/')}" for k, v in params.items()
                     if k not in ("dbname", "user", "password"))
    user = quote(str(params.get("user", "postgres")))
    return f"postgresql://{user}@/{name}?{query}"


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def cluster(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    folder = tmp_path_factory.mktemp("cluster")
    db = str(folder / "threads.db") if request.param == "sqlite" else _pg_url(request)
    api = Server(folder, "--db", db, "--workers", "0", name="api")
    workers = [Proc(["worker", *TARGETS, "--db", db, "--lease", "1", "--concurrency", "4"],
                    folder / f"worker{i}.log") for i in range(2)]
    try:
        for w in workers:
            w.wait_for("trigraph worker: running")
        yield {"api": api, "workers": workers, "db": db, "folder": folder}
    finally:
        for w in workers:
            w.stop()
        api.stop()


def _holder(db: str, run_id: str, timeout: float = 10) -> int:
    """The pid of the worker holding *run_id* (read from the queue table)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if db.startswith("postgresql://"):
            import psycopg

            with psycopg.connect(db) as pg:
                row = pg.execute("SELECT worker FROM trigraph.server_runs WHERE run_id=%s "
                                 "AND status='running'", (run_id,)).fetchone()
        else:
            with sqlite3.connect(db) as conn:
                row = conn.execute("SELECT worker FROM trigraph_server_runs WHERE run_id=? "
                                   "AND status='running'", (run_id,)).fetchone()
        if row and row[0]:
            return int(row[0].split(":")[1])
        time.sleep(0.02)
    raise TimeoutError(f"run {run_id} was never claimed")


def test_a_killed_worker_loses_its_run_and_the_stream_stays_whole(
    cluster: dict[str, Any]
) -> None:
    api, workers = cluster["api"], cluster["workers"]

    async def main() -> list[Any]:
        client = get_client(url=api.url)
        tid = (await client.threads.create())["thread_id"]
        got: list[Any] = []
        killed = False
        async for part in client.runs.stream(
            tid, "ticks", input={"ticks": 16, "delay": 0.1}, stream_mode=["custom", "values"]
        ):
            got.append(part)
            if not killed and part.event == "custom" and part.data["tick"] == 4:
                rid = got[0].data["run_id"]
                victim = next(w for w in workers if w.pid == _holder(cluster["db"], rid))
                victim.kill()
                killed = True
        state = await client.threads.get_state(tid)
        assert state["values"]["done"] == list(range(16))  # no completed step ran twice
        runs = await client.runs.list(tid)
        assert runs[0]["status"] == "success"
        await client.http.client.aclose()
        return got

    got = asyncio.run(main())
    ids = [int(p.id) for p in got if p.event != "end"]
    assert ids == list(range(1, len(ids) + 1)), ids  # none lost, none repeated
    metadata = [p.data for p in got if p.event == "metadata"]
    assert [m["attempt"] for m in metadata] == [1, 2]  # the takeover is announced
    ticks = [p.data["tick"] for p in got if p.event == "custom"]
    assert sorted(set(ticks)) == list(range(16))
    repeated = {t for t in ticks if ticks.count(t) > 1}
    assert len(repeated) <= 1  # only the step in flight at the kill ran again
    assert got[-1].event == "end"
    survivors = [w for w in workers if w.popen.poll() is None]
    assert len(survivors) == 1
    # a fresh worker takes the dead one's place for the next test
    workers[workers.index(next(w for w in workers if w.popen.poll() is not None))] = Proc(
        ["worker", *TARGETS, "--db", cluster["db"], "--lease", "1"],
        cluster["folder"] / "worker-new.log")


def test_cancel_from_the_api_process_reaches_the_worker(cluster: dict[str, Any]) -> None:
    api = cluster["api"]

    async def main() -> float:
        client = get_client(url=api.url)
        tid = (await client.threads.create())["thread_id"]
        run = await client.runs.create(tid, "ticks", input={"ticks": 500, "delay": 0.05},
                                       stream_mode=["values", "custom"])
        _holder(cluster["db"], run["run_id"])
        async for part in client.runs.join_stream(tid, run["run_id"], stream_mode="custom"):
            if part.event == "custom":
                break
        start = time.monotonic()
        await client.runs.cancel(tid, run["run_id"], wait=True)
        took = time.monotonic() - start
        assert (await client.runs.get(tid, run["run_id"]))["status"] == "interrupted"
        done = (await client.threads.get_state(tid))["values"]["done"]
        assert 0 < len(done) < 500
        await client.http.client.aclose()
        return took

    assert asyncio.run(main()) < 1.0


def test_a_hundred_concurrent_streams_across_processes(cluster: dict[str, Any]) -> None:
    api = cluster["api"]

    async def one(client: Any, i: int) -> list[Any]:
        return [p async for p in client.runs.stream(
            None, "chain", input={"items": [i], "n_custom": 3},
            stream_mode=["custom", "values"])]

    async def main() -> list[list[Any]]:
        client = get_client(url=api.url)
        try:
            return list(await asyncio.gather(*(one(client, i) for i in range(100))))
        finally:
            await client.http.client.aclose()

    for i, got in enumerate(asyncio.run(main())):
        assert got[-2].data == {"items": [i, "a", "b", "c"], "n_custom": 3}
        assert [p.data["i"] for p in got if p.event == "custom"] == [0, 1, 2]
        ids = [int(p.id) for p in got if p.event != "end"]
        assert ids == list(range(1, len(ids) + 1))
