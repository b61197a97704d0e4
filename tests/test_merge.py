"""``apply_writes``: a step's writes applied in task order, conflicts, and the
batched ``operator.add`` fold (pure functions, no Trio)."""

from __future__ import annotations

import ast
import functools
import inspect
import operator
from typing import Any

import pytest
from hypothesis import given, strategies as st

from trigraph import InvalidUpdateError, _merge
from trigraph._merge import apply_writes, fold
from trigraph._schema import MISSING


def concat(old: str, new: str) -> str:
    return old + new


def test_plain_key_takes_its_single_write() -> None:
    values: dict[str, Any] = {"x": 0, "y": "keep"}
    keys = apply_writes(values, {}, [("a", [("x", 1)])], step=1)
    assert values == {"x": 1, "y": "keep"}
    assert keys == ["x"]


def test_reducer_writes_fold_in_task_order() -> None:
    values: dict[str, Any] = {"s": ""}
    tasks = [("c", [("s", "c")]), ("a", [("s", "a")]), ("b", [("s", "b")])]
    apply_writes(values, {"s": concat}, tasks, step=1)
    assert values["s"] == "cab"


def test_writes_within_a_task_keep_their_order() -> None:
    values: dict[str, Any] = {"s": ""}
    apply_writes(values, {"s": concat}, [("a", [("s", "1"), ("s", "2")]), ("b", [("s", "3")])], 1)
    assert values["s"] == "123"


def test_returns_written_keys_in_first_write_order() -> None:
    values: dict[str, Any] = {}
    tasks = [("a", [("z", 1), ("l", [1])]), ("b", [("m", 2), ("l", [2])])]
    assert apply_writes(values, {"l": operator.add}, tasks, 1) == ["z", "l", "m"]


def test_task_without_writes_changes_nothing() -> None:
    values: dict[str, Any] = {"x": 1}
    assert apply_writes(values, {}, [("a", []), ("b", ())], 1) == []
    assert values == {"x": 1}


def test_conflict_names_both_nodes_and_the_key() -> None:
    values: dict[str, Any] = {"x": 0}
    tasks = [("left", [("x", 1)]), ("other", [("y", 1)]), ("right", [("x", 2)])]
    with pytest.raises(InvalidUpdateError) as exc_info:
        apply_writes(values, {}, tasks, step=4)
    err = exc_info.value
    assert err.key == "x"
    assert err.nodes == ("left", "right")
    assert err.step == 4
    message = str(err)
    for part in ("'left'", "'right'", "'x'", "step 4", "reducer"):
        assert part in message


def test_conflict_applies_nothing() -> None:
    values: dict[str, Any] = {"x": 0, "l": [0]}
    tasks = [("a", [("l", [1]), ("x", 1)]), ("b", [("x", 2), ("y", 5)])]
    with pytest.raises(InvalidUpdateError):
        apply_writes(values, {"l": operator.add}, tasks, step=1)
    assert values == {"x": 0, "l": [0]}


def test_one_task_writing_a_plain_key_twice_conflicts() -> None:
    with pytest.raises(InvalidUpdateError, match="'x'") as exc_info:
        apply_writes({}, {}, [("a", [("x", 1), ("x", 2)])], step=1)
    assert exc_info.value.nodes == ("a", "a")


def test_missing_reducer_key_takes_first_write_then_folds() -> None:
    values: dict[str, Any] = {}
    apply_writes(values, {"s": concat}, [("a", [("s", "x")]), ("b", [("s", "y")])], 1)
    assert values == {"s": "xy"}


def test_fold_of_missing_with_one_value_is_that_value() -> None:
    marker = object()
    assert fold(concat, MISSING, [marker]) is marker


def test_reducer_error_gets_a_note_naming_key_and_step() -> None:
    def bad(old: Any, new: Any) -> Any:
        raise ZeroDivisionError("boom")

    with pytest.raises(ZeroDivisionError) as exc_info:
        apply_writes({"k": 1}, {"k": bad}, [("a", [("k", 2)])], step=7)
    assert "in the reducer of key 'k', step 7" in exc_info.value.__notes__


def test_batched_add_does_not_mutate_the_old_list() -> None:
    old = [1]
    values: dict[str, Any] = {"l": old}
    apply_writes(values, {"l": operator.add}, [("a", [("l", [2])]), ("b", [("l", [3])])], 1)
    assert values["l"] == [1, 2, 3]
    assert old == [1]


lists_of_ints = st.lists(st.integers(), max_size=5)


@given(old=lists_of_ints, parts=st.lists(lists_of_ints, max_size=20))
def test_batched_add_of_lists_equals_left_fold(old: list[int], parts: list[list[int]]) -> None:
    assert fold(operator.add, old, parts) == functools.reduce(operator.add, parts, old)


@given(
    old=st.one_of(st.text(max_size=3), st.tuples(st.integers())),
    n=st.integers(0, 5),
)
def test_add_of_other_types_equals_left_fold(old: Any, n: int) -> None:
    parts = [old] * n
    assert fold(operator.add, old, parts) == functools.reduce(operator.add, parts, old)


class Tagged(list[int]):
    def __add__(self, other: Any) -> Tagged:  # type: ignore[override]
        return Tagged([*self, *other, -1])


@given(parts=st.lists(lists_of_ints, min_size=1, max_size=5))
def test_add_of_list_subclass_uses_its_own_add(parts: list[list[int]]) -> None:
    old = Tagged()
    expected = functools.reduce(operator.add, parts, old)
    assert fold(operator.add, old, parts) == expected
    assert expected.count(-1) == len(parts)


@given(
    tasks=st.lists(
        st.tuples(
            st.sampled_from(["a", "b", "c", "d"]),
            st.lists(st.tuples(st.sampled_from(["l", "s"]), lists_of_ints), max_size=3),
        ),
        max_size=8,
    )
)
def test_apply_writes_equals_sequential_reference(
    tasks: list[tuple[str, list[tuple[str, list[int]]]]],
) -> None:
    values: dict[str, Any] = {"l": [0], "s": [9]}
    reducers = {"l": operator.add, "s": lambda old, new: [*old, *reversed(new)]}
    expected: dict[str, Any] = {"l": [0], "s": [9]}
    for _node, writes in tasks:
        for key, value in writes:
            expected[key] = reducers[key](expected[key], value)
    apply_writes(values, reducers, tasks, step=1)
    assert values == expected


def test_merge_module_does_not_import_trio() -> None:
    tree = ast.parse(inspect.getsource(_merge))
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module)
    assert not any(name.split(".")[0] == "trio" for name in imported)
