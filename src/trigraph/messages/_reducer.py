"""``add_messages``: LangGraph's message reducer, with ids fixed at write time
and an append that does not rebuild an index of the whole history.

The semantics are LangGraph's exactly (``langgraph.graph.message``): a
message whose id is present replaces it in place; other messages are
appended; ``RemoveMessage(id)`` deletes (an unknown id is a ``ValueError``);
a later write of a removed id in the same update cancels the removal; the
last ``RemoveMessage(REMOVE_ALL_MESSAGES)`` keeps only what follows it.

Two things differ, neither visible in the result: the caller's messages
are never changed (LangGraph sets missing ids on them in place; here a copy
with an id is made), and the set of ids of a result is kept (for a few
recent results, by identity) and shared with the results appended to it,
so an append costs the list copy plus O(new messages) instead of re-reading
the whole history. The set holds every id of each list it is kept for, so
an id it lacks is certainly new; an id it has (a replacement, a removal, or
an id another branch of a forked history added) takes LangGraph's general
merge over the list itself, so the result never depends on the cache. A
list of another length than when it was kept (changed in place) is read
again.
"""

from __future__ import annotations

import functools
import operator
import threading
import uuid
from collections.abc import Callable
from typing import Annotated, Any, Final, Literal, TypedDict

import attrs

from ._convert import to_message
from ._values import MESSAGE_TYPES, AnyMessage, RemoveMessage

__all__ = ["REMOVE_ALL_MESSAGES", "MessagesState", "add_messages", "prepare_messages"]

REMOVE_ALL_MESSAGES: Final = "__remove_all__"
"""The id of a ``RemoveMessage`` that deletes every message written before it."""

_CACHE_SIZE: Final = 32
_cache: dict[int, tuple[list[Any], int, set[str]]] = {}
_lock = threading.Lock()


def _new_id() -> str:
    return str(uuid.uuid4())


def _coerce(messages: list[Any]) -> list[AnyMessage]:
    """*messages* as message values (the same list when they already are)."""
    if MESSAGE_TYPES.issuperset(map(type, messages)):
        return messages
    return [to_message(m) for m in messages]


def _with_ids(messages: list[AnyMessage]) -> list[AnyMessage]:
    """*messages*, with copies carrying a new id for those that have none."""
    for i, m in enumerate(messages):
        if m.id is None:
            out = messages[:i]
            out.extend(m if m.id is not None else attrs.evolve(m, id=_new_id())
                       for m in messages[i:])
            return out
    return messages


def prepare_messages(value: Any) -> list[AnyMessage]:
    """What a write to a messages key becomes before it is stored: message
    values (shorthands coerced), each with an id (new ones for those
    without). The engine calls it once per write, so an id assigned here is
    the one every later read, resume and replay sees.

    Example:
      >>> [type(m).__name__ for m in prepare_messages(["hi", ("ai", "hello")])]
      ['HumanMessage', 'AIMessage']
      >>> all(m.id for m in prepare_messages("hi"))
      True

    .. versionadded:: 0.2
    """
    return _with_ids(_coerce(value if isinstance(value, list) else [value]))


def _cached_ids(left: list[AnyMessage]) -> set[str] | None:
    entry = _cache.get(id(left))
    if entry is not None and entry[0] is left and entry[1] == len(left):
        return entry[2]
    return None


def _remember(result: list[AnyMessage], ids: set[str]) -> None:
    with _lock:
        if len(_cache) >= _CACHE_SIZE:
            del _cache[next(iter(_cache))]
        _cache[id(result)] = (result, len(result), ids)


_get_id = operator.attrgetter("id")


def _merge(left: Any, right: Any, format: str | None = None) -> list[AnyMessage]:
    if format is not None:
        raise ValueError(
            f"add_messages(format={format!r}) is not supported: trigraph's messages are sent "
            "in OpenAI's format by ChatModel already; use add_messages without format="
        )
    if not isinstance(left, list):
        left = [left]
    if not isinstance(right, list):
        right = [right]
    ids = _cached_ids(left)
    if ids is None:
        left = _coerce(left)
        ids = set(map(_get_id, left))
        if None in ids:
            left = _with_ids(left)
            ids = set(map(_get_id, left))
    new_messages: list[AnyMessage] = _with_ids(_coerce(right))
    right = new_messages
    remove_all = None
    has_remove = False
    for i, m in enumerate(right):
        if type(m) is RemoveMessage:
            has_remove = True
            if m.id == REMOVE_ALL_MESSAGES:
                remove_all = i
    if remove_all is not None:
        return new_messages[remove_all + 1:]
    if not has_remove:
        new = set(map(_get_id, right))
        if len(new) == len(right) and ids.isdisjoint(new):
            # Only new messages: an append. *ids* may be shared with the results
            # of other writes to *left* (a fork); it holds every id of *left*, so
            # a miss is certain, and a hit (perhaps another branch's) is checked
            # by the general merge below.
            merged: list[AnyMessage] = left + right
            ids |= new
            _remember(merged, ids)
            return merged
    return _general(left, right)


def _general(left: list[AnyMessage], right: list[AnyMessage]) -> list[AnyMessage]:
    """LangGraph's merge loop, step for step, on a copy of *left* and a fresh index."""
    merged = left.copy()
    by_id = dict(zip(map(_get_id, left), range(len(left)), strict=True))
    to_remove: set[str] = set()
    for m in right:
        mid: str = m.id  # type: ignore[assignment]
        existing = by_id.get(mid)
        if existing is not None:
            if type(m) is RemoveMessage:
                to_remove.add(mid)
            else:
                to_remove.discard(mid)
                merged[existing] = m
        else:
            if type(m) is RemoveMessage:
                raise ValueError(
                    f"Attempting to delete a message with an ID that doesn't exist ('{mid}')"
                )
            by_id[mid] = len(merged)
            merged.append(m)
    if to_remove:
        return [m for m in merged if m.id not in to_remove]
    _remember(merged, set(by_id))
    return merged


def _reducer(format: str | None) -> Callable[[Any, Any], list[AnyMessage]]:
    fn = functools.partial(_merge, format=format)
    fn.prepare = prepare_messages  # type: ignore[attr-defined]
    return fn


def add_messages(
    left: Any = None, right: Any = None, *, format: Literal["langchain-openai"] | None = None
) -> Any:
    """Merge the messages *right* into *left* (the reducer of a messages key).

    A message of *right* whose id is already in *left* replaces it in place;
    the others are appended; ``RemoveMessage(id)`` deletes that message;
    ``RemoveMessage(REMOVE_ALL_MESSAGES)`` deletes everything before it
    (only what follows the last one is kept). Both sides may be a message,
    a list, or LangChain's shorthands (a ``str`` is a human message, a
    ``(role, content)`` pair, an OpenAI-style dict). Messages without an id
    get one (in a copy: the caller's objects are never changed); in a graph
    the id is given once, when the message is written (see
    ``add_messages.prepare``), and never changes after.

    Appending costs a copy of the list plus O(new messages): the index of
    ids is carried from one result to the next instead of rebuilt.

    Raises:
      ValueError: ``RemoveMessage`` of an id that is not there; only one of
        *left* and *right* given; a shorthand that is no message.

    Example:
      >>> from trigraph.messages import AIMessage, HumanMessage, RemoveMessage
      >>> history = [HumanMessage("hi", id="1"), AIMessage("hello", id="2")]
      >>> add_messages(history, AIMessage("hello!", id="2"))
      [HumanMessage('hi', id='1'), AIMessage('hello!', id='2')]
      >>> [m.content for m in add_messages(history, [RemoveMessage("1"), ("user", "bye")])]
      ['hello', 'bye']

    .. versionadded:: 0.2
    """
    if left is not None and right is not None:
        return _merge(left, right, format)
    if left is not None or right is not None:
        raise ValueError(
            "Must specify non-null arguments for both 'left' and 'right'. Only "
            f"received: '{'left' if left else 'right'}'."
        )
    return _reducer(format)


add_messages.prepare = prepare_messages  # type: ignore[attr-defined]


class MessagesState(TypedDict):
    """A state with one key, ``messages``, merged by :func:`add_messages`.

    Subclass it to add keys of your own.

    .. versionadded:: 0.2
    """

    messages: Annotated[list[AnyMessage], add_messages]
