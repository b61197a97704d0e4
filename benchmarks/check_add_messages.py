"""trigraph's add_messages against LangGraph's own, on generated inputs.

Run in the benchmark venv (it has LangGraph and LangChain):

    .bench-venv/bin/python benchmarks/check_add_messages.py [--examples 2000]

Hypothesis draws a history and an update from one abstract description and
builds each side from it: LangChain message objects (or the same shorthand:
a str, a (role, content) pair, an OpenAI dict with tool_calls) for
LangGraph, trigraph message values (or the same shorthand) for trigraph.
Both reducers run; the results must agree message by message (type,
content, id, tool calls, tool_call_id, status), where an id that neither
input had (one the reducer made) only has to be present; and when one
raises (an unknown id removed, a shorthand that is no message), so must the
other. Prints the number of examples checked.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from hypothesis import HealthCheck, given, settings, strategies as st
from langchain_core import messages as lc
from langgraph.graph.message import add_messages as lg_add

import trigraph.messages as tg

IDS = ["a", "b", "c", None]
ROLES = ["user", "human", "assistant", "ai", "system", "tool", "developer", "wizard"]


@st.composite
def item(draw: Any) -> dict[str, Any]:
    kind = draw(st.sampled_from(["obj", "obj", "str", "pair", "dict", "remove", "remove_all"]))
    return {
        "kind": kind,
        "role": draw(st.sampled_from(ROLES)),
        "content": draw(st.sampled_from(["x", "y", ""])),
        "id": draw(st.sampled_from(IDS)),
        "rid": draw(st.sampled_from(["a", "b", "zz"])),
        "calls": draw(st.sampled_from([None, [("f", {"q": 1}, "call_1")],
                                       [("f", '{"q":', "call_2")]])),
    }


def _lc_calls(calls: Any) -> list[dict[str, Any]]:
    return [{"id": i, "type": "function", "function": {
        "name": n, "arguments": a if isinstance(a, str) else json.dumps(a)}} for n, a, i in calls]


def build(spec: dict[str, Any], side: str) -> Any:
    kind, role, content, mid = spec["kind"], spec["role"], spec["content"], spec["id"]
    if kind == "remove":
        return lc.RemoveMessage(id=spec["rid"]) if side == "lg" else tg.RemoveMessage(spec["rid"])
    if kind == "remove_all":
        return (lc.RemoveMessage(id="__remove_all__") if side == "lg"
                else tg.RemoveMessage(tg.REMOVE_ALL_MESSAGES))
    if kind == "str":
        return content
    if kind == "pair":
        return (role, content)
    if kind == "dict":
        d: dict[str, Any] = {"role": role, "content": content}
        if mid is not None:
            d["id"] = mid
        if role == "tool":
            d["tool_call_id"] = "call_1"
        if spec["calls"] and role in ("assistant", "ai"):
            d["tool_calls"] = _lc_calls(spec["calls"])
        return d
    # obj: a plain message of each library
    if role in ("wizard", "developer", "tool"):
        role = "user"
    if side == "lg":
        cls = {"user": lc.HumanMessage, "human": lc.HumanMessage, "assistant": lc.AIMessage,
               "ai": lc.AIMessage, "system": lc.SystemMessage}[role]
        return cls(content=content, id=mid)
    cls = {"user": tg.HumanMessage, "human": tg.HumanMessage, "assistant": tg.AIMessage,
           "ai": tg.AIMessage, "system": tg.SystemMessage}[role]
    return cls(content, id=mid)


def view(m: Any, known: set[str]) -> tuple[Any, ...]:
    calls = tuple((c["name"], c["args"], c["id"]) for c in getattr(m, "tool_calls", ()) or ())
    mid = m.id if m.id in known else ("<new>" if m.id else None)
    return (m.type, m.content, mid, calls, getattr(m, "tool_call_id", None),
            getattr(m, "status", "success"))


def outcome(fn: Any, left: list[Any], right: list[Any], known: set[str]) -> Any:
    try:
        return [view(m, known) for m in fn(left, right)]
    except NotImplementedError:
        return ("raises", "NotImplementedError")
    except (ValueError, TypeError, KeyError):
        # LangChain raises a KeyError (a tool pair without tool_call_id) or a
        # pydantic ValidationError where trigraph raises a ValueError naming it.
        return ("raises", "ValueError")


checked = 0


@given(st.lists(item(), max_size=5), st.lists(item(), max_size=5))
def check(left_spec: list[dict[str, Any]], right_spec: list[dict[str, Any]]) -> None:
    global checked
    left_spec = [s for s in left_spec if s["kind"] not in ("remove", "remove_all")]
    known = {s["id"] for s in [*left_spec, *right_spec] if s["id"]} | {"a", "b", "zz"} | {
        "__remove_all__"}
    lg = outcome(lg_add, [build(s, "lg") for s in left_spec],
                 [build(s, "lg") for s in right_spec], known)
    ours = outcome(tg.add_messages, [build(s, "tg") for s in left_spec],
                   [build(s, "tg") for s in right_spec], known)
    assert ours == lg, f"\nleft={left_spec}\nright={right_spec}\nlanggraph={lg}\ntrigraph={ours}"
    checked += 1


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--examples", type=int, default=2000)
    args = parser.parse_args()
    settings(max_examples=args.examples, deadline=None,
             suppress_health_check=list(HealthCheck))(check)()
    print(f"add_messages agrees with LangGraph's on {checked} generated examples")


if __name__ == "__main__":
    main()
