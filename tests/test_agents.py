"""create_agent against the shipped token server: the loop, approval through
interrupt(), max_turns, streaming, and the errors at construction."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio
import trio.lowlevel

from trigraph import Command, GraphValidationError, MemoryCheckpointer
from trigraph.agents import MaxTurnsError, create_agent
from trigraph.events import Token
from trigraph.llm import ChatModel
from trigraph.llm.testing import Script, TokenServer, open_token_server
from trigraph.messages import MessagesState, ToolMessage

WEATHER = {"Paris": "12 C", "Oslo": "-3 C"}
sent: list[str] = []


async def get_weather(city: str) -> str:
    """Current weather of a city.

    Args:
        city: the city's name.
    """
    await trio.lowlevel.checkpoint()
    return WEATHER[city]


def send_email(to: str, body: str) -> str:
    """Send an email."""
    sent.append(f"{to}: {body}")
    return f"sent to {to}"


TURNS = [
    Script(answer="Let me look.", tool_calls=[("get_weather", {"city": "Paris"}),
                                              ("get_weather", {"city": "Oslo"})]),
    Script(tool_calls=[("send_email", {"to": "ada", "body": "Paris 12 C, Oslo -3 C"})]),
    Script(answer="Done: Paris is warmer."),
]


@pytest.fixture
async def server() -> AsyncIterator[TokenServer]:
    sent.clear()
    async with open_token_server(script=TURNS) as s:
        yield s


@pytest.fixture
async def model(server: TokenServer) -> AsyncIterator[ChatModel]:
    async with ChatModel(server.base_url, "scripted") as m:
        yield m


def history(state: dict[str, Any]) -> list[tuple[str, str]]:
    return [(m.type, m.text) for m in state["messages"]]


async def test_the_loop_runs_parallel_calls_and_streams_tokens(
    model: ChatModel, server: TokenServer
) -> None:
    agent = create_agent(model, [get_weather, send_email], system_prompt="Be brief.")
    tokens: list[str] = []
    async with agent.stream({"messages": ["Compare Paris and Oslo, mail ada"]},
                            modes=("messages", "values")) as events:
        async for event in events:
            if isinstance(event, Token):
                tokens.append(event.text)
            else:
                final = event.state
    assert "".join(tokens) == "Let me look.Done: Paris is warmer."
    assert history(final) == [
        ("human", "Compare Paris and Oslo, mail ada"), ("ai", "Let me look."),
        ("tool", "12 C"), ("tool", "-3 C"), ("ai", ""), ("tool", "sent to ada"),
        ("ai", "Done: Paris is warmer."),
    ]
    assert sent == ["ada: Paris 12 C, Oslo -3 C"]
    first = server.requests[0].body
    assert first["messages"][0] == {"role": "system", "content": "Be brief."}
    assert [t["function"]["name"] for t in first["tools"]] == ["get_weather", "send_email"]
    assert first["stream_options"] == {"include_usage": True}
    second = server.requests[1].body["messages"]
    assert second[2]["tool_calls"][1]["function"] == {"name": "get_weather",
                                                      "arguments": '{"city": "Oslo"}'}
    assert second[4] == {"role": "tool", "content": "-3 C", "tool_call_id": "call_0_1"}
    assert all(m.id for m in final["messages"])
    assert final["messages"][1].usage.output_tokens > 0


async def _run_to_approval(model: ChatModel) -> tuple[Any, dict[str, Any]]:
    agent = create_agent(model, [get_weather, send_email], checkpointer=MemoryCheckpointer(),
                         approve={"send_email"})
    paused = await agent.ainvoke({"messages": ["Compare and mail"]}, thread="t")
    return agent, paused


async def test_approval_pauses_before_the_gated_call(model: ChatModel) -> None:
    agent, paused = await _run_to_approval(model)
    (intr,) = paused["__interrupt__"]
    assert intr.node == "tools"
    assert intr.value == {"action_requests": [{
        "name": "send_email", "args": {"to": "ada", "body": "Paris 12 C, Oslo -3 C"},
        "id": "call_1_0"}]}
    assert sent == []
    final = await agent.ainvoke(Command(resume={"decisions": [{"type": "approve"}]}),
                                thread="t")
    assert sent == ["ada: Paris 12 C, Oslo -3 C"]
    assert history(final)[-1] == ("ai", "Done: Paris is warmer.")


async def test_a_rejected_call_is_answered_with_the_message(model: ChatModel) -> None:
    agent, _ = await _run_to_approval(model)
    final = await agent.ainvoke(
        Command(resume={"decisions": [{"type": "reject", "message": "not now"}]}), thread="t")
    assert sent == []
    rejected = [m for m in final["messages"] if isinstance(m, ToolMessage)][-1]
    assert (rejected.status, rejected.content) == ("error", "not now")


async def test_an_edited_call_runs_with_the_new_arguments(model: ChatModel) -> None:
    agent, _ = await _run_to_approval(model)
    await agent.ainvoke(Command(resume={"decisions": [
        {"type": "edit", "args": {"to": "bob", "body": "hi"}}]}), thread="t")
    assert sent == ["bob: hi"]


async def test_an_answer_that_does_not_fit_is_asked_again(model: ChatModel) -> None:
    agent, _ = await _run_to_approval(model)
    again = await agent.ainvoke(Command(resume={"decisions": []}), thread="t")
    (intr,) = again["__interrupt__"]
    assert "1 action request(s) need 1 decision(s), got 0" in intr.value["error"]
    assert sent == []
    await agent.ainvoke(Command(resume={"decisions": [{"type": "approve"}]}), thread="t")
    assert sent == ["ada: Paris 12 C, Oslo -3 C"]


async def test_max_turns_ends_the_run_with_a_clear_error(model: ChatModel) -> None:
    agent = create_agent(model, [get_weather, send_email], max_turns=2)
    with pytest.raises(MaxTurnsError, match="called its model 2 times") as info:
        await agent.ainvoke({"messages": ["go"]})
    assert "in node 'model'" in info.value.__notes__[0]
    assert sent == ["ada: Paris 12 C, Oslo -3 C"]  # the second turn's tools ran


async def test_a_custom_state_schema_keeps_its_keys(model: ChatModel) -> None:
    class State(MessagesState, total=False):
        user: str

    agent = create_agent(model, [get_weather, send_email], state_schema=State)
    final = await agent.ainvoke({"messages": ["go"], "user": "ada"})
    assert final["user"] == "ada"


def test_bad_agents_fail_at_construction() -> None:
    model = ChatModel("http://127.0.0.1:9/v1")

    class Model:
        def ainvoke(self, messages: Any) -> Any:  # not async
            return None

    with pytest.raises(GraphValidationError, match="ChatModel-like"):
        create_agent(Model(), [get_weather])
    with pytest.raises(GraphValidationError, match="ChatModel-like"):
        create_agent("gpt-4o", [get_weather])
    with pytest.raises(GraphValidationError, match="non-empty list of tools"):
        create_agent(model, [])
    with pytest.raises(GraphValidationError, match="two tools are named 'get_weather'"):
        create_agent(model, [get_weather, get_weather])
    with pytest.raises(GraphValidationError, match="names 'send', which is not a tool"):
        create_agent(model, [get_weather], approve={"send"}, checkpointer=MemoryCheckpointer())
    with pytest.raises(GraphValidationError, match="needs a checkpointer"):
        create_agent(model, [get_weather], approve={"get_weather"})
    with pytest.raises(GraphValidationError, match="max_turns"):
        create_agent(model, [get_weather], max_turns=0)

    class NoMessages(MessagesState):
        pass

    class Plain(dict):  # type: ignore[type-arg]
        messages: list[Any]

    with pytest.raises(GraphValidationError, match="add_messages"):
        create_agent(model, [get_weather], state_schema=Plain)
    create_agent(model, [get_weather], state_schema=NoMessages)


async def test_the_model_may_be_any_chatmodel_like_object() -> None:
    from trigraph.messages import AIMessage, ToolCall

    class Fake:
        calls = 0

        async def ainvoke(self, messages: Any, *, tools: Any = None, tool_choice: Any = None
                          ) -> Any:
            self.calls += 1
            if self.calls == 1:
                return AIMessage(tool_calls=[ToolCall("get_weather", {"city": "Oslo"}, "x")])
            return {"role": "assistant", "content": "cold"}

    final = await create_agent(Fake(), [get_weather]).ainvoke({"messages": ["Oslo?"]})
    assert history(final)[-2:] == [("tool", "-3 C"), ("ai", "cold")]
