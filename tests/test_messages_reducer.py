"""add_messages against a reference model of LangGraph's algorithm
(``langgraph.graph.message.add_messages``, as the reference describes it step
by step), on generated histories and updates: ids present, missing and
repeated, removals of known and unknown ids, remove-all markers, shorthands.
Also chains and forks of writes, which go through the kept index."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import given, strategies as st

from trigraph.messages import (
    REMOVE_ALL_MESSAGES,
    AIMessage,
    HumanMessage,
    RemoveMessage,
    add_messages,
)

IDS = ["a", "b", "c", "d", None]
_counter = itertools.count()


# -- the reference: messages are (kind, content, id) tuples --------------------

def ref_add(left: list[tuple[str, str, Any]], right: list[tuple[str, str, Any]]) -> list[Any]:
    def with_ids(msgs: list[Any]) -> list[Any]:
        return [(k, c, i if i is not None else f"<new-{next(_counter)}>") for k, c, i in msgs]

    left, right = with_ids(left), with_ids(right)
    remove_all = None
    for idx, (kind, _, mid) in enumerate(right):
        if kind == "remove" and mid == REMOVE_ALL_MESSAGES:
            remove_all = idx
    if remove_all is not None:
        return right[remove_all + 1:]
    merged = list(left)
    by_id = {m[2]: i for i, m in enumerate(merged)}
    to_remove = set()
    for m in right:
        existing = by_id.get(m[2])
        if existing is not None:
            if m[0] == "remove":
                to_remove.add(m[2])
            else:
                to_remove.discard(m[2])
                merged[existing] = m
        else:
            if m[0] == "remove":
                raise ValueError(f"Attempting to delete a message with an ID that doesn't exist "
                                 f"('{m[2]}')")
            by_id[m[2]] = len(merged)
            merged.append(m)
    return [m for m in merged if m[2] not in to_remove]


# -- the bridge ---------------------------------------------------------------

def real(m: tuple[str, str, Any], form: str) -> Any:
    kind, content, mid = m
    if kind == "remove":
        return RemoveMessage(mid)
    role = "user" if kind == "human" else "assistant"
    if form == "dict":
        return {"role": role, "content": content, **({"id": mid} if mid is not None else {})}
    if form == "pair" and mid is None:
        return (role, content)
    if form == "str" and mid is None and kind == "human":
        return content
    cls = HumanMessage if kind == "human" else AIMessage
    return cls(content, id=mid)


def back(m: Any, known: set[Any]) -> tuple[str, str, Any]:
    return (m.type, m.content, m.id if m.id in known else "<new>")


def norm(msgs: list[Any], known: set[Any]) -> list[Any]:
    return [(k, c, i if i in known else "<new>") for k, c, i in msgs]


plain = st.tuples(st.sampled_from(["human", "ai"]), st.sampled_from(["x", "y", "z"]),
                  st.sampled_from(IDS))
remove = st.tuples(st.just("remove"), st.just(""),
                   st.sampled_from(["a", "b", "c", "d", "zz", REMOVE_ALL_MESSAGES]))
update = st.lists(st.one_of(plain, plain, remove), max_size=6)
forms = st.lists(st.sampled_from(["obj", "dict", "pair", "str"]), min_size=6, max_size=6)


def run_both(left: list[Any], right: list[Any], forms: list[str]) -> None:
    known = {m[2] for m in [*left, *right]} - {None}
    try:
        expected: Any = norm(ref_add(left, right), known)
    except ValueError as exc:
        expected = exc
    left_in = [real(m, "obj") for m in left]
    right_in = [real(m, f) for m, f in zip(right, forms * 2, strict=False)]
    snapshot = [(type(m), getattr(m, "id", None)) for m in left_in]
    if isinstance(expected, ValueError):
        with pytest.raises(ValueError, match="doesn't exist"):
            add_messages(left_in, right_in)
        return
    got = add_messages(left_in, right_in)
    assert [back(m, known) for m in got] == expected
    assert all(m.id for m in got)
    assert [(type(m), getattr(m, "id", None)) for m in left_in] == snapshot  # not mutated


@given(st.lists(plain, max_size=6), update, forms)
def test_one_write_matches_langgraph(left: list[Any], right: list[Any], fs: list[str]) -> None:
    run_both(left, right, fs)


@given(st.lists(update, min_size=1, max_size=5), st.integers(0, 4))
def test_chains_and_forks_match_langgraph(writes: list[list[Any]], fork_at: int) -> None:
    """Writes applied one after the other (the path that keeps its index), then
    one more from an earlier result (a fork of the history)."""
    ref: list[Any] = []
    ours: list[Any] = []
    seen: list[tuple[list[Any], list[Any]]] = []
    known: set[Any] = set()
    for right in writes:
        known |= {m[2] for m in right} - {None}
        try:
            ref_next = ref_add(ref, right)
        except ValueError:
            with pytest.raises(ValueError, match="doesn't exist"):
                add_messages(ours, [real(m, "obj") for m in right])
            continue
        ours = add_messages(ours, [real(m, "obj") for m in right])
        ref = ref_next
        # Generated ids are the same message on both sides: pair them up.
        ref = [(k, c, o.id) if i.startswith("<new") else (k, c, i)
               for (k, c, i), o in zip(ref, ours, strict=True)]
        known |= {m.id for m in ours}
        assert [back(m, known) for m in ours] == norm(ref, known)
        seen.append((ref, ours))
    if seen:
        base_ref, base_ours = seen[min(fork_at, len(seen) - 1)]
        right = [("human", "fork", "d"), ("ai", "fork", None)]
        known.add("d")
        assert [back(m, known) for m in add_messages(base_ours, [real(m, "obj")
                                                                 for m in right])] == \
            norm(ref_add(base_ref, right), known)


def test_the_quirks_of_langgraph_are_kept() -> None:
    h = HumanMessage("hi", id="1")
    # remove-all keeps only what follows the last marker, duplicates included
    out = add_messages([h], [RemoveMessage(REMOVE_ALL_MESSAGES), AIMessage("x", id="2"),
                             AIMessage("y", id="2")])
    assert [(m.content, m.id) for m in out] == [("x", "2"), ("y", "2")]
    # a removal cancelled by a later write of the id keeps the message's place
    out = add_messages([h, AIMessage("a", id="2")], [RemoveMessage("1"), HumanMessage("again",
                                                                                        id="1")])
    assert [m.content for m in out] == ["again", "a"]
    # a non-list is one message; the error names the side that is falsy
    assert add_messages("hi", ("ai", "yo"))[1].content == "yo"
    with pytest.raises(ValueError, match="Only received: 'right'"):
        add_messages([], None)
    with pytest.raises(ValueError, match="Only received: 'left'"):
        add_messages([h], None)
    reducer = add_messages()
    assert [m.content for m in reducer([h], "x")] == ["hi", "x"]
    assert reducer.prepare is add_messages.prepare
    with pytest.raises(ValueError, match="not supported"):
        add_messages([h], [h], format="langchain-openai")


def test_an_append_does_not_rebuild_the_index(monkeypatch: pytest.MonkeyPatch) -> None:
    from trigraph.messages import _reducer

    history = add_messages([], [HumanMessage(str(i), id=str(i)) for i in range(1000)])
    reads = []
    real_get = _reducer._get_id
    monkeypatch.setattr(_reducer, "_get_id", lambda m: reads.append(m.id) or real_get(m))
    for i in range(50):
        history = add_messages(history, [AIMessage("r", id=f"r{i}")])
    assert len(reads) == 50  # each new message's id, never the history's
    assert len(history) == 1050
    history = add_messages(history, [AIMessage("edited", id="5")])  # a replacement: O(N)
    assert history[5].content == "edited"
    assert len(reads) == 50 + 1 + 1050
