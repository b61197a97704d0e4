"""@tool: the JSON schema a model sees, the check of its arguments, and the
functions that cannot be tools (named in the error)."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Sequence
from typing import Annotated, Any, Literal, NotRequired, Optional, TypedDict

import attrs
import pytest
import trio
import trio.lowlevel

from trigraph.tools import InjectedState, ToolDefinitionError, tool


class Units(enum.Enum):
    C = "c"
    F = "f"


class Address(TypedDict):
    city: str
    zip: NotRequired[str]


@attrs.frozen
class Window:
    start: int
    end: int = 10
    tags: list[str] = attrs.Factory(list)


@dataclasses.dataclass
class Point:
    x: float
    y: float = 0.0


@dataclasses.dataclass
class Node:
    child: Node | None


def everything(
    text: str,
    count: int,
    ratio: float,
    flag: bool,
    nothing: None,
    anything: Any,
    units: Units,
    mode: Literal["fast", "slow"],
    names: list[str],
    pairs: tuple[int, str],
    many: tuple[int, ...],
    unique: set[int],
    scores: dict[str, float],
    maybe: Optional[int],  # noqa: UP045 - the spelling under test
    either: int | str,
    address: Address,
    window: Window,
    point: Point,
    seq: Sequence[bool],
    note: Annotated[str, "a note"] = "n",
) -> str:
    """Takes every kind of parameter.

    Args:
        text: some text,
            over two lines.
        count: how many.
    """
    return "ok"


def test_the_schema_of_every_supported_type() -> None:
    t = tool(everything)
    assert t.description == "Takes every kind of parameter."
    p = t.parameters["properties"]
    assert p["text"] == {"type": "string", "description": "some text, over two lines."}
    assert p["count"] == {"type": "integer", "description": "how many."}
    assert p["ratio"] == {"type": "number"}
    assert p["flag"] == {"type": "boolean"}
    assert p["nothing"] == {"type": "null"}
    assert p["anything"] == {}
    assert p["units"] == {"type": "string", "enum": ["c", "f"]}
    assert p["mode"] == {"type": "string", "enum": ["fast", "slow"]}
    assert p["names"] == {"type": "array", "items": {"type": "string"}}
    assert p["pairs"] == {"type": "array", "prefixItems": [{"type": "integer"},
                                                           {"type": "string"}],
                          "minItems": 2, "maxItems": 2}
    assert p["many"] == {"type": "array", "items": {"type": "integer"}}
    assert p["unique"] == {"type": "array", "items": {"type": "integer"}, "uniqueItems": True}
    assert p["scores"] == {"type": "object", "additionalProperties": {"type": "number"}}
    assert p["maybe"] == {"anyOf": [{"type": "integer"}, {"type": "null"}]}
    assert p["either"] == {"anyOf": [{"type": "integer"}, {"type": "string"}]}
    assert p["address"] == {"type": "object", "properties": {
        "city": {"type": "string"}, "zip": {"type": "string"}}, "required": ["city"]}
    assert p["window"] == {"type": "object", "properties": {
        "start": {"type": "integer"}, "end": {"type": "integer", "default": 10},
        "tags": {"type": "array", "items": {"type": "string"}, "default": []}},
        "required": ["start"]}
    assert p["point"]["required"] == ["x"]
    assert p["note"] == {"type": "string", "description": "a note", "default": "n"}
    assert t.parameters["required"] == [k for k in p if k != "note"]


async def test_arguments_are_checked_and_built() -> None:
    seen: dict[str, Any] = {}

    def capture(**kwargs: Any) -> str:
        seen.update(kwargs)
        return "ok"

    t = tool(everything)
    good = {"text": "t", "count": 2.0, "ratio": 1, "flag": True, "nothing": None,
            "anything": [1], "units": "f", "mode": "slow", "names": ["a"], "pairs": [1, "x"],
            "many": [1, 2], "unique": [1, 1], "scores": {"a": 1}, "maybe": None, "either": "s",
            "address": {"city": "Paris"}, "window": {"start": 1, "tags": ["x"]},
            "point": {"x": 1}, "seq": [True]}
    kwargs, errors = t.bind(good)
    assert errors == []
    assert kwargs["count"] == 2
    assert kwargs["units"] is Units.F
    assert kwargs["pairs"] == (1, "x")
    assert kwargs["unique"] == {1}
    assert kwargs["window"] == Window(1, tags=["x"])
    assert kwargs["point"] == Point(1.0)
    assert kwargs["ratio"] == 1.0
    bad = {**good, "count": "2", "flag": 1, "units": "k", "pairs": [1], "either": 1.5,
           "address": {"town": "x"}, "window": {"start": "x"}, "extra": 1}
    del bad["text"]
    _, errors = t.bind(bad)
    assert errors == [
        "text: required",
        "count: expected an integer, got str '2'",
        "flag: expected a boolean, got int 1",
        "units: must be one of 'c', 'f'; got str 'k'",
        "pairs: expected an array of 2 items, got list [1]",
        "either: expected integer or string, got float 1.5",
        "address.town: unexpected key (known: city, zip)",
        "address.city: required",
        "window.start: expected an integer, got str 'x'",
        "extra: unexpected argument (this tool takes: text, count, ratio, flag, nothing, "
        "anything, units, mode, names, pairs, many, unique, scores, maybe, either, address, "
        "window, point, seq, note)",
    ]
    with pytest.raises(ValueError, match="bad arguments for tool 'everything'"):
        await t.ainvoke(bad)


def test_functions_that_cannot_be_tools_are_named() -> None:
    def takes_bytes(data: bytes) -> None:
        """x"""

    def star(*items: str) -> None:
        """x"""

    def keyed(d: dict[int, str]) -> None:
        """x"""

    def tree(root: Node) -> None:
        """x"""

    with pytest.raises(ToolDefinitionError, match="parameter 'data' of tool 'takes_bytes': "
                                                  "bytes has no JSON schema"):
        tool(takes_bytes)
    with pytest.raises(ToolDefinitionError, match="parameter 'items' of tool 'star'"):
        tool(star)
    with pytest.raises(ToolDefinitionError, match="int keys"):
        tool(keyed)
    with pytest.raises(ToolDefinitionError, match="refers to itself"):
        tool(tree)
    with pytest.raises(ToolDefinitionError, match="tool name"):
        tool("has spaces")(star)
    assert isinstance(ToolDefinitionError("t", "x"), TypeError)


def test_names_descriptions_and_strict_mode() -> None:
    @tool("lookup", description="Find it.", strict=True)
    def find(query: str, limit: int = 5,
             state: Annotated[dict[str, Any] | None, InjectedState] = None) -> str:
        """Ignored."""
        return query

    spec = find.to_openai()
    assert spec["function"]["name"] == "lookup"
    assert spec["function"]["strict"] is True
    assert spec["function"]["description"] == "Find it."
    assert spec["function"]["parameters"] == {
        "type": "object", "additionalProperties": False, "required": ["query", "limit"],
        "properties": {"query": {"type": "string"},
                       "limit": {"anyOf": [{"type": "integer"}, {"type": "null"}]}}}
    assert find("x") == "x"  # a tool still calls like its function


async def test_sync_tools_run_in_threads_and_async_generators_answer_last() -> None:
    import threading

    main = threading.get_ident()

    @tool
    def where() -> bool:
        """In a thread?"""
        return threading.get_ident() != main

    @tool
    async def steps() -> Any:
        """Steps."""
        yield 1
        await trio.lowlevel.checkpoint()
        yield "done"

    assert await where.ainvoke({}) is True
    assert await steps.ainvoke({}) == "done"
    assert (where.kind, steps.kind) == ("sync", "agen")
