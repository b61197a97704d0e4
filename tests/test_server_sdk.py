"""``trigraph serve`` driven by langgraph-sdk, as its users drive LangGraph's server.

One real server subprocess is shared by the module (the ``server`` fixture);
the SDK is asyncio-based, so each test runs its client in ``asyncio.run``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from conftest import SERVER_KEY

pytest.importorskip("langgraph_sdk")
from langgraph_sdk import get_client
from langgraph_sdk.errors import ConflictError, NotFoundError

pytestmark = pytest.mark.slow


def sdk(server: Any, fn: Callable[[Any], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        client = get_client(url=server.url, api_key=SERVER_KEY)
        try:
            return await fn(client)
        finally:
            await client.http.client.aclose()

    return asyncio.run(main())


def parts(stream: list[Any]) -> list[tuple[str, Any]]:
    return [(p.event, p.data) for p in stream]


async def collect(iterator: Any) -> list[Any]:
    return [p async for p in iterator]


def test_assistants_are_the_graphs(server: Any) -> None:
    async def main(c: Any) -> None:
        found = await c.assistants.search(limit=100)
        ids = {a["graph_id"]: a["assistant_id"] for a in found}
        assert set(ids) == {"chain", "ask", "ticks", "nested"}
        assert ids["chain"] == "608f7b9c-04e5-5cf2-a3f7-ba75a3719808"  # LangGraph's id
        assert (await c.assistants.get(ids["chain"]))["graph_id"] == "chain"
        drawing = await c.assistants.get_graph(ids["chain"])
        assert [n["id"] for n in drawing["nodes"]] == ["__start__", "a", "b", "c", "__end__"]
        assert {"source": "a", "target": "b"} in drawing["edges"]
        ticks = await c.assistants.get_graph("ticks")
        assert any(e.get("conditional") for e in ticks["edges"])
        schemas = await c.assistants.get_schemas("chain")
        assert "items" in schemas["state_schema"]["properties"]
        assert await c.assistants.count() == 4
        with pytest.raises(NotFoundError):
            await c.assistants.get("5d2b9c1e-0000-4000-8000-000000000000")

    sdk(server, main)


def test_threads_create_get_search_update_delete(server: Any) -> None:
    async def main(c: Any) -> None:
        t = await c.threads.create(metadata={"user": "ada"})
        tid = t["thread_id"]
        assert t["status"] == "idle"
        assert t["metadata"] == {"user": "ada"}
        assert (await c.threads.get(tid))["thread_id"] == tid
        with pytest.raises(ConflictError):
            await c.threads.create(thread_id=tid)
        same = await c.threads.create(thread_id=tid, if_exists="do_nothing")
        assert same["thread_id"] == tid
        await c.threads.update(tid, metadata={"topic": "trio"})
        found = await c.threads.search(metadata={"user": "ada", "topic": "trio"})
        assert [x["thread_id"] for x in found] == [tid]
        assert await c.threads.count(metadata={"user": "ada", "topic": "trio"}) == 1
        await c.threads.delete(tid)
        with pytest.raises(NotFoundError):
            await c.threads.get(tid)

    sdk(server, main)


def test_wait_state_history_and_update_state(server: Any) -> None:
    async def main(c: Any) -> None:
        tid = (await c.threads.create())["thread_id"]
        out = await c.runs.wait(tid, "chain", input={"items": [0]})
        assert out == {"items": [0, "a", "b", "c"]}
        state = await c.threads.get_state(tid)
        assert state["values"] == out
        assert state["next"] == []
        thread = await c.threads.get(tid)
        assert thread["status"] == "idle"
        assert thread["values"] == out
        assert thread["metadata"]["graph_id"] == "chain"
        history = await c.threads.get_history(tid, limit=100)
        assert [h["values"]["items"] for h in history][-1] == [0]
        assert len(history) == 4
        old = history[-1]["checkpoint_id"]
        at = await c.threads.get_state(tid, checkpoint_id=old)
        assert at["values"] == {"items": [0]}
        await c.threads.update_state(tid, {"items": ["x"]})
        assert (await c.threads.get_state(tid))["values"]["items"][-1] == "x"
        # time travel: fork from the first checkpoint
        forked = await c.runs.wait(tid, "chain", input=None, checkpoint_id=old)
        assert forked == {"items": [0, "a", "b", "c"]}

    sdk(server, main)


def test_stream_modes_ids_and_end(server: Any) -> None:
    async def main(c: Any) -> None:
        tid = (await c.threads.create())["thread_id"]
        got = await collect(c.runs.stream(
            tid, "chain", input={"items": [], "n_custom": 2},
            stream_mode=["values", "updates", "custom", "tasks", "debug"]))
        events = [p.event for p in got]
        assert events[0] == "metadata"
        assert events[-1] == "end"
        assert got[1] == got[1]._replace(event="values", data={"items": [], "n_custom": 2})
        ids = [int(p.id) for p in got[:-1]]
        assert ids == list(range(1, len(ids) + 1))
        assert ("updates", {"b": {"items": ["b"]}}) in parts(got)
        assert [d for e, d in parts(got) if e == "custom"] == [{"i": 0}, {"i": 1}]
        tasks = [d for e, d in parts(got) if e == "tasks"]
        assert [t["name"] for t in tasks if "result" in t] == ["a", "b", "c"]
        assert {"b"} <= {t["name"] for t in tasks if "triggers" in t}
        assert any(d["type"] == "task_result" for e, d in parts(got) if e == "debug")

    sdk(server, main)


def test_subgraph_events_are_named_mode_ns(server: Any) -> None:
    async def main(c: Any) -> None:
        got = await collect(c.runs.stream(None, "nested", input={"items": []},
                                          stream_mode=["custom", "updates"],
                                          stream_subgraphs=True))
        names = [p.event for p in got]
        assert any(n.startswith("custom|sub:") for n in names), names
        assert any(n.startswith("updates|sub:") for n in names), names
        top = await collect(c.runs.stream(None, "nested", input={"items": []},
                                          stream_mode=["custom", "updates"]))
        assert not any("|" in p.event for p in top)

    sdk(server, main)


def test_interrupt_and_resume(server: Any) -> None:
    async def main(c: Any) -> None:
        tid = (await c.threads.create())["thread_id"]
        out = await c.runs.wait(tid, "ask", input={"question": "sure?"})
        assert out["__interrupt__"][0]["value"] == {"question": "sure?"}
        thread = await c.threads.get(tid)
        assert thread["status"] == "interrupted"
        state = await c.threads.get_state(tid)
        assert state["next"] == ["ask"]
        assert state["interrupts"][0]["value"]["question"]
        streamed = await collect(c.runs.stream(tid, "ask", command={"resume": "yes"},
                                               stream_mode="values"))
        assert streamed[-2].data == {"question": "sure?", "answer": "yes"}
        assert (await c.threads.get(tid))["status"] == "idle"
        # command.goto (with an update) starts from the named node
        tid3 = (await c.threads.create())["thread_id"]
        await c.runs.wait(tid3, "chain", input={"items": [0]})
        jumped = await c.runs.wait(tid3, "chain", command={"goto": "c", "update": {"items": [9]}})
        assert jumped["items"] == [0, "a", "b", "c", 9, "c"]
        sent = await c.runs.wait(tid3, "chain", command={"goto": [{"node": "b", "input": {}}]})
        assert sent["items"][-2:] == ["b", "c"]
        # command.update before continuing
        tid2 = (await c.threads.create())["thread_id"]
        await c.runs.wait(tid2, "ask", input={"question": "q"})
        out2 = await c.runs.wait(tid2, "ask", command={"update": {"question": "edited"},
                                                        "resume": "ok"})
        assert out2 == {"question": "edited", "answer": "ok"}

    sdk(server, main)


def test_graph_error_is_200_with_error_and_an_error_event(server: Any) -> None:
    async def main(c: Any) -> None:
        tid = (await c.threads.create())["thread_id"]
        out = await c.runs.wait(tid, "chain", input={"fail": "b"}, raise_error=False)
        assert out["__error__"] == {"error": "ValueError", "message": "boom!"}
        runs = await c.runs.list(tid)
        assert runs[0]["status"] == "error"
        assert (await c.threads.get(tid))["status"] == "error"
        got = await collect(c.runs.stream(tid, "chain", input={"fail": "b"}))
        assert got[-2].event == "error"
        assert got[-2].data["message"] == "boom!"
        with pytest.raises(Exception, match="boom"):
            await c.runs.wait(tid, "chain", input={"fail": "b"})

    sdk(server, main)


def test_join_stream_resumes_after_last_event_id_exactly_once(server: Any) -> None:
    async def main(c: Any) -> None:
        tid = (await c.threads.create())["thread_id"]
        run = await c.runs.create(tid, "ticks", input={"ticks": 12, "delay": 0.02},
                                  stream_mode=["values", "custom"])
        first = []
        async for p in c.runs.join_stream(tid, run["run_id"]):
            first.append(p)
            if len(first) == 6:
                break
        cursor = first[-1].id
        rest = await collect(c.runs.join_stream(tid, run["run_id"], last_event_id=cursor))
        ids = [int(p.id) for p in first + rest if p.event != "end"]
        assert ids == list(range(1, len(ids) + 1))  # nothing lost, nothing twice
        assert rest[-1].event == "end"
        ticks = [p.data["tick"] for p in first + rest if p.event == "custom"]
        assert ticks == list(range(12))
        only = await collect(c.runs.join_stream(tid, run["run_id"],
                                                stream_mode=["custom"]))
        assert {p.event for p in only} == {"metadata", "custom", "end"}
        assert (await c.runs.join(tid, run["run_id"]))["done"] == list(range(12))

    sdk(server, main)


def test_multitask_strategies(server: Any) -> None:
    async def main(c: Any) -> None:
        slow = {"ticks": 40, "delay": 0.05}
        # reject: 409 while a run is in progress
        tid = (await c.threads.create())["thread_id"]
        first = await c.runs.create(tid, "ticks", input=slow)
        with pytest.raises(ConflictError):
            await c.runs.create(tid, "ticks", input={"ticks": 1}, multitask_strategy="reject")
        # interrupt: the first run is cancelled, its finished steps kept
        second = await c.runs.create(tid, "ticks", input={"ticks": 1},
                                     multitask_strategy="interrupt")
        await c.runs.join(tid, second["run_id"])
        assert (await c.runs.get(tid, first["run_id"]))["status"] == "interrupted"
        assert (await c.runs.get(tid, second["run_id"]))["status"] == "success"
        # rollback: the run and what it wrote are gone
        tid2 = (await c.threads.create())["thread_id"]
        await c.runs.wait(tid2, "chain", input={"items": ["kept"]})
        doomed = await c.runs.create(tid2, "ticks", input=slow)
        await asyncio.sleep(0.2)
        after = await c.runs.create(tid2, "chain", input={"items": ["new"]},
                                    multitask_strategy="rollback")
        final = await c.runs.join(tid2, after["run_id"])
        assert final["items"] == ["kept", "a", "b", "c", "new", "a", "b", "c"]
        with pytest.raises(NotFoundError):
            await c.runs.get(tid2, doomed["run_id"])
        # enqueue (the default): runs one after the other, in order
        tid3 = (await c.threads.create())["thread_id"]
        r1 = await c.runs.create(tid3, "chain", input={"items": [1]})
        r2 = await c.runs.create(tid3, "chain", input={"items": [2]})
        await c.runs.join(tid3, r2["run_id"])
        assert (await c.runs.get(tid3, r1["run_id"]))["status"] == "success"
        assert (await c.threads.get_state(tid3))["values"]["items"] == [
            1, "a", "b", "c", 2, "a", "b", "c"]

    sdk(server, main)


def test_cancel_stops_a_run_at_once(server: Any) -> None:
    async def main(c: Any) -> None:
        tid = (await c.threads.create())["thread_id"]
        run = await c.runs.create(tid, "ticks", input={"ticks": 1000, "delay": 0.05})
        async for p in c.runs.join_stream(tid, run["run_id"]):
            if p.event == "metadata":
                break
        start = time.monotonic()
        await c.runs.cancel(tid, run["run_id"], wait=True)
        assert time.monotonic() - start < 1.0
        assert (await c.runs.get(tid, run["run_id"]))["status"] == "interrupted"
        thread = await c.threads.get(tid)
        assert thread["status"] in ("interrupted", "idle")
        with pytest.raises(NotFoundError):
            await c.runs.cancel(tid, "01a24263-0000-7000-8000-000000000000")

    sdk(server, main)


def test_stateless_runs(server: Any) -> None:
    async def main(c: Any) -> None:
        assert await c.runs.wait(None, "chain", input={"items": []}) == {
            "items": ["a", "b", "c"]}
        got = await collect(c.runs.stream(None, "chain", input={"items": []},
                                          stream_mode="updates"))
        assert [p.event for p in got] == ["metadata", "updates", "updates", "updates", "end"]
        with pytest.raises(Exception, match="thread_id"):
            await c.runs.wait(None, "ask", command={"resume": 1})
        paused = await c.runs.wait(None, "ask", input={"question": "q?"})  # in memory
        assert paused["__interrupt__"][0]["value"] == {"question": "q?"}

    sdk(server, main)
    with server.client(SERVER_KEY) as http:
        with http.stream("POST", "/runs/stream", json={"assistant_id": "chain",
                                                        "input": {}}) as response:
            location = response.headers["location"]
            assert location.startswith("/runs/")
            assert location.endswith("/stream")
            body = b"".join(response.iter_raw())
        again = http.get(location)  # the Location of a stateless stream exists
        assert again.status_code == 200
        assert again.content == body


def test_after_seconds_and_run_listing(server: Any) -> None:
    async def main(c: Any) -> None:
        tid = (await c.threads.create())["thread_id"]
        start = time.monotonic()
        run = await c.runs.create(tid, "chain", input={}, after_seconds=0.5)
        assert (await c.runs.get(tid, run["run_id"]))["status"] == "pending"
        await c.runs.join(tid, run["run_id"])
        assert time.monotonic() - start >= 0.5
        listed = await c.runs.list(tid, status="success")
        assert [r["run_id"] for r in listed] == [run["run_id"]]
        await c.runs.delete(tid, run["run_id"])
        assert await c.runs.list(tid) == []

    sdk(server, main)


def test_a_hundred_concurrent_streams(server: Any) -> None:
    async def one(c: Any, i: int) -> list[Any]:
        return await collect(c.runs.stream(None, "chain", input={"items": [i], "n_custom": 3},
                                           stream_mode=["custom", "values"]))

    async def main(c: Any) -> None:
        results = await asyncio.gather(*(one(c, i) for i in range(100)))
        for i, got in enumerate(results):
            assert got[-2].data == {"items": [i, "a", "b", "c"], "n_custom": 3}
            assert [p.data["i"] for p in got if p.event == "custom"] == [0, 1, 2]

    sdk(server, main)


def test_runs_start_at_once(server: Any) -> None:
    async def main(c: Any) -> float:
        tid = (await c.threads.create())["thread_id"]
        times = []
        for _ in range(10):
            start = time.perf_counter()
            await c.runs.wait(tid, "chain", input={})
            times.append(time.perf_counter() - start)
        return sorted(times)[5]

    assert sdk(server, main) < 0.2  # LangGraph's dev server: ~1 s (queue polling)


def test_raw_sse_framing(server: Any) -> None:
    with server.client(SERVER_KEY) as http:
        tid = http.post("/threads", json={}).json()["thread_id"]
        with http.stream("POST", f"/threads/{tid}/runs/stream",
                         json={"assistant_id": "chain", "input": {"items": []}}) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            assert response.headers["cache-control"] == "no-store"
            rid = response.headers["content-location"].rsplit("/", 1)[1]
            assert response.headers["content-location"] == f"/threads/{tid}/runs/{rid}"
            assert response.headers["location"] == f"/threads/{tid}/runs/{rid}/stream"
            raw = b"".join(response.iter_raw())
    frames = raw.split(b"\r\n\r\n")
    assert frames[0] == (b'event: metadata\r\ndata: {"run_id":"%s","attempt":1}\r\nid: 1'
                         % rid.encode())
    assert frames[1] == b'event: values\r\ndata: {"items":[]}\r\nid: 2'
    assert frames[-2] == b"event: end\r\ndata: null"
    assert frames[-1] == b""
    with server.client(SERVER_KEY) as http:
        wait = http.post(f"/threads/{tid}/runs/wait", json={"assistant_id": "chain"})
        assert wait.headers["location"].startswith(f"/threads/{tid}/runs/")
        assert wait.headers["location"].endswith("/join")


def test_unknown_stream_mode_and_bad_cursor(server: Any) -> None:
    with server.client(SERVER_KEY) as http:
        tid = http.post("/threads", json={}).json()["thread_id"]
        run = http.post(f"/threads/{tid}/runs", json={"assistant_id": "chain"}).json()
        path = f"/threads/{tid}/runs/{run['run_id']}/stream"
        assert http.get(path, params={"stream_mode": "events"}).status_code == 422
        assert http.get(path, headers={"Last-Event-ID": "17-0"}).status_code == 422
        ok = http.get(path, params={"stream_mode": '["values","custom"]'})
        assert ok.status_code == 200
        assert b"event: values" in ok.content
        for mode in ("events", "checkpoints", "lifecycle"):
            bad = http.post(f"/threads/{tid}/runs", json={"assistant_id": "chain",
                                                          "stream_mode": mode})
            assert bad.status_code == 422, mode


def test_api_key(server: Any) -> None:
    with httpx.Client(base_url=server.url) as http:
        assert http.get("/ok").status_code == 200
        for path in ("/info", "/openapi.json", "/assistants/search", "/threads/x"):
            response = http.get(path, headers={"x-api-key": "wrong"})
            assert response.status_code == 401
            assert "detail" in response.json()
            assert http.get(path).status_code == 401
        assert http.post("/assistants/search", json={},
                         headers={"x-api-key": SERVER_KEY}).status_code == 200
        # The page's static files need no key (the page asks for it on a 401).
        assert http.get("/", follow_redirects=True).status_code == 200
        assert http.get("/ui/").headers["content-type"].startswith("text/html")
        assert http.post("/ui/").status_code == 401
