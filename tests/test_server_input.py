"""Bad requests to ``trigraph serve``: each gets a 4xx with a JSON ``detail``,
never a 500 or a hang (raw httpx against the shared server subprocess)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from conftest import SERVER_KEY
from hypothesis import HealthCheck, given, settings, strategies as st

pytestmark = pytest.mark.slow

UNKNOWN = "01a24263-0000-7000-8000-000000000000"


@pytest.fixture(scope="module")
def http(server: Any) -> Iterator[httpx.Client]:
    with server.client(SERVER_KEY) as client:
        yield client


@pytest.fixture(scope="module")
def tid(http: httpx.Client) -> str:
    thread_id: str = http.post("/threads", json={}).json()["thread_id"]
    http.post(f"/threads/{thread_id}/runs/wait", json={"assistant_id": "chain"})
    return thread_id


def check(response: httpx.Response, status: int) -> Any:
    assert response.status_code == status, (response.status_code, response.text)
    body = response.json()
    assert "detail" in body, body
    return body["detail"]


def test_unknown_things_are_404_or_422(http: httpx.Client, tid: str) -> None:
    check(http.get(f"/threads/{UNKNOWN}"), 404)
    check(http.get(f"/threads/{UNKNOWN}/state"), 404)
    check(http.post(f"/threads/{UNKNOWN}/history", json={}), 404)
    check(http.patch(f"/threads/{UNKNOWN}", json={"metadata": {}}), 404)
    check(http.delete(f"/threads/{UNKNOWN}"), 404)
    check(http.get(f"/threads/{tid}/runs/{UNKNOWN}"), 404)
    check(http.get(f"/threads/{tid}/runs/{UNKNOWN}/join"), 404)
    check(http.get(f"/threads/{tid}/runs/{UNKNOWN}/stream"), 404)
    check(http.post(f"/threads/{tid}/runs/{UNKNOWN}/cancel"), 404)
    check(http.get(f"/threads/{tid}/state/000099-deadbeef"), 404)
    check(http.get(f"/assistants/{UNKNOWN}"), 404)
    check(http.get("/no/such/route"), 404)
    detail = check(http.post(f"/threads/{tid}/runs", json={"assistant_id": "nope"}), 422)
    assert "chain" in detail  # names the graphs that exist
    detail = check(http.post(f"/threads/{UNKNOWN}/runs", json={"assistant_id": "chain"}), 404)
    assert UNKNOWN in detail


def test_invalid_bodies_are_422_naming_the_field(http: httpx.Client, tid: str) -> None:
    path = f"/threads/{tid}/runs"
    check(http.post(path, content=b"{not json", headers={"content-type": "application/json"}),
          422)
    check(http.post(path, json=[1, 2]), 422)
    detail = check(http.post(path, json={}), 422)
    assert "assistant_id" in detail
    for bad in ({"input": "text"}, {"stream_mode": "everything"},
                {"multitask_strategy": "sometimes"}, {"after_seconds": -1},
                {"config": {"recursion_limit": 0}}, {"interrupt_before": ["ghost"]},
                {"durability": "forever"}, {"command": {"goto": "ghost"}},
                {"command": {"goto": [5]}}, {"command": {"goto": "a", "resume": 1}}):
        check(http.post(path, json={"assistant_id": "chain", **bad}), 422)
    check(http.post("/threads", json={"thread_id": ""}), 422)
    check(http.post("/threads/search", json={"limit": 0}), 422)
    check(http.post("/threads/search", json={"status": "sleeping"}), 422)
    check(http.post(f"/threads/{tid}/state", json={"values": {"nope": 1}}), 422)
    check(http.post(f"/threads/{tid}/state", json={"values": {}, "as_node": "ghost"}), 422)
    check(http.get(f"/threads/{tid}/runs", params={"limit": 0}), 422)
    check(http.get(f"/threads/{tid}/runs", params={"limit": "many"}), 422)
    run = http.post(path, json={"assistant_id": "chain"}).json()["run_id"]
    check(http.post(f"/threads/{tid}/runs/{run}/cancel", params={"action": "explode"}), 422)
    check(http.post("/runs/cancel", json={}), 422)


def test_request_body_limit(http: httpx.Client) -> None:
    huge = b'{"assistant_id":"chain","input":{"x":"' + b"a" * (11 * 1024 * 1024) + b'"}}'
    check(http.post("/runs", content=huge, headers={"content-type": "application/json"}), 413)

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        yield b'{"assistant_id":"chain","input":{"x":"'
        for _ in range(12):
            yield b"a" * (1024 * 1024)
        yield b'"}}'

    check(http.post("/runs", content=chunks(), headers={"content-type": "application/json"}),
          413)


def test_busy_thread_and_delete_conflicts_are_409(http: httpx.Client) -> None:
    tid = http.post("/threads", json={}).json()["thread_id"]
    run = http.post(f"/threads/{tid}/runs", json={"assistant_id": "ticks",
                                                  "input": {"ticks": 100, "delay": 0.02}})
    rid = run.json()["run_id"]
    check(http.post(f"/threads/{tid}/runs", json={"assistant_id": "chain",
                                                  "multitask_strategy": "reject"}), 409)
    check(http.delete(f"/threads/{tid}"), 409)
    check(http.delete(f"/threads/{tid}/runs/{rid}"), 409)
    http.post(f"/threads/{tid}/runs/{rid}/cancel", params={"wait": 1})
    assert http.delete(f"/threads/{tid}/runs/{rid}").status_code == 204
    assert http.delete(f"/threads/{tid}").status_code == 204


_json = st.recursive(
    st.none() | st.booleans() | st.integers(-10, 10**12) | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner,
                                                                max_size=4),
    max_leaves=12,
)
_fields = st.sampled_from([
    "assistant_id", "input", "command", "config", "stream_mode", "multitask_strategy",
    "interrupt_before", "checkpoint_id", "checkpoint", "after_seconds", "metadata", "values",
    "as_node", "limit", "offset", "status", "ids", "thread_id", "if_exists", "before",
    "on_disconnect", "durability", "stream_subgraphs", "sort_by",
])


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    path=st.sampled_from(["/runs", "/runs/wait", "/threads", "/threads/search",
                          "/assistants/search", "/threads/{tid}/runs/wait",
                          "/threads/{tid}/state", "/threads/{tid}/history",
                          "/threads/count", "/runs/cancel"]),
    body=st.dictionaries(_fields, _json, max_size=5) | _json,
)
def test_no_body_makes_a_500(http: httpx.Client, tid: str, path: str, body: Any) -> None:
    response = http.post(path.format(tid=tid), json=body)
    assert response.status_code < 500, (path, body, response.text)
    assert response.headers["content-type"].startswith("application/json"), response.text


def test_openapi_info_and_ui(http: httpx.Client) -> None:
    spec = http.get("/openapi.json").json()
    assert spec["openapi"].startswith("3.")
    for path in ("/threads/{thread_id}/runs/stream", "/runs/wait", "/assistants/search",
                 "/threads/{thread_id}/history", "/threads/{thread_id}/runs/{run_id}/join"):
        assert path in spec["paths"], path
    body = spec["paths"]["/runs/stream"]["post"]["requestBody"]
    ref = body["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert "assistant_id" in spec["components"]["schemas"][ref]["required"]
    info = http.get("/info").json()
    assert info["graphs"] == ["ask", "chain", "nested", "ticks"]
    root = http.get("/")
    assert root.status_code == 307
    assert root.headers["location"] == "/ui/"
    page = http.get("/ui/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
