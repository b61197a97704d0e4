"""The graphs a server serves, as the API's *assistants*.

Each graph is one system assistant whose id is
``uuid5(6ba7b821-9dad-11d1-80b4-00c04fd430c8, graph_id)``, the id LangGraph's
server gives it, so client code that hard-codes those ids keeps working; the
run routes also take the graph id itself as ``assistant_id``. Every graph is
compiled (or re-bound) to the server's own checkpointer. The drawing
(``/graph``) is read from ``to_mermaid()``; the JSON Schemas from the state
schema, through msgspec when it can describe the type.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from typing import Annotated, Any, get_args, get_origin, get_type_hints

import attrs
import msgspec

from trigraph import END, START, CompiledGraph, StateGraph
from trigraph.abc import Checkpointer

__all__ = ["ASSISTANT_NAMESPACE", "Graphs", "assistant_id"]

ASSISTANT_NAMESPACE = uuid.UUID("6ba7b821-9dad-11d1-80b4-00c04fd430c8")
_EPOCH = "1970-01-01T00:00:00+00:00"


def assistant_id(graph_id: str) -> str:
    """The system assistant id of *graph_id*.

    Example:
      >>> assistant_id("chain")
      '608f7b9c-04e5-5cf2-a3f7-ba75a3719808'
    """
    return str(uuid.uuid5(ASSISTANT_NAMESPACE, graph_id))


_EDGE = re.compile(r"^\s*(?P<src>.+?) (?P<arrow>-->|-\.->) (?:\|(?P<label>[^|]*)\| )?(?P<dst>\S+)$")


def _drawing(graph: CompiledGraph) -> dict[str, Any]:
    nodes: list[dict[str, Any]] = [{"id": START, "type": "schema", "data": START}]
    nodes += [{"id": n, "type": "runnable", "data": {"id": ["trigraph", n], "name": n}}
              for n in graph.nodes]
    nodes.append({"id": END, "type": "schema", "data": END})
    edges: list[dict[str, Any]] = []
    seen: set[tuple[str, str, bool]] = set()
    for line in graph.to_mermaid().splitlines()[1:]:
        match = _EDGE.match(line)
        if match is None:
            continue
        conditional = match["arrow"] == "-.->"
        dst = match["dst"]
        for src in match["src"].split(" & "):
            if conditional and src == dst and match["label"]:
                continue  # a router without a path map: its targets are unknown
            key = (src, dst, conditional)
            if key in seen:
                continue
            seen.add(key)
            edge: dict[str, Any] = {"source": src, "target": dst}
            if conditional:
                edge["conditional"] = True
                if match["label"]:
                    edge["data"] = match["label"]
            edges.append(edge)
    return {"nodes": nodes, "edges": edges}


def _type_schema(tp: Any) -> dict[str, Any]:
    """msgspec's JSON Schema of *tp*, its top-level reference resolved; ``{}``
    for a type it cannot describe."""
    if get_origin(tp) is Annotated:
        tp = get_args(tp)[0]
    try:
        schema: dict[str, Any] = msgspec.json.schema(tp)
    except Exception:
        return {}
    ref = schema.get("$ref", "")
    defs = schema.get("$defs", {})
    name = ref.rsplit("/", 1)[-1]
    if name in defs:
        top = dict(defs[name])
        others = {k: v for k, v in defs.items() if k != name}
        if others:
            top["$defs"] = others
        return top
    return schema


def _json_schema(tp: Any, title: str) -> dict[str, Any]:
    """A JSON Schema of a state schema: msgspec's where it can describe the
    type; else an object schema built field by field, each field described
    where possible."""
    if tp is None or tp is dict:
        return {"type": "object", "title": title}
    whole = _type_schema(tp)
    if whole:
        whole.setdefault("title", title)
        return whole
    try:
        hints = get_type_hints(tp, include_extras=True)
    except Exception:
        return {"type": "object", "title": title}
    if attrs.has(tp):
        hints = {a.name: hints.get(a.name, Any) for a in attrs.fields(tp)}
    required = sorted(getattr(tp, "__required_keys__", ()))
    schema = {"type": "object", "title": title,
              "properties": {k: _type_schema(v) for k, v in hints.items()}}
    if required:
        schema["required"] = required
    return schema


class Graphs:
    """The served graphs, by graph id, bound to *checkpointer*."""

    def __init__(
        self, graphs: Mapping[str, CompiledGraph | StateGraph[Any]], checkpointer: Checkpointer
    ) -> None:
        if not graphs:
            raise ValueError("a server needs at least one graph")
        self.graphs: dict[str, CompiledGraph] = {}
        self.sources: dict[str, CompiledGraph | StateGraph[Any]] = dict(graphs)
        for name, graph in graphs.items():
            if isinstance(graph, StateGraph):
                self.graphs[name] = graph.compile(checkpointer=checkpointer)
            elif isinstance(graph, CompiledGraph):
                self.graphs[name] = graph.with_checkpointer(checkpointer)
            else:
                raise TypeError(f"graph {name!r} is a {type(graph).__name__}, not a graph")
        self.by_assistant = {assistant_id(name): name for name in self.graphs}

    def resolve(self, assistant: str) -> str | None:
        """The graph id an ``assistant_id`` (a system id or a graph id) names."""
        if assistant in self.graphs:
            return assistant
        return self.by_assistant.get(assistant.lower())

    def assistant(self, graph_id: str) -> dict[str, Any]:
        return {
            "assistant_id": assistant_id(graph_id), "graph_id": graph_id, "config": {},
            "context": {}, "metadata": {"created_by": "system"}, "name": graph_id,
            "created_at": _EPOCH, "updated_at": _EPOCH, "version": 1, "description": None,
        }

    def drawing(self, graph_id: str) -> dict[str, Any]:
        return _drawing(self.graphs[graph_id])

    def schemas(self, graph_id: str) -> dict[str, Any]:
        builder = self.graphs[graph_id].builder
        state = _json_schema(builder.schema, graph_id)
        return {
            "graph_id": graph_id,
            "input_schema": _json_schema(builder.input_schema, f"{graph_id}_input")
            if builder.input_schema is not None else state,
            "output_schema": _json_schema(builder.output_schema, f"{graph_id}_output")
            if builder.output_schema is not None else state,
            "state_schema": state,
            "config_schema": {"type": "object", "title": "Config", "properties": {}},
            "context_schema": {"type": "object", "title": "Context", "properties": {}},
        }
