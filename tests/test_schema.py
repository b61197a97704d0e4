"""State schemas: TypedDict (also total=False and string annotations),
attrs classes, dataclasses and plain ``dict``; reducers and the empty value a
reducer key starts from; input and output schemas."""

from __future__ import annotations

import dataclasses
import operator
from typing import Annotated, Any, NotRequired, TypedDict

import attrs
import pytest
from _future_schemas import FutureAttrsState, FutureDataclassState, FutureState
from _helpers import collect

from trigraph import END, START, GraphValidationError, InvalidUpdateError, StateGraph
from trigraph._schema import schema_of
from trigraph.events import Values


class Notes(TypedDict):
    topic: str
    notes: Annotated[list[str], operator.add]


class Partial(TypedDict, total=False):
    a: str
    b: str


class NotRequiredReducer(TypedDict):
    topic: str
    notes: NotRequired[Annotated[list[str], operator.add]]


class Empties(TypedDict, total=False):
    items: Annotated[list[int], operator.add]
    table: Annotated[dict[str, int], operator.or_]
    total: Annotated[int, operator.add]
    tags: Annotated[set[str], operator.or_]
    text: Annotated[str, operator.add]


def keep_larger(old: Any, new: Any) -> Any:
    return new if old is None or new > old else old


class NoEmpty(TypedDict, total=False):
    best: Annotated[int | None, keep_larger]


@attrs.define
class AttrsState:
    topic: str
    count: int = 0
    notes: Annotated[list[str], operator.add] = attrs.Factory(list)


@dataclasses.dataclass
class DataState:
    topic: str
    count: int = 0
    notes: Annotated[list[str], operator.add] = dataclasses.field(default_factory=list)


class In(TypedDict):
    question: str


class Out(TypedDict):
    answer: str


class Full(TypedDict, total=False):
    question: str
    scratch: str
    answer: str


def one_node(schema: Any, fn: Any, **kwargs: Any) -> Any:
    g = StateGraph(schema, **kwargs)
    g.add_node("node", fn).add_edge(START, "node").add_edge("node", END)
    return g.compile()


# -- TypedDict -------------------------------------------------------------------


async def test_typeddict_nodes_receive_a_dict() -> None:
    seen: list[Any] = []

    async def node(state: Notes) -> dict[str, Any]:
        seen.append(state)
        return {"notes": [state["topic"]]}

    final = await one_node(Notes, node).ainvoke({"topic": "trio"})
    assert type(seen[0]) is dict
    assert final == {"topic": "trio", "notes": ["trio"]}


def test_typeddict_schema_keys_and_reducers() -> None:
    schema = schema_of(Notes)
    assert schema.keys == {"topic", "notes"}
    assert schema.reducers == {"notes": operator.add}
    assert schema.cls is None


async def test_total_false_values_hold_only_keys_set() -> None:
    async def node(state: Partial) -> dict[str, Any]:
        assert "b" not in state
        return {"b": "B"}

    events = await collect(one_node(Partial, node), {"a": "A"}, modes="values")
    assert events == [Values(0, {"a": "A"}), Values(1, {"a": "A", "b": "B"})]


async def test_total_false_empty_input_gives_empty_values() -> None:
    async def node(state: Partial) -> None:
        return None

    events = await collect(one_node(Partial, node), {}, modes="values")
    assert [e.state for e in events if isinstance(e, Values)] == [{}, {}]


async def test_not_required_reducer_key_keeps_its_reducer() -> None:
    assert schema_of(NotRequiredReducer).reducers == {"notes": operator.add}

    async def node(state: NotRequiredReducer) -> dict[str, Any]:
        return {"notes": ["b"]}

    final = await one_node(NotRequiredReducer, node).ainvoke({"topic": "t", "notes": ["a"]})
    assert final["notes"] == ["a", "b"]


# -- string annotations (from __future__ import annotations) -----------------------


def test_future_annotations_typeddict_is_resolved() -> None:
    schema = schema_of(FutureState)
    assert schema.keys == {"topic", "notes", "count"}
    assert schema.reducers == {"notes": operator.add, "count": operator.add}


async def test_future_annotations_typeddict_runs_with_reducers() -> None:
    async def node(state: FutureState) -> dict[str, Any]:
        return {"notes": ["x"], "count": 2}

    final = await one_node(FutureState, node).ainvoke({"notes": ["a"], "count": 1})
    assert final == {"notes": ["a", "x"], "count": 3}


async def test_future_annotations_attrs_class_is_resolved() -> None:
    seen: list[Any] = []

    async def node(state: FutureAttrsState) -> dict[str, Any]:
        seen.append(state)
        return {"notes": [state.topic]}

    final = await one_node(FutureAttrsState, node).ainvoke({"topic": "t"})
    assert isinstance(seen[0], FutureAttrsState)
    assert final == {"topic": "t", "notes": ["t"]}


async def test_future_annotations_dataclass_is_resolved() -> None:
    async def node(state: FutureDataclassState) -> dict[str, Any]:
        assert isinstance(state, FutureDataclassState)
        return {"notes": [state.topic]}

    final = await one_node(FutureDataclassState, node).ainvoke({"topic": "t", "notes": ["0"]})
    assert final == {"topic": "t", "notes": ["0", "t"]}


def test_unresolvable_annotation_raises_graph_validation_error() -> None:
    missing = "NoSuchType"  # a forward reference nothing defines
    broken = TypedDict("Broken", {"x": missing})  # type: ignore[name-match,valid-type]  # noqa: UP013
    with pytest.raises(GraphValidationError, match="Broken"):
        StateGraph(broken)


# -- attrs and dataclasses -----------------------------------------------------------


@pytest.mark.parametrize("cls", [AttrsState, DataState])
async def test_class_schema_nodes_receive_an_instance(cls: type) -> None:
    seen: list[Any] = []

    async def node(state: Any) -> dict[str, Any]:
        seen.append(state)
        return {"count": state.count + 1, "notes": [state.topic]}

    final = await one_node(cls, node).ainvoke({"topic": "t"})
    assert type(seen[0]) is cls
    assert seen[0] == cls(topic="t")
    assert final == {"topic": "t", "count": 1, "notes": ["t"]}


@pytest.mark.parametrize("cls", [AttrsState, DataState])
async def test_class_schema_accepts_an_instance_as_input(cls: type) -> None:
    async def node(state: Any) -> dict[str, Any]:
        return {"notes": ["n"]}

    final = await one_node(cls, node).ainvoke(cls(topic="t", count=5, notes=["a"]))
    assert type(final) is dict
    assert final == {"topic": "t", "count": 5, "notes": ["a", "n"]}


@pytest.mark.parametrize("cls", [AttrsState, DataState])
def test_class_schema_defaults_become_initial_values(cls: type) -> None:
    schema = schema_of(cls)
    assert schema.cls is cls
    assert schema.initial_values() == {"count": 0, "notes": []}
    assert schema.reducers == {"notes": operator.add}


async def test_class_schema_missing_required_field_raises() -> None:
    async def node(state: AttrsState) -> None:
        return None

    with pytest.raises(InvalidUpdateError, match="AttrsState"):
        await one_node(AttrsState, node).ainvoke({"count": 1})


def test_class_schema_factory_default_is_fresh_per_run() -> None:
    schema = schema_of(AttrsState)
    first = schema.initial_values()
    first["notes"].append("x")
    assert schema.initial_values()["notes"] == []


# -- dict --------------------------------------------------------------------------------


async def test_dict_schema_accepts_any_key_and_last_write_wins() -> None:
    async def first(state: dict[str, Any]) -> dict[str, Any]:
        return {"anything": 1, "other": "x"}

    async def second(state: dict[str, Any]) -> dict[str, Any]:
        return {"anything": state["anything"] + 1}

    g = StateGraph(dict).add_node(first).add_node(second)
    g.add_edge(START, "first").add_edge("first", "second").add_edge("second", END)
    final = await g.compile().ainvoke({"anything": 0, "free": True})
    assert final == {"anything": 2, "other": "x", "free": True}


def test_dict_schema_has_no_keys_or_reducers() -> None:
    schema = schema_of(dict)
    assert schema.keys is None
    assert schema.reducers == {}


async def test_dict_schema_node_gets_a_copy() -> None:
    async def node(state: dict[str, Any]) -> None:
        state["sneaky"] = True

    final = await one_node(dict, node).ainvoke({"a": 1})
    assert final == {"a": 1}


@pytest.mark.parametrize("schema", [int, "State", list])
def test_unsupported_schema_raises(schema: Any) -> None:
    with pytest.raises(GraphValidationError, match="TypedDict"):
        StateGraph(schema)


def test_plain_class_schema_raises_naming_it() -> None:
    class Plain:
        x: int

    with pytest.raises(GraphValidationError, match="Plain"):
        StateGraph(Plain)


# -- reducers -----------------------------------------------------------------------------


async def test_reducer_merges_old_and_new() -> None:
    async def node(state: Notes) -> dict[str, Any]:
        return {"notes": ["new"]}

    final = await one_node(Notes, node).ainvoke({"topic": "t", "notes": ["old"]})
    assert final["notes"] == ["old", "new"]


async def test_custom_reducer_is_called_with_old_and_new() -> None:
    calls: list[tuple[Any, Any]] = []

    def merge(old: Any, new: Any) -> Any:
        calls.append((old, new))
        return f"{old}+{new}"

    Merged = TypedDict("Merged", {"s": Annotated[str, merge]})  # noqa: UP013

    async def node(state: Any) -> dict[str, Any]:
        return {"s": "b"}

    final = await one_node(Merged, node).ainvoke({"s": "a"})
    assert final == {"s": "+a+b"}
    assert calls == [("", "a"), ("+a", "b")]


def test_annotated_metadata_that_is_not_callable_is_no_reducer() -> None:
    Doc = TypedDict("Doc", {"x": Annotated[list[int], "just a doc"]})  # noqa: UP013
    assert schema_of(Doc).reducers == {}


def test_reducer_with_wrong_arity_raises_naming_key() -> None:
    def one(x: Any) -> Any:
        return x

    Bad = TypedDict("Bad", {"items": Annotated[list[int], one]})  # noqa: UP013
    with pytest.raises(GraphValidationError, match=r"Bad\.items"):
        StateGraph(Bad)


# -- reducer keys start empty ----------------------------------------------------------


def test_reducer_keys_start_from_empty_values() -> None:
    assert schema_of(Empties).initial_values() == {
        "items": [],
        "table": {},
        "total": 0,
        "tags": set(),
        "text": "",
    }


async def test_reducer_key_absent_from_input_starts_empty() -> None:
    seen: list[Any] = []

    async def node(state: Empties) -> dict[str, Any]:
        seen.append(dict(state))
        return {"items": [1], "table": {"k": 1}, "total": 5, "tags": {"t"}, "text": "x"}

    final = await one_node(Empties, node).ainvoke({})
    assert seen == [{"items": [], "table": {}, "total": 0, "tags": set(), "text": ""}]
    assert final == {"items": [1], "table": {"k": 1}, "total": 5, "tags": {"t"}, "text": "x"}


async def test_reducer_key_without_empty_value_takes_first_write() -> None:
    assert schema_of(NoEmpty).initial == {}
    seen: list[Any] = []

    async def node(state: NoEmpty) -> dict[str, Any]:
        seen.append(dict(state))
        return {"best": 3}

    assert await one_node(NoEmpty, node).ainvoke({}) == {"best": 3}
    assert await one_node(NoEmpty, node).ainvoke({"best": 7}) == {"best": 7}
    assert seen == [{}, {"best": 7}]


async def test_empty_values_are_fresh_per_run() -> None:
    async def node(state: Empties) -> dict[str, Any]:
        return {"items": [len(state["items"])]}

    graph = one_node(Empties, node)
    assert (await graph.ainvoke({}))["items"] == [0]
    assert (await graph.ainvoke({}))["items"] == [0]


# -- input and output schemas --------------------------------------------------------------


def io_graph() -> Any:
    async def think(state: Full) -> dict[str, Any]:
        return {"scratch": state["question"].upper()}

    async def reply(state: Full) -> dict[str, Any]:
        return {"answer": state["scratch"] + "!"}

    g = StateGraph(Full, input_schema=In, output_schema=Out)
    g.add_node(think).add_node(reply)
    g.add_edge(START, "think").add_edge("think", "reply").add_edge("reply", END)
    return g.compile()


async def test_output_schema_restricts_the_result() -> None:
    assert await io_graph().ainvoke({"question": "why"}) == {"answer": "WHY!"}


async def test_input_schema_rejects_other_keys() -> None:
    with pytest.raises(InvalidUpdateError, match="'scratch'") as exc_info:
        await io_graph().ainvoke({"question": "why", "scratch": "no"})
    assert exc_info.value.key == "scratch"


async def test_input_must_be_a_mapping_or_instance() -> None:
    with pytest.raises(InvalidUpdateError, match="mapping"):
        await io_graph().ainvoke(["question"])


async def test_input_key_unknown_to_schema_raises() -> None:
    async def node(state: Notes) -> None:
        return None

    with pytest.raises(InvalidUpdateError, match="'topik'"):
        await one_node(Notes, node).ainvoke({"topik": "typo"})


def test_input_and_output_schema_keys() -> None:
    schema = schema_of(Full, In, Out)
    assert schema.keys == {"question", "scratch", "answer"}
    assert schema.input_keys == {"question"}
    assert schema.output_keys == {"answer"}


def test_input_schema_keys_join_the_state_keys() -> None:
    Extra = TypedDict("Extra", {"question": str, "hint": str})  # noqa: UP013
    schema = schema_of(Full, Extra, None)
    assert schema.keys == {"question", "scratch", "answer", "hint"}
    assert schema.output_keys == {"question", "scratch", "answer"}
