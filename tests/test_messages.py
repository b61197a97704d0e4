"""Message values: shorthands, the OpenAI format, checkpoints, and ids that
are given once, when a message is written, and never change after."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import pytest

from trigraph import END, START, Command, JsonSerializer, SqliteCheckpointer, StateGraph, interrupt
from trigraph.messages import (
    AIMessage,
    HumanMessage,
    InvalidToolCall,
    MessagesState,
    RemoveMessage,
    SystemMessage,
    ToolCall,
    ToolMessage,
    Usage,
    convert_to_messages,
    prepare_messages,
    to_message,
    to_openai,
)


def test_shorthands_become_messages() -> None:
    got = convert_to_messages([
        "hi", ("developer", "be kind"), ["ai", "yo"],
        {"role": "tool", "content": None, "tool_call_id": "c", "status": "error", "id": "t"},
        {"type": "remove", "content": "", "id": "x"},
        {"lc": 1, "type": "constructor", "id": ["x", "AIMessage"], "kwargs": {"content": "k"}},
    ])
    assert got == [HumanMessage("hi"), SystemMessage("be kind"), AIMessage("yo"),
                   ToolMessage("", "c", status="error", id="t"), RemoveMessage("x"),
                   AIMessage("k")]
    for bad, error in ((("wizard", "x"), ValueError), ({"content": "x"}, ValueError),
                       (("a", "b", "c"), NotImplementedError), (3, NotImplementedError),
                       ({"role": "tool", "content": "x"}, ValueError),
                       ({"role": "assistant", "content": "", "tool_calls": [
                           {"id": "c", "function": {"name": "f", "arguments": "{"}}]},
                        ValueError)):
        with pytest.raises(error):
            to_message(bad)


def test_langchain_objects_are_read_by_duck_typing() -> None:
    @attrs.define
    class LCAI:
        content: str
        id: str
        type: str = "ai"
        name: str | None = None
        tool_calls: list[dict[str, Any]] = attrs.Factory(list)
        usage_metadata: dict[str, int] | None = None

    msg = to_message(LCAI("x", "1", tool_calls=[{"name": "f", "args": {"a": 1}, "id": "c"}],
                          usage_metadata={"input_tokens": 3, "output_tokens": 1}))
    assert msg == AIMessage("x", id="1", tool_calls=[ToolCall("f", {"a": 1}, "c")],
                            usage=Usage(3, 1))


def test_openai_format_round_trips() -> None:
    ai = AIMessage(tool_calls=[ToolCall("f", {"a": 1}, "c")],
                   invalid_tool_calls=[InvalidToolCall("g", "{", "d", "bad")], name="bot")
    wire = to_openai(ai)
    assert wire == {"role": "assistant", "content": None, "name": "bot", "tool_calls": [
        {"id": "c", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}},
        {"id": "d", "type": "function", "function": {"name": "g", "arguments": "{"}}]}
    assert to_message({**wire, "tool_calls": wire["tool_calls"][:1]}).tool_calls == ai.tool_calls
    with pytest.raises(ValueError, match="cannot be sent"):
        to_openai(RemoveMessage("x"))


def test_messages_are_frozen_values_with_readable_reprs() -> None:
    msg = ToolMessage("12 C", "c1", status="error")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        msg.content = "x"  # type: ignore[misc]
    assert repr(msg) == "ToolMessage('12 C', tool_call_id='c1', status='error')"
    assert repr(AIMessage()) == "AIMessage()"
    with pytest.raises(ValueError, match="'success' or 'error'"):
        ToolMessage("x", "c", status="ok")  # type: ignore[arg-type]
    assert ToolCall("f", {"a": 1}, "c")["args"] == {"a": 1}
    assert HumanMessage([{"type": "text", "text": "a"}, "b"]).text == "ab"


def test_messages_round_trip_through_json() -> None:
    s = JsonSerializer()
    history = [HumanMessage("hi", id="1"), AIMessage(
        "x", id="2", tool_calls=[ToolCall("f", {"a": [1]}, "c")], usage=Usage(1, 2, 3),
        invalid_tool_calls=[InvalidToolCall("g", "{", "d", "bad")]),
        ToolMessage([{"type": "text", "text": "r"}], "c", artifact={"k": 1}),
        SystemMessage("s"), RemoveMessage("9")]
    data = s.dumps(history)
    from trigraph._serde import default_serializer

    assert default_serializer.loads(data) == history  # registered on import


def test_prepare_gives_ids_without_touching_the_callers_messages() -> None:
    mine = HumanMessage("hi")
    prepared = prepare_messages([mine, "x"])
    assert mine.id is None
    assert prepared[0].id
    assert prepared[1].id
    again = prepare_messages(prepared)
    assert again is prepared  # nothing to do: the same list


async def test_ids_are_given_once_and_survive_resume_and_replay(tmp_path: Path) -> None:
    async def chat(state: MessagesState) -> dict[str, Any]:
        answer = interrupt("reply?")
        return {"messages": [("ai", answer), "and you?"]}

    async def edit(state: MessagesState) -> dict[str, Any]:
        first = state["messages"][1]
        return {"messages": [attrs.evolve(first, content="edited")]}

    g = StateGraph(MessagesState)
    g.add_node(chat).add_node(edit).add_edge(START, "chat").add_edge("chat", "edit")
    g.add_edge("edit", END)
    async with SqliteCheckpointer(tmp_path / "t.db") as cp:
        graph = g.compile(checkpointer=cp)
        await graph.ainvoke({"messages": ["hello"]}, thread="t")
        before = (await graph.get_state("t")).values["messages"]
        final = await graph.ainvoke(Command(resume="hi!"), thread="t")
        ids = [m.id for m in final["messages"]]
        assert ids[0] == before[0].id  # the input's id is kept
        assert [m.content for m in final["messages"]] == ["hello", "edited", "and you?"]
        history = await graph.get_state_history("t")
        for snapshot in history:  # every replay of the thread sees the same ids
            for m in snapshot.values.get("messages", []):
                assert m.id in ids
    async with SqliteCheckpointer(tmp_path / "t.db") as cp:  # a fresh reader
        again = await g.compile(checkpointer=cp).get_state("t")
        assert [m.id for m in again.values["messages"]] == ids


async def test_an_append_only_history_is_not_stored_again_each_step(tmp_path: Path) -> None:
    async def talk(state: MessagesState) -> dict[str, Any]:
        return {"messages": [("ai", "x" * 200)]}

    def more(state: MessagesState) -> str:
        return "talk" if len(state["messages"]) < 60 else END

    g = StateGraph(MessagesState)
    g.add_node(talk).add_edge(START, "talk").add_conditional_edges("talk", more)
    async with SqliteCheckpointer(tmp_path / "t.db") as cp:
        await g.compile(checkpointer=cp).ainvoke({"messages": ["go"]}, thread="t")
        records = await cp.history("t", "")
    stored = sum(len(r.body) + len(r.snapshot or b"") for r in records)
    one_history = len(JsonSerializer().dumps(
        [AIMessage("x" * 200, id=f"{i:036d}") for i in range(60)]))
    assert stored < 4 * one_history  # re-storing it each step would be ~30x
