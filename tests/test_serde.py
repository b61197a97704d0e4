"""The JSON codec of checkpoints (``_serde``): plain JSON, registered attrs
classes and dataclasses, never pickle; and what a graph does with a state
value the codec cannot store (a ``SerializationError`` naming the key, and
nothing half-written).
"""

from __future__ import annotations

import dataclasses
import json
import math
import operator
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Annotated, Any, TypedDict

import attrs
import pytest
from hypothesis import given, strategies as st

from trigraph import (
    END,
    START,
    Command,
    CompiledGraph,
    Send,
    SerializationError,
    StateGraph,
    interrupt,
)
from trigraph._serde import JsonSerializer
from trigraph.abc import Checkpointer, Serializer


@attrs.frozen
class Point:
    x: int
    y: int


@dataclasses.dataclass
class Box:
    label: str
    corners: list[Point]


@attrs.define
class Tagged:
    name: str
    cache: dict[str, int] = attrs.field(init=False, factory=dict)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


# -- the codec ----------------------------------------------------------------------


def test_json_serializer_is_a_serializer() -> None:
    assert isinstance(JsonSerializer(), Serializer)


@given(json_values)
def test_json_values_round_trip_as_themselves(value: Any) -> None:
    s = JsonSerializer()
    data = s.dumps(value)
    assert isinstance(data, bytes)
    assert s.loads(data) == value


def test_tuples_come_back_as_lists_and_text_is_utf8() -> None:
    s = JsonSerializer()
    assert s.loads(s.dumps({"t": (1, "é", ("ß",))})) == {"t": [1, "é", ["ß"]]}
    assert "é".encode() in s.dumps("é")


@pytest.mark.parametrize(
    "value",
    [{1, 2}, b"bytes", object(), math.nan, math.inf, -math.inf, 1j, {"k": [object()]}],
    ids=["set", "bytes", "object", "nan", "inf", "-inf", "complex", "nested"],
)
def test_values_json_cannot_hold_are_refused(value: Any) -> None:
    with pytest.raises((TypeError, ValueError)):
        JsonSerializer().dumps(value)


def test_registered_attrs_and_dataclasses_round_trip() -> None:
    s = JsonSerializer()
    s.register(Point)
    s.register(Box)
    value = {"box": Box("sq", [Point(0, 0), Point(1, 1)]), "pts": [Point(2, 3)]}
    back = s.loads(s.dumps(value))
    assert back == value
    assert type(back["box"]) is Box
    assert type(back["box"].corners[0]) is Point


def test_encoding_a_class_registers_it() -> None:
    writer = JsonSerializer()
    data = writer.dumps([Point(1, 2), Box("b", [])])
    assert writer.loads(data) == [Point(1, 2), Box("b", [])]


def test_fields_not_in_init_are_not_stored() -> None:
    s = JsonSerializer()
    t = Tagged("n")
    t.cache["k"] = 1
    back = s.loads(s.dumps(t))
    assert back == Tagged("n")
    assert back.cache == {}


def test_register_refuses_other_classes() -> None:
    with pytest.raises(TypeError, match=r"attrs|dataclass"):
        JsonSerializer().register(dict)


def tagged(name: str, fields: dict[str, Any]) -> bytes:
    """What the codec writes for an instance of the class called *name*."""
    written = json.loads(JsonSerializer().dumps(Point(1, 2)))
    (tag,) = (key for key in written if key != "fields")
    return json.dumps({tag: name, "fields": fields}).encode()


def test_unregistered_classes_are_refused_and_nothing_is_imported() -> None:
    s = JsonSerializer()
    assert "this" not in sys.modules
    with pytest.raises(SerializationError, match="register"):
        s.loads(tagged("this.Anything", {}))
    assert "this" not in sys.modules
    # A class that exists and would run code if called is refused just the same.
    with pytest.raises(SerializationError, match=r"subprocess\.Popen"):
        s.loads(tagged("subprocess.Popen", {"args": ["true"]}))
    # Another serializer's registrations are its own.
    JsonSerializer().register(Point)
    with pytest.raises(SerializationError, match="Point"):
        s.loads(JsonSerializer().dumps(Point(1, 2)))


def test_no_pickle() -> None:
    s = JsonSerializer()
    data = s.dumps({"p": Point(1, 2), "n": [1, 2.5, None, True, "x"]})
    assert data.lstrip().startswith(b"{")
    assert b"\x80" not in data  # not a pickle protocol header


def test_user_dicts_with_type_like_keys_round_trip() -> None:
    # Plain JSON data comes back as itself, even with keys that look like a tag
    # (only a dict of exactly the codec's own tag and "fields" is reserved).
    s = JsonSerializer()
    for value in (
        {"__type__": "not.a.Class", "fields": {}},
        {"__type__": "x", "fields": {}, "more": 1},
        {"type": "a.B", "fields": {"x": 1}},
    ):
        assert s.loads(s.dumps(value)) == value


# -- in a durable graph ------------------------------------------------------------


class Blobs(TypedDict, total=False):
    log: Annotated[list[str], operator.add]
    blob: Any


async def _start(state: Blobs) -> dict[str, Any]:
    return {"log": ["start"]}


def blob_graph(cp: Checkpointer, bad: Any) -> CompiledGraph:
    async def store(state: Blobs) -> dict[str, Any]:
        return {"log": ["store"], "blob": bad}

    g = StateGraph(Blobs)
    g.add_node("start", _start).add_node("store", store)
    g.add_edge(START, "start").add_edge("start", "store").add_edge("store", END)
    return g.compile(checkpointer=cp)


@pytest.mark.parametrize(
    "bad", [{1, 2}, object(), math.nan, b"raw"], ids=["set", "object", "nan", "bytes"]
)
async def test_unstorable_value_names_the_key_and_writes_nothing(
    cp: Checkpointer, bad: Any
) -> None:
    graph = blob_graph(cp, bad)
    with pytest.raises(SerializationError, match="'blob'") as info:
        await graph.ainvoke({"log": []}, thread="t")
    assert isinstance(info.value, TypeError)
    assert info.value.key == "blob"
    # The checkpoint of the last good step is still the latest, and intact.
    snap = await graph.get_state("t")
    assert (snap.step, snap.values, snap.next) == (1, {"log": ["start"]}, ("store",))
    history = await cp.history("t", "")
    assert [r.step for r in history] == [1, 0]
    assert history[0].pending is None


async def test_unstorable_value_in_async_durability(cp: Checkpointer) -> None:
    graph = blob_graph(cp, {1, 2})
    with pytest.raises(SerializationError, match="'blob'") as info:
        await graph.ainvoke({"log": []}, thread="t", durability="async")
    assert info.value.key == "blob"
    assert [r.step for r in await cp.history("t", "")] == [1, 0]


async def test_unstorable_input_writes_no_checkpoint(cp: Checkpointer) -> None:
    graph = blob_graph(cp, None)
    with pytest.raises(SerializationError, match="'blob'") as info:
        await graph.ainvoke({"log": [], "blob": {1}}, thread="t")
    assert info.value.key == "blob"
    assert await cp.history("t", "") == []
    with pytest.raises(KeyError):
        await graph.get_state("t")


async def test_unstorable_send_argument_is_refused(cp: Checkpointer) -> None:
    def fan_out(state: Blobs) -> list[Send]:
        return [Send("work", {"handle": object()})]

    async def work(arg: Any) -> None:
        return None

    g = StateGraph(Blobs)
    g.add_node("start", _start).add_node("work", work)
    g.add_edge(START, "start").add_conditional_edges("start", fan_out).add_edge("work", END)
    graph = g.compile(checkpointer=cp)
    with pytest.raises(SerializationError):
        await graph.ainvoke({"log": []}, thread="t")
    assert [r.step for r in await cp.history("t", "")] == [0]


async def test_unstorable_interrupt_value_is_refused(cp: Checkpointer) -> None:
    async def ask(state: Blobs) -> dict[str, Any]:
        return {"blob": interrupt(object())}

    g = StateGraph(Blobs)
    g.add_node("start", _start).add_node("ask", ask)
    g.add_edge(START, "start").add_edge("start", "ask").add_edge("ask", END)
    graph = g.compile(checkpointer=cp)
    with pytest.raises(SerializationError):
        await graph.ainvoke({"log": []}, thread="t")
    snap = await graph.get_state("t")
    assert (snap.step, snap.interrupts) == (1, ())


class Shapes(TypedDict, total=False):
    points: Annotated[list[Point], operator.add]
    box: Box


async def test_attrs_and_dataclass_values_in_a_durable_thread(
    cp: Checkpointer, tmp_path: Path
) -> None:
    async def draw(state: Shapes) -> dict[str, Any]:
        return {"points": [Point(len(state["points"]), 0)], "box": Box("b", [Point(9, 9)])}

    g = StateGraph(Shapes)
    g.add_node("draw", draw).add_edge(START, "draw").add_edge("draw", END)
    graph = g.compile(checkpointer=cp)
    await graph.ainvoke({"points": [Point(7, 7)]}, thread="t")
    final = await graph.ainvoke({"points": []}, thread="t")
    expected = {"points": [Point(7, 7), Point(1, 0), Point(2, 0)], "box": Box("b", [Point(9, 9)])}
    assert final == expected
    snap = await graph.get_state("t")
    assert snap.values == expected
    assert all(type(p) is Point for p in snap.values["points"])
    assert type(snap.values["box"]) is Box
    assert [s.values.get("points") for s in await graph.get_state_history("t")][-1] == [
        Point(7, 7)
    ]


@dataclasses.dataclass
class Draft:
    topic: str
    notes: Annotated[list[str], operator.add] = dataclasses.field(default_factory=list)


async def test_dataclass_schema_thread_pauses_and_resumes(cp: Checkpointer) -> None:
    seen: list[type] = []

    async def write(state: Draft) -> dict[str, Any]:
        seen.append(type(state))
        verdict = interrupt(f"publish {state.topic}?")
        return {"notes": [f"{state.topic}:{verdict}"]}

    g = StateGraph(Draft)
    g.add_node("write", write).add_edge(START, "write").add_edge("write", END)
    graph = g.compile(checkpointer=cp)
    paused = await graph.ainvoke(Draft("trio"), thread="t")
    assert [i.value for i in paused["__interrupt__"]] == ["publish trio?"]
    final = await graph.ainvoke(Command(resume="yes"), thread="t")
    assert final == {"topic": "trio", "notes": ["trio:yes"]}
    assert seen == [Draft, Draft]


# -- a fresh process --------------------------------------------------------------------

SHAPES_MODULE = """
import operator
from typing import Annotated, TypedDict

import attrs
import trio

from trigraph import END, START, SqliteCheckpointer, StateGraph


@attrs.frozen
class Pt:
    x: int
    y: int


class S(TypedDict, total=False):
    points: Annotated[list[Pt], operator.add]


async def add(state: S) -> dict:
    return {"points": [Pt(len(state["points"]), 1)]}


def build(cp):
    g = StateGraph(S)
    g.add_node("add", add).add_edge(START, "add").add_edge("add", END)
    return g.compile(checkpointer=cp)


async def write(path):
    async with SqliteCheckpointer(path) as cp:
        await build(cp).ainvoke({"points": [Pt(0, 0)]}, thread="t")


async def read(path):
    async with SqliteCheckpointer(path) as cp:
        snap = await build(cp).get_state("t")
        print(repr(snap.values["points"]))
"""


@pytest.mark.slow
def test_fresh_process_reads_attrs_values_of_its_schema(tmp_path: Path) -> None:
    # Process 1 writes a thread whose state holds attrs values; process 2 only
    # builds the same graph and reads the thread, as a restarted service would.
    (tmp_path / "shapes_mod.py").write_text(textwrap.dedent(SHAPES_MODULE))
    db = tmp_path / "shapes.db"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}

    def run(fn: str) -> subprocess.CompletedProcess[str]:
        code = f"import trio, shapes_mod; trio.run(shapes_mod.{fn}, {str(db)!r})"
        return subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
        )

    wrote = run("write")
    assert wrote.returncode == 0, wrote.stderr
    read = run("read")
    assert read.returncode == 0, read.stderr
    assert read.stdout.strip() == "[Pt(x=0, y=0), Pt(x=1, y=1)]"


def test_non_str_dict_keys_are_refused_not_stringified() -> None:
    s = JsonSerializer()
    with pytest.raises(TypeError, match="dict key 1 is a int"):
        s.dumps({"scores": [{1: "a"}]})
    with pytest.raises(TypeError, match="dict key"):
        s.dumps([Point(1, {2: "x"})])  # type: ignore[arg-type]
    assert s.loads(s.dumps({"ok": {"1": "a"}})) == {"ok": {"1": "a"}}
