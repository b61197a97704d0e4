"""``ChatModel`` against the shipped token server on 127.0.0.1: tokens, the
``"messages"`` stream of a graph, concurrency, errors, timeouts, and what
cancellation closes.

Real sockets and ``MockClock`` do not mix (the clock jumps while a task
waits for I/O), so these tests use the real clock, answers without delay,
and ``wait_all_tasks_blocked()`` (never a sleep) to let the server notice
what the client did.
"""

from __future__ import annotations

import operator
from collections.abc import AsyncIterator
from typing import Annotated, Any, TypedDict

import httpx
import pytest
import trio
import trio.testing

from trigraph import END, START, NodeTimeoutError, RetryPolicy, Send, StateGraph
from trigraph.events import Token, Update
from trigraph.llm import ChatModel, LLMError
from trigraph.llm.testing import Script, TokenServer, open_token_server, story_tokens


@pytest.fixture
async def server() -> AsyncIterator[TokenServer]:
    async with open_token_server() as server:
        yield server


@pytest.fixture
async def model(server: TokenServer) -> AsyncIterator[ChatModel]:
    async with ChatModel(server.base_url, "story", api_key="sk-test") as model:
        yield model


def story(prompt: str) -> list[str]:
    return list(story_tokens(prompt))


async def read_into(received: list[str], model: ChatModel, prompt: str, **options: Any) -> None:
    """Stream an answer, keeping each token in *received* (even if it fails)."""
    async with model.stream(prompt, **options) as tokens:
        async for text in tokens:
            received.append(text)


async def seen_hangup(server: TokenServer) -> None:
    """Let the server run until it has noticed what the client did."""
    await trio.testing.wait_all_tasks_blocked()
    stats = server.statistics()
    assert stats.open_connections == 0, stats
    assert stats.aborted == 1, stats


# -- answers -------------------------------------------------------------


async def test_stream_yields_the_tokens_in_order(model: ChatModel) -> None:
    prompt = "Tell me about a fox, a river and a lantern"
    async with model.stream(prompt) as tokens:
        received = [text async for text in tokens]
    assert received == story(prompt)
    assert len(received) > 10
    assert await model.complete(prompt) == "".join(received)


async def test_request_body_and_headers(server: TokenServer) -> None:
    async with ChatModel(server.base_url, "m1", "sk-1", headers={"X-Run": "7"},
                         temperature=0.5, max_tokens=50) as model:
        await model.complete("a fox", temperature=0.0, top_p=0.9)
        messages = [{"role": "system", "content": "be brief"},
                    {"role": "user", "content": "an owl"}]
        assert await model.complete(messages) == "".join(story("an owl"))
    first, second = server.requests
    assert first.body == {
        "model": "m1", "temperature": 0.0, "max_tokens": 50, "top_p": 0.9,
        "messages": [{"role": "user", "content": "a fox"}], "stream": True,
    }
    assert second.body["messages"] == messages
    assert first.headers["authorization"] == "Bearer sk-1"
    assert first.headers["x-run"] == "7"


async def test_environment_defaults(server: TokenServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url + "/")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
    monkeypatch.setenv("OPENAI_MODEL", "env-model")
    async with ChatModel() as model:
        assert model.base_url == server.base_url
        await model.complete("x")
    async with ChatModel(api_key="") as model:  # "" sends no key
        await model.complete("x")
    assert server.requests[0].body["model"] == "env-model"
    assert server.requests[0].headers["authorization"] == "Bearer sk-env"
    assert "authorization" not in server.requests[1].headers


def test_bad_arguments() -> None:
    model = ChatModel("http://127.0.0.1:9/v1", "m")
    with pytest.raises(TypeError, match="stream="):
        model.stream("x", stream=False)
    with pytest.raises(TypeError, match="messages="):
        ChatModel("http://127.0.0.1:9/v1", "m", messages=[])
    with pytest.raises(TypeError, match="non-empty list"):
        model.stream([])


async def test_tokens_arrive_before_the_answer_ends(server: TokenServer, model: ChatModel) -> None:
    # The server sends 3 tokens and stalls: the reader gets all 3 without the
    # rest, so nothing waits for more data (or for the end) before delivering.
    server.script = Script(stall_after=3)
    with trio.fail_after(5):
        async with model.stream("a fox") as tokens:
            received = [await tokens.receive() for _ in range(3)]
    assert received == story("a fox")[:3]


async def test_connection_is_reused_after_a_complete_answer(
    server: TokenServer, model: ChatModel
) -> None:
    for _ in range(3):
        await model.complete("a fox")
    assert server.statistics().connections == 1


# -- the "messages" stream of a graph ------------------------------------


class Story(TypedDict, total=False):
    topic: str
    first: str
    second: str


def two_step_graph(model: ChatModel) -> Any:
    async def first(state: Story) -> Story:
        return {"first": await model.complete(f"a story about {state['topic']}")}

    async def second(state: Story) -> Story:
        async with model.stream(f"continue with {state['first']}") as tokens:
            return {"second": "".join([text async for text in tokens])}

    g = StateGraph(Story)
    g.add_node(first).add_node(second)
    g.add_edge(START, "first").add_edge("first", "second").add_edge("second", END)
    return g.compile()


async def test_node_tokens_reach_the_messages_stream_in_order_with_updates(
    model: ChatModel,
) -> None:
    graph = two_step_graph(model)
    async with graph.stream({"topic": "owls"}, modes=("messages", "updates")) as events:
        seen = [event async for event in events]
    first = "".join(story("a story about owls"))
    second = story(f"continue with {first}")
    n1 = len(story("a story about owls"))
    assert [(type(e).__name__, e.node, e.step) for e in seen] == (
        [("Token", "first", 1)] * n1 + [("Update", "first", 1)]
        + [("Token", "second", 2)] * len(second) + [("Update", "second", 2)]
    )
    tokens = [e for e in seen if isinstance(e, Token)]
    assert "".join(t.text for t in tokens[:n1]) == first
    assert [t.text for t in tokens[n1:]] == second
    assert {(t.model, t.stream_id, t.ns) for t in tokens} == {("story", 0, ())}
    updates = [e for e in seen if isinstance(e, Update)]
    assert updates[1].update == {"second": "".join(second)}


async def test_tokens_are_not_sent_when_messages_were_not_asked_for(model: ChatModel) -> None:
    graph = two_step_graph(model)
    async with graph.stream({"topic": "owls"}, modes="updates") as events:
        assert [type(e) async for e in events] == [Update, Update]


async def test_parallel_nodes_each_keep_their_tokens_before_their_update() -> None:
    async with open_token_server(tokens_per_second=5_000) as server, \
            ChatModel(server.base_url, "story") as model:

        def asker(topic: str) -> Any:
            async def ask(state: dict[str, Any]) -> dict[str, Any]:
                one = await model.complete(f"about {topic}")
                two = await model.complete(f"more about {topic}")
                return {topic: one + two}
            return ask

        g = StateGraph(dict)
        for topic in ("moles", "voles"):
            g.add_node(topic, asker(topic)).add_edge(START, topic).add_edge(topic, END)
        async with g.compile().stream({}, modes=("messages", "updates")) as events:
            seen = [event async for event in events]
    for topic in ("moles", "voles"):
        tokens = [(i, e) for i, e in enumerate(seen) if isinstance(e, Token) and e.node == topic]
        [update] = [i for i, e in enumerate(seen) if isinstance(e, Update) and e.node == topic]
        assert tokens[-1][0] < update  # every token of the node before its update
        by_answer = [[e.text for _, e in tokens if e.stream_id == n] for n in (0, 1)]
        assert by_answer == [story(f"about {topic}"), story(f"more about {topic}")]
        ids = [e.stream_id for _, e in tokens]
        assert ids == sorted(ids)  # the answers one after the other, each in order


class Questions(TypedDict):
    questions: list[str]
    answers: Annotated[list[str], operator.add]


@pytest.mark.slow
async def test_100_concurrent_streams_in_one_superstep() -> None:
    gate = trio.Event()
    async with open_token_server(script=Script(hold=gate)) as server, \
            ChatModel(server.base_url, "story") as model:

        async def ask(question: str) -> dict[str, list[str]]:
            return {"answers": [await model.complete(question)]}

        g = StateGraph(Questions)
        g.add_node(ask)
        g.add_conditional_edges(START, lambda s: [Send("ask", q) for q in s["questions"]])
        g.add_edge("ask", END)
        graph = g.compile()
        questions = [f"question {i} about topic{i}" for i in range(100)]
        async with trio.open_nursery() as nursery:
            results: list[dict[str, Any]] = []
            nursery.start_soon(lambda: _append(results, graph.ainvoke(
                {"questions": questions, "answers": []})))
            await trio.testing.wait_all_tasks_blocked()
            # Every answer has begun: 100 requests held open at the same time.
            assert server.statistics().open_connections == 100
            assert len(server.requests) == 100
            gate.set()
    assert results[0]["answers"] == ["".join(story(q)) for q in questions]


async def _append(results: list[dict[str, Any]], run: Any) -> None:
    results.append(await run)


# -- errors --------------------------------------------------------------


@pytest.mark.parametrize(("status", "retryable"), [(400, False), (401, False),
                                                   (429, True), (500, True), (503, True)])
async def test_error_status_raises_llm_error(
    server: TokenServer, model: ChatModel, status: int, retryable: bool
) -> None:
    server.script = Script(status=status, error=f"no way ({status})")
    with pytest.raises(LLMError) as info:
        async with model.stream("x"):
            pytest.fail("entered a stream that had an error status")  # pragma: no cover
    assert info.value.status == status
    assert info.value.message == f"no way ({status})"
    assert info.value.retryable is retryable
    assert f"HTTP {status}" in str(info.value)


async def test_unknown_route_is_an_llm_error(server: TokenServer) -> None:
    async with ChatModel(server.base_url.removesuffix("/v1") + "/nope", "m") as model:
        with pytest.raises(LLMError, match="base_url") as info:
            await model.complete("x")
    assert info.value.status == 404


async def test_connection_refused_is_a_retryable_llm_error() -> None:
    listener = (await trio.open_tcp_listeners(0, host="127.0.0.1"))[0]
    port = listener.socket.getsockname()[1]
    await listener.aclose()  # nothing listens there now
    async with ChatModel(f"http://127.0.0.1:{port}/v1", "m") as model:
        with pytest.raises(LLMError) as info:
            await model.complete("x")
    assert info.value.retryable
    assert info.value.status is None
    assert isinstance(info.value.__cause__, httpx.ConnectError)


async def test_stream_cut_before_done_is_an_error(server: TokenServer, model: ChatModel) -> None:
    server.script = Script(cut_after=3)
    received: list[str] = []
    with pytest.raises(LLMError, match="after 3 tokens without 'data: \\[DONE\\]'") as info:
        await read_into(received, model, "a fox")
    assert received == story("a fox")[:3]
    assert info.value.retryable


async def test_connection_dropped_mid_answer_is_an_error(
    server: TokenServer, model: ChatModel
) -> None:
    server.script = Script(drop_after=2)
    with pytest.raises(LLMError) as info:
        await model.complete("a fox")
    assert info.value.retryable
    assert isinstance(info.value.__cause__, httpx.RemoteProtocolError)


async def test_retry_policy_retries_a_rate_limit(server: TokenServer, model: ChatModel) -> None:
    server.script = lambda body: Script(status=429) if len(server.requests) == 1 else Script()

    async def ask(state: dict[str, Any]) -> dict[str, Any]:
        return {"answer": await model.complete("a fox")}

    g = StateGraph(dict)
    g.add_node(ask, retry=RetryPolicy(initial_interval=0, jitter=False))
    g.add_edge(START, "ask").add_edge("ask", END)
    final = await g.compile().ainvoke({})
    assert final["answer"] == "".join(story("a fox"))
    assert len(server.requests) == 2


# -- timeouts ------------------------------------------------------------


async def test_stalled_stream_times_out(server: TokenServer) -> None:
    server.script = Script(stall_after=2)
    async with ChatModel(server.base_url, "story", timeout=None) as model:
        received: list[str] = []
        with trio.fail_after(5), pytest.raises(LLMError, match="read timeout") as info:
            await read_into(received, model, "a fox", timeout=0.05)
    assert received == story("a fox")[:2]
    assert info.value.retryable
    assert isinstance(info.value.__cause__, httpx.ReadTimeout)
    await seen_hangup(server)


async def test_call_timeout_inherits_unless_given(server: TokenServer) -> None:
    sent: list[dict[str, float | None]] = []

    async def record(request: httpx.Request) -> None:
        sent.append(request.extensions["timeout"])

    async with httpx.AsyncClient(event_hooks={"request": [record]}) as client:
        model = ChatModel(server.base_url, "story", timeout=3.0, client=client)
        await model.complete("x")
        await model.complete("x", timeout=None)
        await model.complete("x", timeout=httpx.Timeout(1.0, connect=2.0))
    assert sent[0] == {"connect": 3.0, "read": 3.0, "write": 3.0, "pool": 3.0}
    assert sent[1] == {"connect": None, "read": None, "write": None, "pool": None}
    assert sent[2] == {"connect": 2.0, "read": 1.0, "write": 1.0, "pool": 1.0}


# -- cancellation: what gets closed --------------------------------------


async def test_leaving_stream_early_closes_the_connection(
    server: TokenServer, model: ChatModel
) -> None:
    server.script = Script(stall_after=5)
    async with model.stream("a fox") as tokens:
        async for _ in tokens:
            break
    await seen_hangup(server)


async def test_error_in_the_block_closes_the_connection_and_propagates(
    server: TokenServer, model: ChatModel
) -> None:
    server.script = Script(stall_after=5)

    async def fail_inside() -> None:
        async with model.stream("a fox") as tokens:
            await tokens.receive()
            raise KeyError("mine")

    with pytest.raises(KeyError, match="mine"):
        await fail_inside()
    await seen_hangup(server)


async def test_cancelling_the_reader_closes_the_connection(
    server: TokenServer, model: ChatModel
) -> None:
    server.script = Script(stall_after=1)
    first = trio.Event()

    async def read() -> None:
        async with model.stream("a fox") as tokens:
            async for _ in tokens:
                first.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(read)
        await first.wait()
        nursery.cancel_scope.cancel()
    await seen_hangup(server)


def one_node_graph(model: ChatModel, started: trio.Event | None = None, **options: Any) -> Any:
    async def ask(state: dict[str, Any]) -> dict[str, Any]:
        async with model.stream("a fox") as tokens:
            parts = []
            async for text in tokens:
                parts.append(text)
                if started is not None:
                    started.set()
        return {"answer": "".join(parts)}

    g = StateGraph(dict)
    g.add_node(ask, **options).add_edge(START, "ask").add_edge("ask", END)
    return g.compile()


async def test_cancelling_the_run_closes_the_connection(
    server: TokenServer, model: ChatModel
) -> None:
    server.script = Script(stall_after=2)
    started = trio.Event()
    graph = one_node_graph(model, started)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(graph.ainvoke, {})
        await started.wait()
        nursery.cancel_scope.cancel()
    await seen_hangup(server)


async def test_leaving_the_graph_stream_closes_the_connection(
    server: TokenServer, model: ChatModel
) -> None:
    server.script = Script(stall_after=2)
    async with one_node_graph(model).stream({}, modes="messages") as events:
        async for event in events:
            assert isinstance(event, Token)
            break
    await seen_hangup(server)


async def test_node_timeout_closes_the_connection(server: TokenServer, model: ChatModel) -> None:
    server.script = Script(stall_after=2)
    with pytest.raises(NodeTimeoutError):
        await one_node_graph(model, timeout=0.05).ainvoke({})
    await seen_hangup(server)


# -- the channel and the pool --------------------------------------------


async def test_channel_rules(server: TokenServer, model: ChatModel) -> None:
    server.script = Script(stall_after=3)
    async with model.stream("a fox") as tokens:
        for _ in range(3):
            await tokens.receive()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(tokens.receive)  # waits: the server stalls after 3
            await trio.testing.wait_all_tasks_blocked()
            with pytest.raises(trio.BusyResourceError):
                await tokens.receive()
            nursery.cancel_scope.cancel()
    with pytest.raises(trio.ClosedResourceError):
        await tokens.receive()
    await seen_hangup(server)


async def test_aclose_of_the_channel_closes_the_response(
    server: TokenServer, model: ChatModel
) -> None:
    server.script = Script(stall_after=3)
    async with model.stream("a fox") as tokens:
        await tokens.receive()
        await tokens.aclose()
        await seen_hangup(server)  # before the block is left
        with pytest.raises(trio.ClosedResourceError):
            await tokens.receive()


async def test_cancelled_receive_ends_the_answer(server: TokenServer, model: ChatModel) -> None:
    server.script = Script(stall_after=2)
    async with model.stream("a fox") as tokens:
        assert await tokens.receive() == "Once"
        with trio.CancelScope() as scope:
            scope.cancel()
            await tokens.receive()  # cancelled at its checkpoint: nothing lost
        assert await tokens.receive() == " upon"
        async with trio.open_nursery() as nursery:
            nursery.start_soon(tokens.receive)
            await trio.testing.wait_all_tasks_blocked()  # waiting for the stalled server
            nursery.cancel_scope.cancel()
        await seen_hangup(server)  # closed at once, inside the block
        with pytest.raises(LLMError, match="abandoned after 2 tokens"):
            await tokens.receive()


async def test_end_of_answer_is_repeated(model: ChatModel) -> None:
    async with model.stream("x") as tokens:
        assert [t async for t in tokens]
        with pytest.raises(trio.EndOfChannel):
            await tokens.receive()


async def test_checkpoints(model: ChatModel) -> None:
    with trio.testing.assert_checkpoints():
        await model.complete("a fox")
    with trio.testing.assert_checkpoints():
        async with model.stream("a fox") as tokens:
            pass
    async with model.stream("a fox") as tokens:
        await tokens.receive()  # the first read brings the whole short answer
        with trio.testing.assert_checkpoints():
            await tokens.receive()  # so this one is served from memory
    with trio.testing.assert_checkpoints():
        await model.aclose()


async def test_aclose_closes_the_own_pool(server: TokenServer) -> None:
    model = ChatModel(server.base_url, "story")
    await model.complete("x")
    await trio.testing.wait_all_tasks_blocked()
    assert server.statistics().open_connections == 1  # kept alive in the pool
    await model.aclose()
    await model.aclose()  # twice is fine
    await trio.testing.wait_all_tasks_blocked()
    assert server.statistics().open_connections == 0
    with pytest.raises(RuntimeError, match="closed"):
        await model.complete("x")


async def test_a_client_passed_in_stays_open(server: TokenServer) -> None:
    async with httpx.AsyncClient() as client:
        async with ChatModel(server.base_url, "story", client=client) as model:
            await model.complete("x")
        assert not client.is_closed
        response = await client.get(server.base_url + "/models")
        assert response.status_code == 200


async def test_async_generator_node_may_yield_inside_stream(
    server: TokenServer, model: ChatModel
) -> None:
    # stream() holds no nursery or cancel scope around its block, so an
    # async-generator node can yield chunks from inside it; leaving the graph's
    # stream closes the generator, and with it the HTTP response.
    server.script = Script(stall_after=3)

    async def summarise(state: dict[str, Any]) -> AsyncIterator[Any]:
        async with model.stream("a fox") as tokens:
            async for text in tokens:
                yield text.upper()

    g = StateGraph(dict)
    g.add_node(summarise).add_edge(START, "summarise").add_edge("summarise", END)
    async with g.compile().stream({}, modes="custom") as events:
        chunks = [(await events.receive()).data for _ in range(3)]  # type: ignore[union-attr]
    assert chunks == [t.upper() for t in story("a fox")[:3]]
    await seen_hangup(server)


# -- the public names ----------------------------------------------------


@pytest.mark.slow
def test_public_names() -> None:
    import subprocess
    import sys

    import trigraph
    import trigraph.llm

    assert trigraph.llm.ChatModel.__module__ == "trigraph.llm"
    assert trigraph.llm.LLMError.__module__ == "trigraph.llm"
    assert issubclass(trigraph.llm.LLMError, trigraph.TrigraphError)
    code = "import sys, trigraph; sys.exit('trigraph.llm' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
