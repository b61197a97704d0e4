"""The shipped token server (``trigraph.llm.testing``), read with bare httpx:
the protocol it speaks, its knobs, and what it records."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import pytest
import trio
import trio.testing

from trigraph.llm.testing import Script, TokenServer, open_token_server, serve, story_tokens


@pytest.fixture
async def server() -> AsyncIterator[TokenServer]:
    async with open_token_server(static={"/data/readings.json": {"bpm": [72, 75]}}) as server:
        yield server


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


async def chat_events(
    client: httpx.AsyncClient, server: TokenServer, **body: object
) -> list[str]:
    """The ``data`` of every event of a streamed answer (read to the end)."""
    body = {"model": "m", "messages": [{"role": "user", "content": "a fox"}],
            "stream": True, **body}
    async with client.stream("POST", server.base_url + "/chat/completions", json=body) as r:
        assert r.status_code == 200
        assert r.headers["content-type"] == "text/event-stream"
        return [line[6:] async for line in r.aiter_lines() if line.startswith("data: ")]


def test_story_is_deterministic_and_made_of_the_prompt() -> None:
    tokens = list(story_tokens("Explain the Trio nursery, please"))
    assert tokens == list(story_tokens("Explain the Trio nursery, please"))
    text = "".join(tokens)
    assert text.startswith("Once upon a time, there was a trio.")
    assert "nursery" in text
    assert all(t.startswith(" ") for t in tokens[1:])
    assert "".join(story_tokens("")).startswith("Once upon a time, there was a trio.")


async def test_streamed_answer_protocol(server: TokenServer, client: httpx.AsyncClient) -> None:
    events = await chat_events(client, server, stream_options={"include_usage": True})
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert all(c["object"] == "chat.completion.chunk" and c["model"] == "m" for c in chunks)
    text = [c["choices"][0]["delta"]["content"] for c in chunks[1:-2]]
    assert text == list(story_tokens("a fox"))
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["completion_tokens"] == len(text)


async def test_max_tokens_cuts_the_answer_with_finish_reason_length(
    server: TokenServer, client: httpx.AsyncClient
) -> None:
    events = await chat_events(client, server, max_tokens=2)
    chunks = [json.loads(e) for e in events[:-1]]
    assert [c["choices"][0]["delta"].get("content") for c in chunks[1:-1]] == ["Once", " upon"]
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"


async def test_fixed_answer(server: TokenServer, client: httpx.AsyncClient) -> None:
    server.script = Script(answer="hello big world")
    events = await chat_events(client, server)
    assert [json.loads(e)["choices"][0]["delta"].get("content") for e in events[1:-2]] == [
        "hello", " big", " world"]
    server.script = Script(answer=["a", "b"])
    events = await chat_events(client, server)
    assert [json.loads(e)["choices"][0]["delta"].get("content") for e in events[1:-2]] == [
        "a", "b"]


async def test_cut_after_ends_the_body_without_done(
    server: TokenServer, client: httpx.AsyncClient
) -> None:
    server.script = Script(cut_after=2)
    events = await chat_events(client, server)
    assert len(events) == 3  # the role chunk and two tokens
    assert "[DONE]" not in events


async def test_non_streaming_answer(server: TokenServer, client: httpx.AsyncClient) -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "a fox"}]}
    response = await client.post(server.base_url + "/chat/completions", json=body)
    choice = response.json()["choices"][0]
    assert choice["message"]["content"] == "".join(story_tokens("a fox"))
    assert choice["finish_reason"] == "stop"


async def test_error_script_and_bad_requests(
    server: TokenServer, client: httpx.AsyncClient
) -> None:
    server.script = Script(status=429)
    url = server.base_url + "/chat/completions"
    response = await client.post(url, json={"messages": []})
    assert response.status_code == 429
    assert response.json()["error"]["message"] == "Rate limit reached (trigraph token server)"
    server.script = Script()
    assert (await client.post(url, content=b"{nope")).status_code == 400
    assert (await client.get(url)).status_code == 405
    missing = await client.get(server.base_url + "/embeddings")
    assert missing.status_code == 404
    assert "no route" in missing.json()["error"]["message"]


async def test_models_and_static_routes(server: TokenServer, client: httpx.AsyncClient) -> None:
    models = await client.get(server.base_url + "/models")
    assert models.json()["data"][0]["id"] == "trigraph-story"
    root = server.base_url.removesuffix("/v1")
    assert (await client.get(root + "/data/readings.json")).json() == {"bpm": [72, 75]}


async def test_script_can_depend_on_the_request(
    server: TokenServer, client: httpx.AsyncClient
) -> None:
    server.script = lambda body: Script(answer=str(body["model"]))
    events = await chat_events(client, server, model="echo")
    assert json.loads(events[1])["choices"][0]["delta"]["content"] == "echo"


async def test_records_connections_and_hangups(
    server: TokenServer, client: httpx.AsyncClient
) -> None:
    await chat_events(client, server)
    await chat_events(client, server)
    stats = server.statistics()
    assert (stats.connections, stats.requests, stats.aborted) == (1, 2, 0)  # kept alive
    server.script = Script(stall_after=1)
    port = int(server.base_url.rsplit(":", 1)[1].split("/")[0])
    body = b'{"messages": [], "stream": true}'
    async with await trio.open_tcp_stream("127.0.0.1", port) as raw:
        await raw.send_all(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                           b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        assert b"200" in await raw.receive_some()
    await trio.testing.wait_all_tasks_blocked()
    assert server.statistics().aborted == 1
    await client.aclose()
    await server.wait_idle()
    assert server.statistics().open_connections == 0


async def test_tokens_per_second_paces_the_answer() -> None:
    async with open_token_server(tokens_per_second=200) as server, httpx.AsyncClient() as client:
        start = trio.current_time()
        events = await chat_events(client, server, max_tokens=4)
        assert trio.current_time() - start >= 4 / 200
    assert len(events) == 7  # role, 4 tokens, finish, [DONE]


async def test_serve_in_a_nursery_reports_its_server() -> None:
    async with trio.open_nursery() as nursery, httpx.AsyncClient() as client:
        server = await nursery.start(serve)
        assert server.base_url.startswith("http://127.0.0.1:")
        assert (await client.get(server.base_url + "/models")).status_code == 200
        nursery.cancel_scope.cancel()
