"""From trigraph's events to the LangGraph Server API's stream events.

:class:`Converter` turns each engine event of one run into the ``(event
name, JSON data)`` frames that run's client asked for, in the API's shapes:
``values`` (the state), ``updates`` (``{node: update}``), ``custom``,
``messages`` (a ``[message chunk, metadata]`` pair per token, for the
``messages-tuple`` mode; accumulated ``messages/partial`` for ``messages``),
``tasks`` and ``debug``. Subgraph events are named ``mode|ns`` and sent only
with ``stream_subgraphs``. A pause is one event ``{"__interrupt__": [...]}``
after the last step's events (as ``updates`` if asked for, else ``values``).
It is pure and sync: it never blocks and owns no task.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable
from typing import Any

import attrs
import orjson

from trigraph.events import (
    Custom,
    Event,
    Interrupted,
    TaskEnd,
    TaskStart,
    Token,
    Update,
    Values,
)

__all__ = ["API_MODES", "Converter", "dumps", "engine_modes"]

API_MODES = frozenset(
    {"values", "updates", "custom", "messages", "messages-tuple", "tasks", "debug"}
)
_MESSAGE_TYPES = {
    "AIMessage": "ai", "AIMessageChunk": "AIMessageChunk", "HumanMessage": "human",
    "SystemMessage": "system", "ToolMessage": "tool", "RemoveMessage": "remove",
}


def _default(obj: Any) -> Any:
    cls = type(obj)
    if attrs.has(cls):
        data = {a.name: getattr(obj, a.name) for a in attrs.fields(cls)}
        kind = _MESSAGE_TYPES.get(cls.__name__)
        if kind is not None and cls.__module__.startswith("trigraph."):
            data["type"] = kind
        return data
    if isinstance(obj, (set, frozenset)):
        return sorted(obj, key=repr)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    dump = getattr(obj, "model_dump", None)
    if callable(dump):
        return dump(mode="json")
    if isinstance(obj, bytes):
        return obj.decode("utf-8", "replace")
    return str(obj)  # what JSON cannot hold is shown, not dropped


def dumps(value: Any) -> bytes:
    """*value* as compact JSON; attrs values, dataclasses and sets included,
    anything else JSON lacks as its ``str()``."""
    return orjson.dumps(value, default=_default, option=orjson.OPT_NON_STR_KEYS)


def engine_modes(modes: Iterable[str]) -> frozenset[str]:
    """The engine modes that feed the API *modes*."""
    out: set[str] = set()
    for mode in modes:
        if mode in ("messages", "messages-tuple"):
            out.add("messages")
        elif mode == "debug":
            out.update(("tasks", "values"))
        else:
            out.add(mode)
    return frozenset(out)


def interrupt_json(value: Any, id: str) -> dict[str, Any]:
    return {"value": value, "id": id}


class Converter:
    """One run's event translation (see the module docstring).

    Attributes:
      interrupts: the top-level pauses seen, for the thread's ``interrupts``.
    """

    def __init__(self, modes: Iterable[str], *, subgraphs: bool, run_id: str) -> None:
        self.modes = frozenset(modes)
        self.subgraphs = subgraphs
        self.run_id = run_id
        self.interrupts: list[Interrupted] = []
        self._pending: list[Interrupted] = []
        self._results: dict[tuple[tuple[str, ...], str, int], Any] = {}
        self._partial: dict[str, str] = {}

    def _name(self, mode: str, ns: tuple[str, ...]) -> str:
        return mode if not ns else "|".join((mode, *ns))

    def convert(self, event: Event) -> list[tuple[str, bytes]]:
        """The frames for *event* (often one, sometimes none)."""
        if isinstance(event, Interrupted):
            if event.ns == ():
                self._pending.append(event)
                self.interrupts.append(event)
            return []
        out = self.flush() if self._pending else []
        ns = event.ns
        if ns and not self.subgraphs:
            return out
        modes = self.modes
        if isinstance(event, Custom):
            if "custom" in modes:
                out.append((self._name("custom", ns), dumps(event.data)))
        elif isinstance(event, Values):
            if "values" in modes:
                out.append((self._name("values", ns), dumps(event.state)))
            if "debug" in modes:
                out.append((self._name("debug", ns), dumps(self._debug(
                    event.step, "checkpoint", {"values": event.state, "step": event.step}))))
        elif isinstance(event, Update):
            if "tasks" in modes or "debug" in modes:
                self._results[(ns, event.node, event.step)] = event.update
            if "updates" in modes:
                out.append((self._name("updates", ns), dumps({event.node: event.update})))
        elif isinstance(event, Token):
            out.extend(self._token(event))
        elif isinstance(event, TaskStart):
            payload: dict[str, Any] = {"id": event.task_id, "name": event.node, "input": None,
                       "triggers": [], "metadata": {}}
            if "tasks" in modes:
                out.append((self._name("tasks", ns), dumps(payload)))
            if "debug" in modes:
                out.append((self._name("debug", ns),
                            dumps(self._debug(event.step, "task", payload))))
        elif isinstance(event, TaskEnd):
            update = self._results.pop((ns, event.node, event.step), None)
            result = list(update.items()) if isinstance(update, dict) else []
            payload = {"id": event.task_id, "name": event.node, "error": event.error,
                       "result": result, "interrupts": []}
            if "tasks" in modes:
                out.append((self._name("tasks", ns), dumps(payload)))
            if "debug" in modes:
                out.append((self._name("debug", ns),
                            dumps(self._debug(event.step, "task_result", payload))))
        return out

    def _debug(self, step: int, kind: str, payload: Any) -> dict[str, Any]:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + "Z"
        return {"step": step, "timestamp": stamp, "type": kind, "payload": payload}

    def _token(self, event: Token) -> list[tuple[str, bytes]]:
        msg_id = f"run--{self.run_id}-{event.task_id or event.node}-{event.stream_id}"
        ns = event.ns
        meta = {
            "run_id": self.run_id, "langgraph_node": event.node,
            "langgraph_step": event.step, "langgraph_checkpoint_ns": "|".join(ns),
            "ls_model_name": event.model,
        }
        out: list[tuple[str, bytes]] = []
        if "messages-tuple" in self.modes:
            chunk: dict[str, Any] = {"type": "AIMessageChunk", "content": event.text, "id": msg_id,
                     "tool_calls": [], "tool_call_chunks": [], "invalid_tool_calls": [],
                     "additional_kwargs": {}, "response_metadata": {}, "name": None}
            out.append((self._name("messages", ns), dumps([chunk, meta])))
        if "messages" in self.modes:
            text = self._partial.get(msg_id)
            if text is None:
                text = ""
                out.append((self._name("messages/metadata", ns),
                            dumps({msg_id: {"metadata": meta}})))
            text += event.text
            self._partial[msg_id] = text
            out.append((self._name("messages/partial", ns), dumps(
                [{"type": "ai", "content": text, "id": msg_id, "tool_calls": [],
                  "invalid_tool_calls": [], "additional_kwargs": {},
                  "response_metadata": {}, "name": None}])))
        return out

    def flush(self) -> list[tuple[str, bytes]]:
        """The event announcing the pauses seen since the last frame, if any."""
        if not self._pending:
            return []
        data = dumps({"__interrupt__": [interrupt_json(e.value, e.id) for e in self._pending]})
        self._pending = []
        return [("updates" if "updates" in self.modes else "values", data)]
