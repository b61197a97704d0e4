"""``trigraph.server.serve`` in the test's own Trio loop, with raw httpx:
heartbeats, ``on_disconnect``, and a reader that stops reading."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import trio

pytest.importorskip("hypercorn")
import server_graphs

from trigraph.server import _sse, serve

pytestmark = pytest.mark.slow


@pytest.fixture
async def base(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[str]:
    monkeypatch.setattr(_sse, "HEARTBEAT", 0.1)
    graphs: dict[str, Any] = {"ticks": server_graphs.ticks, "chain": server_graphs.chain}
    async with trio.open_nursery() as nursery:
        port = await nursery.start(lambda task_status: serve(
            graphs, db=str(tmp_path / "t.db"), port=0, task_status=task_status))
        yield f"http://127.0.0.1:{port}"
        nursery.cancel_scope.cancel()


async def ended(client: httpx.AsyncClient, run: dict[str, Any]) -> str:
    """The run's status once it has ended (``/join`` waits for that)."""
    await client.get(f"/threads/{run['thread_id']}/runs/{run['run_id']}/join")
    return await status(client, run)


async def status(client: httpx.AsyncClient, run: dict[str, Any]) -> str:
    response = await client.get(f"/threads/{run['thread_id']}/runs/{run['run_id']}")
    return str(response.json()["status"])


async def test_heartbeats_while_a_run_is_quiet(base: str) -> None:
    async with httpx.AsyncClient(base_url=base) as client:
        body = {"assistant_id": "ticks", "input": {"ticks": 1, "delay": 0.5},
                "stream_mode": "custom"}
        async with client.stream("POST", "/runs/stream", json=body) as response:
            raw = b"".join([chunk async for chunk in response.aiter_raw()])
    assert b": heartbeat\r\n\r\n" in raw
    # the end is the last event (a heartbeat comment may still follow it)
    after = raw.split(b"event: end\r\ndata: null\r\n\r\n", 1)[1]
    assert after.replace(b": heartbeat\r\n\r\n", b"") == b""


async def raw_post(base: str, path: str, body: dict[str, Any]) -> trio.SocketStream:
    """POST *body* on a raw connection; the caller reads the response and
    closes the connection whenever it likes (a client going away)."""
    port = int(base.rsplit(":", 1)[1])
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    data = orjson.dumps(body)
    await stream.send_all(
        b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (path.encode(), len(data), data))
    return stream


async def read_until(stream: trio.SocketStream, marker: bytes) -> bytes:
    seen = b""
    with trio.fail_after(5):
        while marker not in seen:
            seen += await stream.receive_some()
    return seen


def run_of(head: bytes) -> tuple[str, str]:
    location = head.split(b"content-location: ", 1)[1].split(b"\r\n", 1)[0].decode()
    parts = location.split("/")
    return parts[2], parts[4]


async def test_on_disconnect_cancel_stops_the_run(base: str) -> None:
    async with httpx.AsyncClient(base_url=base) as client:
        tid = (await client.post("/threads", json={})).json()["thread_id"]
        body = {"assistant_id": "ticks", "input": {"ticks": 200, "delay": 0.02},
                "stream_mode": "custom", "on_disconnect": "cancel"}
        stream = await raw_post(base, f"/threads/{tid}/runs/stream", body)
        head = await read_until(stream, b"event: custom")
        await stream.aclose()
        _, rid = run_of(head)
        run = {"thread_id": tid, "run_id": rid}
        with trio.fail_after(5):
            assert await ended(client, run) == "interrupted"
        body["on_disconnect"] = "continue"  # the default
        body["input"] = {"ticks": 20, "delay": 0.01}
        stream = await raw_post(base, f"/threads/{tid}/runs/stream", body)
        head = await read_until(stream, b"event: custom")
        await stream.aclose()
        run = {"thread_id": tid, "run_id": run_of(head)[1]}
        with trio.fail_after(5):
            assert await ended(client, run) == "success"


async def test_a_reader_that_stops_does_not_stop_the_run(base: str) -> None:
    """The run's events go to the database; a paused reader holds one batch."""
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        tid = (await client.post("/threads", json={})).json()["thread_id"]
        body = {"assistant_id": "chain", "input": {"n_custom": 20_000},
                "stream_mode": "custom"}
        stream = await raw_post(base, f"/threads/{tid}/runs/stream", body)
        seen = await read_until(stream, b"event: custom")  # read a little, then stop
        run = {"thread_id": tid, "run_id": run_of(seen)[1]}
        with trio.fail_after(10):
            assert await ended(client, run) == "success"
        seen += await read_until(stream, b"event: end")
        await stream.aclose()
        assert seen.count(b"event: custom") == 20_000


async def test_cors_preflight_needs_no_key_and_answers_the_origin(tmp_path: Path) -> None:
    graphs: dict[str, Any] = {"chain": server_graphs.chain}
    async with trio.open_nursery() as nursery:
        port = await nursery.start(lambda task_status: serve(
            graphs, db=str(tmp_path / "t.db"), port=0, api_key="k",
            cors_origins=["http://app.example"], task_status=task_status))
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            pre = await client.options("/threads", headers={
                "Origin": "http://app.example", "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "x-api-key,content-type"})
            assert pre.status_code == 200
            assert pre.headers["access-control-allow-origin"] == "http://app.example"
            made = await client.post("/threads", json={}, headers={
                "Origin": "http://app.example", "x-api-key": "k"})
            assert made.status_code == 200
            assert made.headers["access-control-allow-origin"] == "http://app.example"
            refused = await client.post("/threads", json={},
                                        headers={"Origin": "http://app.example"})
            assert refused.status_code == 401
            other = await client.options("/threads", headers={
                "Origin": "http://evil.example", "Access-Control-Request-Method": "POST"})
            assert "access-control-allow-origin" not in other.headers
        nursery.cancel_scope.cancel()


async def test_a_long_wait_keeps_the_connection_alive(
    base: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from trigraph.server import _runs

    monkeypatch.setattr(_runs, "KEEPALIVE", 0.1)
    async with httpx.AsyncClient(base_url=base) as client:
        body = {"assistant_id": "ticks", "input": {"ticks": 1, "delay": 0.35}}
        response = await client.post("/runs/wait", json=body)
    assert response.status_code == 200
    assert response.content.startswith(b"\n\n")  # written while the run ran
    assert orjson.loads(response.content) == {"ticks": 1, "delay": 0.35, "done": [0]}


async def test_a_stopping_server_gives_its_runs_back_and_a_restart_resumes_them(
    tmp_path: Path,
) -> None:
    graphs: dict[str, Any] = {"ticks": server_graphs.ticks}
    db = str(tmp_path / "t.db")
    body = {"assistant_id": "ticks", "input": {"ticks": 30, "delay": 0.02},
            "stream_mode": "custom"}
    async with trio.open_nursery() as nursery:
        port = await nursery.start(lambda task_status: serve(
            graphs, db=db, port=0, task_status=task_status))
        base = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=base) as client:
            tid = (await client.post("/threads", json={})).json()["thread_id"]
            run = (await client.post(f"/threads/{tid}/runs", json=body)).json()
        with trio.fail_after(5):
            while True:  # until a few ticks are done
                async with httpx.AsyncClient(base_url=base) as client:
                    state = (await client.get(f"/threads/{tid}/state")).json()
                if len(state["values"].get("done", [])) >= 3:
                    break
                await trio.sleep(0.02)
        nursery.cancel_scope.cancel()  # the server stops mid-run
    import sqlite3

    with sqlite3.connect(db) as conn:
        status, attempt = conn.execute("SELECT status, attempt FROM trigraph_server_runs "
                                       "WHERE run_id=?", (run["run_id"],)).fetchone()
    assert (status, attempt) == ("pending", 1)
    async with trio.open_nursery() as nursery:
        port = await nursery.start(lambda task_status: serve(
            graphs, db=db, port=0, task_status=task_status))
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            with trio.fail_after(10):
                out = (await client.get(f"/threads/{tid}/runs/{run['run_id']}/join")).json()
            assert out["done"] == list(range(30))
            got = (await client.get(f"/threads/{tid}/runs/{run['run_id']}/stream")).text
        assert got.count("event: metadata") == 2  # attempt 1, then attempt 2
        nursery.cancel_scope.cancel()
