"""ChatModel.ainvoke: tool calls assembled from real streams (the shipped
server playing each deviation of real servers), usage, tokens, the request
body, and the sans-IO assembler's edge cases."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from trigraph import END, START, StateGraph
from trigraph.events import Token
from trigraph.llm import ChatModel, LLMError
from trigraph.llm._toolcalls import ToolCallAssembler
from trigraph.llm.testing import QUIRKS, Script, open_token_server
from trigraph.messages import AIMessage, InvalidToolCall, ToolCall, ToolMessage, Usage
from trigraph.tools import tool

CALLS = [ToolCall("get_weather", {"city": "Paris", "units": "c"}, "call_a"),
         ToolCall("get_stock_price", {"ticker": "AAPL", "exchange": "NASDAQ"}, "call_b")]


def get_weather(city: str, units: str = "c") -> str:
    """Weather."""
    return "12"


def get_stock_price(ticker: str, exchange: str) -> str:
    """Price."""
    return "231.2"


QUIRK_SETS = [frozenset(), *({q} for q in sorted(QUIRKS)),
              frozenset({"whole_calls", "index_zero", "finish_stop"}),
              frozenset({"repeat_id", "repeat_name", "summary_chunk", "finish_with_last_delta"}),
              frozenset({"no_index", "empty_id", "object_arguments"})]


@pytest.mark.parametrize("quirks", QUIRK_SETS, ids=lambda q: "+".join(sorted(q)) or "openai")
async def test_parallel_calls_survive_every_server_deviation(quirks: frozenset[str]) -> None:
    script = Script(answer="Checking.", tool_calls=CALLS, quirks=quirks, fragment=3)
    async with open_token_server(script=script) as server, ChatModel(server.base_url) as model:
        reply = await model.ainvoke("weather and stock?", tools=[get_weather, get_stock_price])
    assert reply.tool_calls == tuple(CALLS)
    assert reply.invalid_tool_calls == ()
    assert reply.content == "Checking."
    assert reply.usage is not None
    assert reply.usage.output_tokens > 2


async def test_a_call_whose_arguments_are_not_json_is_kept_and_answered() -> None:
    script = Script(tool_calls=[("get_weather", '{"city": "Par'), ("get_weather", "[1]"),
                                ("get_weather", {"city": "Oslo"})])
    async with open_token_server(script=script) as server, ChatModel(server.base_url) as model:
        reply = await model.ainvoke("weather?", tools=[get_weather])
    assert [c.args for c in reply.tool_calls] == [{"city": "Oslo"}]
    bad = reply.invalid_tool_calls
    assert [(c.id, c.args) for c in bad] == [("call_0_0", '{"city": "Par'), ("call_0_1", "[1]")]
    assert "not valid JSON" in bad[0].error
    assert "JSON object, not list" in bad[1].error
    from trigraph.tools import ToolNode

    out = await ToolNode([get_weather]).ainvoke({"messages": [reply]})
    assert [(m.tool_call_id, m.status) for m in out["messages"]] == [
        ("call_0_2", "success"), ("call_0_0", "error"), ("call_0_1", "error")]


async def test_usage_and_tokens_reach_the_messages_stream() -> None:
    async with open_token_server(script=Script(answer="It is warm.", tool_calls=CALLS[:1])
                                 ) as server, ChatModel(server.base_url) as model:
        async def ask(state: dict[str, Any]) -> dict[str, Any]:
            reply = await model.ainvoke(state["q"], tools=[get_weather])
            return {"reply": reply}

        g = StateGraph(dict)
        g.add_node(ask).add_edge(START, "ask").add_edge("ask", END)
        tokens = []
        async with g.compile().stream({"q": "warm?"}, modes=("messages", "values")) as events:
            async for event in events:
                if isinstance(event, Token):
                    tokens.append(event.text)
                else:
                    final = event.state
    assert tokens == ["It", " is", " warm."]
    reply = final["reply"]
    assert reply.usage == Usage(1, reply.usage.output_tokens, 1 + reply.usage.output_tokens)


async def test_the_request_body() -> None:
    history = [("system", "sys"), "hi",
               AIMessage(tool_calls=[CALLS[0]], invalid_tool_calls=[
                   InvalidToolCall("get_weather", "{oops", "call_x", "bad")]),
               ToolMessage("12", "call_a"), ToolMessage("bad", "call_x", status="error"),
               {"role": "user", "content": "and now?"}]
    async with open_token_server(script=Script(answer="ok")) as server, \
            ChatModel(server.base_url, temperature=0) as model:
        await model.ainvoke(history, tools=[tool(get_weather), {
            "type": "function", "function": {"name": "raw", "parameters": {}}}],
            tool_choice="get_weather", parallel_tool_calls=False)
        body = server.requests[0].body
    assert body["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert body["parallel_tool_calls"] is False
    assert body["temperature"] == 0
    assert [t["function"]["name"] for t in body["tools"]] == ["get_weather", "raw"]
    assert body["messages"] == [
        {"role": "system", "content": "sys"}, {"role": "user", "content": "hi"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_a", "type": "function", "function": {
                "name": "get_weather", "arguments": '{"city": "Paris", "units": "c"}'}},
            {"id": "call_x", "type": "function", "function": {
                "name": "get_weather", "arguments": "{oops"}}]},
        {"role": "tool", "content": "12", "tool_call_id": "call_a"},
        {"role": "tool", "content": "bad", "tool_call_id": "call_x"},
        {"role": "user", "content": "and now?"}]


async def test_bad_tools_and_choices_fail_before_any_request() -> None:
    async with open_token_server() as server, ChatModel(server.base_url) as model:
        with pytest.raises(ValueError, match="two tools are named 'get_weather'"):
            await model.ainvoke("x", tools=[get_weather, tool(get_weather)])
        with pytest.raises(ValueError, match="tool_choice='nope' names no tool"):
            await model.ainvoke("x", tools=[get_weather], tool_choice="nope")
        with pytest.raises(ValueError, match="tool_choice= needs tools="):
            await model.ainvoke("x", tool_choice="auto")
        with pytest.raises(TypeError, match="message 0 of the prompt"):
            await model.ainvoke([("wizard", "hi")])
        assert server.requests == []


async def test_a_conversation_script_answers_by_turn() -> None:
    turns = [Script(tool_calls=[("get_weather", {"city": "Oslo"})]), Script(answer="Cold.")]
    async with open_token_server(script=turns) as server, ChatModel(server.base_url) as model:
        first = await model.ainvoke("Oslo?", tools=[get_weather])
        again = await model.ainvoke("Oslo?", tools=[get_weather])  # same turn, same answer
        assert first.tool_calls == again.tool_calls
        second = await model.ainvoke(["Oslo?", first, ToolMessage("-3", "call_0_0")])
        assert second.text == "Cold."
        with pytest.raises(LLMError, match="the script has 2 turn"):
            await model.ainvoke(["Oslo?", first, ToolMessage("-3", "call_0_0"), second, "more"])


def test_unknown_quirks_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown tool-call quirk"):
        Script(quirks={"sideways"})


def _chunks(*deltas: dict[str, Any]) -> list[dict[str, Any]]:
    return list(deltas)


def test_assembler_keys_and_repeats() -> None:
    a = ToolCallAssembler()
    # Ollama: index 0 for both, each call whole; an id that differs starts a new call.
    a.add([{"index": 0, "id": "x", "function": {"name": "f", "arguments": '{"a": 1}'}}])
    a.add([{"index": 0, "id": "y", "function": {"name": "g", "arguments": {"b": 2}}}])
    # no index, no id: continues the last call; vLLM's empty id likewise
    a.add([{"id": "", "function": {"arguments": ""}}])
    assert a.result() == ([ToolCall("f", {"a": 1}, "x"), ToolCall("g", {"b": 2}, "y")], [])


def test_assembler_never_concatenates_ids_or_names() -> None:
    a = ToolCallAssembler()
    for piece in ('{"ci', 'ty": ', '"Paris"}'):
        a.add([{"index": 0, "id": "call_1", "type": "function",
                "function": {"name": "get_weather", "arguments": piece}}])
    a.add([{"index": 0, "id": "call_1", "function": {"name": "get_weather",
                                                      "arguments": '{"city": "Paris"}'}}])
    assert a.result() == ([ToolCall("get_weather", {"city": "Paris"}, "call_1")], [])


def test_assembler_keeps_calls_it_cannot_read() -> None:
    a = ToolCallAssembler()
    a.add([{"index": 0, "function": {"arguments": "{}"}}])  # no name
    a.add([{"index": 1, "function": {"name": "f", "arguments": ""}}])  # no id, no args
    calls, invalid = a.result()
    assert [c.name for c in calls] == ["f"]
    assert calls[0].args == {}
    assert calls[0].id.startswith("call_")
    assert invalid[0].error == "the call has no tool name"


async def test_finish_and_usage_chunks_in_odd_places() -> None:
    # An empty-choices chunk first (Azure), the finish reason on the last argument
    # delta, usage with details; through httpx.MockTransport (a parsing edge case).
    lines = [
        {"choices": []},
        {"choices": [{"index": 0, "delta": {"tool_calls": [
            {"index": 0, "id": "c", "type": "function",
             "function": {"name": "f", "arguments": '{"x"'}}]}}]},
        {"choices": [{"index": 0, "finish_reason": "tool_calls", "delta": {"tool_calls": [
            {"index": 0, "function": {"arguments": ": 1}"}}]}}]},
        {"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8,
                                  "prompt_tokens_details": {"cached_tokens": 2},
                                  "completion_tokens_details": {"reasoning_tokens": 1}}},
    ]
    body = "".join(f"data: {json.dumps(x)}\n\n" for x in lines) + "data: [DONE]\n\n"

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text=body, headers={"content-type": "text/event-stream"})

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client, \
            ChatModel("http://test/v1", client=client) as model:
        reply = await model.ainvoke("x", tools=[get_weather])
    assert reply.tool_calls == (ToolCall("f", {"x": 1}, "c"),)
    assert reply.usage == Usage(5, 3, 8, 2, 1)
