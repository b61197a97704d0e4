"""Engine events to the API's stream events, and the SSE framing."""

from __future__ import annotations

import attrs
import orjson
import pytest

pytest.importorskip("msgspec")
from trigraph.events import (
    Custom,
    Interrupted,
    TaskEnd,
    TaskStart,
    Token,
    Update,
    Values,
)
from trigraph.server._convert import Converter, dumps, engine_modes
from trigraph.server._graphs import assistant_id
from trigraph.server._sse import frame, wanted
from trigraph.server._store import EventRow


def decoded(frames: list[tuple[str, bytes]]) -> list[tuple[str, object]]:
    return [(name, orjson.loads(data)) for name, data in frames]


def test_engine_modes_cover_the_api_modes() -> None:
    assert engine_modes(["messages-tuple", "debug"]) == {"messages", "tasks", "values"}
    assert engine_modes(["values", "custom"]) == {"values", "custom"}


def test_values_updates_custom_and_subgraph_names() -> None:
    conv = Converter(["values", "updates", "custom"], subgraphs=True, run_id="r")
    assert decoded(conv.convert(Values(0, {"x": 1}))) == [("values", {"x": 1})]
    assert decoded(conv.convert(Update(1, "a", {"x": 2}))) == [("updates", {"a": {"x": 2}})]
    assert decoded(conv.convert(Custom(1, "a", [1, 2], ns=("sub:1", "inner:2")))) == [
        ("custom|sub:1|inner:2", [1, 2])]
    top_only = Converter(["custom"], subgraphs=False, run_id="r")
    assert top_only.convert(Custom(1, "a", 1, ns=("sub:1",))) == []


def test_interrupts_become_one_event_after_the_step() -> None:
    conv = Converter(["values"], subgraphs=False, run_id="r")
    assert conv.convert(Interrupted(1, "ask", {"q": 1}, "i1")) == []
    assert conv.convert(Interrupted(1, "ask", {"q": 2}, "i2")) == []
    assert decoded(conv.flush()) == [("values", {"__interrupt__": [
        {"value": {"q": 1}, "id": "i1"}, {"value": {"q": 2}, "id": "i2"}]})]
    assert conv.flush() == []
    with_updates = Converter(["updates"], subgraphs=False, run_id="r")
    with_updates.convert(Interrupted(1, "ask", None, "i"))
    assert [name for name, _ in with_updates.flush()] == ["updates"]
    assert [i.id for i in conv.interrupts] == ["i1", "i2"]


def test_tokens_as_message_tuples_and_partial_messages() -> None:
    conv = Converter(["messages-tuple", "messages"], subgraphs=False, run_id="r")
    first = decoded(conv.convert(Token(2, "chat", "Hel", model="m", task_id="t")))
    second = decoded(conv.convert(Token(2, "chat", "lo", model="m", task_id="t")))
    chunk, meta = first[0][1]  # type: ignore[misc]
    assert first[0][0] == "messages"
    assert chunk["type"] == "AIMessageChunk"
    assert chunk["content"] == "Hel"
    assert meta["langgraph_node"] == "chat"
    assert meta["langgraph_step"] == 2
    assert [name for name, _ in first] == ["messages", "messages/metadata", "messages/partial"]
    assert second[-1][1][0]["content"] == "Hello"  # type: ignore[index]
    assert second[0][1][0]["id"] == chunk["id"]  # type: ignore[index]


def test_tasks_and_debug_carry_results() -> None:
    conv = Converter(["tasks", "debug"], subgraphs=False, run_id="r")
    start = decoded(conv.convert(TaskStart(1, "a", "t1")))
    assert start[0] == ("tasks", {"id": "t1", "name": "a", "input": None, "triggers": [],
                                  "metadata": {}})
    assert start[1][1]["type"] == "task"  # type: ignore[index]
    conv.convert(Update(1, "a", {"x": 1}))
    end = decoded(conv.convert(TaskEnd(1, "a", "t1", 0.01)))
    assert end[0][1]["result"] == [["x", 1]]  # type: ignore[index]
    assert end[1][1]["type"] == "task_result"  # type: ignore[index]


def test_dumps_handles_what_json_lacks() -> None:
    @attrs.frozen
    class Point:
        x: int

    assert orjson.loads(dumps({"p": Point(1), "s": {3}, "t": (1, 2), "b": b"hi"})) == {
        "p": {"x": 1}, "s": [3], "t": [1, 2], "b": "hi"}
    assert orjson.loads(dumps({1: "int key"})) == {"1": "int key"}


def test_frames_and_mode_filters() -> None:
    assert frame(EventRow(7, 1, "custom|sub:1", b"{}")) == (
        b"event: custom|sub:1\r\ndata: {}\r\nid: 7\r\n\r\n")
    keep = wanted(["messages-tuple", "values"])
    assert keep is not None
    assert keep("messages|sub:1")
    assert keep("metadata")
    assert keep("error")
    assert not keep("custom")
    assert wanted(None) is None


def test_system_assistant_ids_match_langgraph() -> None:
    assert assistant_id("chain") == "608f7b9c-04e5-5cf2-a3f7-ba75a3719808"
