"""Deterministic application of a superstep's writes: pure, sync, no Trio.

The invariant this module keeps: the state after a step depends only on the
state before it and on the writes *in task order* (the order the step's tasks
were scheduled in), never on the order the tasks finished in. A key without a
reducer takes at most one write per step; a reducer key folds its writes left
to right, ``reducer(reducer(old, w1), w2)``.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from itertools import chain
from typing import Any

from ._exceptions import InvalidUpdateError
from ._schema import MISSING

__all__ = ["Writes", "apply_writes", "fold"]

Writes = Iterable[tuple[str, Any]]
"""The ``(key, value)`` writes of one task, in the order the task made them."""


def _concat_lists(old: Any, values: Sequence[Any]) -> Any:
    # list + list + ... is associative, so one pass over all parts equals the
    # left fold but costs O(total) instead of O(n**2): this is what keeps a
    # 10,000-task Send fan-out into an ``operator.add`` list linear.
    if type(old) is list and all(type(v) is list for v in values):
        return list(chain(old, *values))
    return _fold_plain(operator.add, old, values)


def _fold_plain(reducer: Callable[[Any, Any], Any], old: Any, values: Sequence[Any]) -> Any:
    acc = old
    for value in values:
        acc = reducer(acc, value)
    return acc


_BATCHED: dict[Any, Callable[[Any, Sequence[Any]], Any]] = {operator.add: _concat_lists}


def fold(reducer: Callable[[Any, Any], Any], old: Any, values: Sequence[Any]) -> Any:
    """Fold *values* into *old* with *reducer*, left to right.

    When *old* is ``MISSING`` (a reducer key with no empty value and no value
    yet) the first write is taken as the value.
    """
    if old is MISSING:
        old, values = values[0], values[1:]
        if not values:
            return old
    batched = _BATCHED.get(reducer)
    if batched is not None:
        return batched(old, values)
    return _fold_plain(reducer, old, values)


def apply_writes(
    values: dict[str, Any],
    reducers: Mapping[str, Callable[[Any, Any], Any]],
    tasks: Sequence[tuple[str, Writes]],
    step: int,
) -> list[str]:
    """Apply the writes of a step's tasks to *values* in place; return the keys written.

    Args:
      values: the state, updated in place.
      reducers: key -> reducer.
      tasks: ``(node, writes)`` per task, **in task order**.
      step: the superstep, for error messages.

    Raises:
      InvalidUpdateError: two writes to a key without a reducer. Nothing is
        applied in that case.
    """
    plain: dict[str, Any] = {}
    folded: dict[str, list[Any]] = {}
    order: list[str] = []
    for _node, writes in tasks:
        for key, value in writes:
            if key in reducers:
                bucket = folded.get(key)
                if bucket is None:
                    folded[key] = [value]
                    order.append(key)
                else:
                    bucket.append(value)
            elif key in plain:
                _raise_conflict(key, tasks, step)
            else:
                plain[key] = value
                order.append(key)
    values.update(plain)
    for key, bucket in folded.items():
        try:
            values[key] = fold(reducers[key], values.get(key, MISSING), bucket)
        except Exception as exc:
            exc.add_note(f"in the reducer of key {key!r}, step {step}")
            raise
    return order


def _raise_conflict(key: str, tasks: Sequence[tuple[str, Writes]], step: int) -> None:
    nodes = [node for node, writes in tasks for k, _ in writes if k == key]
    raise InvalidUpdateError(
        f"nodes {', '.join(repr(n) for n in nodes)} all wrote key {key!r} in step {step}, "
        f"but it has no reducer; annotate it as Annotated[<type>, <reducer>] "
        "(e.g. operator.add) or make only one node write it per step",
        key=key,
        nodes=nodes,
        step=step,
    )
