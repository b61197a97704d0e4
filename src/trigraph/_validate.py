"""Whole-graph checks run by ``compile()``.

Each failure raises :class:`GraphValidationError` naming the node or edge at
fault and, where there is one, the usual fix. The checks only read the
frozen ``GraphSpec``; they never call a node or a router.
"""

from __future__ import annotations

from ._exceptions import GraphValidationError
from ._graph import GraphSpec
from ._types import END, START

__all__ = ["validate"]


def _known(spec: GraphSpec, name: str, where: str) -> None:
    if name != END and name not in spec.nodes:
        hint = ""
        close = [n for n in spec.nodes if n.lower() == name.lower()]
        if close:
            hint = f" (did you mean {close[0]!r}?)"
        raise GraphValidationError(f"{where} names unknown node {name!r}{hint}", node=name)


def validate(spec: GraphSpec) -> None:
    """Raise :class:`GraphValidationError` if *spec* cannot run as a graph."""
    if not spec.nodes:
        raise GraphValidationError("the graph has no nodes; add one with add_node()")
    for source, targets in spec.edges.items():
        if source != START:
            _known(spec, source, f"edge {source!r} -> ...")
        for target in targets:
            _known(spec, target, f"edge {source!r} -> {target!r}")
    for join in spec.joins:
        for source in sorted(join.sources):
            _known(spec, source, f"join edge {sorted(join.sources)} -> {join.target!r}")
        _known(spec, join.target, f"join edge {sorted(join.sources)} -> {join.target!r}")
    for source, branches in spec.branches.items():
        if source != START:
            _known(spec, source, f"conditional edge from {source!r}")
        for branch in branches:
            if branch.path_map is not None:
                for target in branch.path_map.values():
                    _known(spec, target, f"path_map of the conditional edge from {source!r}")
    for node in spec.nodes.values():
        for target in node.destinations:
            _known(spec, target, f"destinations of node {node.name!r}")

    if START not in spec.edges and START not in spec.branches:
        raise GraphValidationError(
            "the graph has no entry point: add an edge from START, "
            "e.g. add_edge(START, 'first_node')",
            node=START,
        )
    _check_reachable(spec)


def _successors(spec: GraphSpec, name: str) -> list[str] | None:
    """Where *name* can lead; ``None`` means anywhere.

    Any router can lead anywhere: without a path_map its names are free, and
    with one it may still return ``Send`` objects to any node. So can a node
    that may return a ``Command`` whose ``goto`` was not declared (with
    ``destinations=`` or a ``-> Command[Literal[...]]`` annotation). Once such
    a node is reachable, every node counts as reachable; the check catches
    nodes provably cut off: in graphs (or parts of graphs) wired by edges,
    joins and declared destinations alone.
    """
    out = list(spec.edges.get(name, ()))
    for join in spec.joins_by_source.get(name, ()):
        out.append(join.target)
    if spec.branches.get(name):
        return None
    node = spec.nodes.get(name)
    if node is not None:
        if node.goto_anywhere:
            return None
        out.extend(node.destinations)
    return out


def _check_reachable(spec: GraphSpec) -> None:
    seen = {START}
    todo = [START]
    while todo:
        name = todo.pop()
        nexts = _successors(spec, name)
        if nexts is None:
            return  # a free router can reach any node
        for target in nexts:
            if target not in seen:
                seen.add(target)
                todo.append(target)
    for name in spec.nodes:
        if name not in seen:
            raise GraphValidationError(
                f"node {name!r} is unreachable from START: no edge, join or path_map leads "
                f"to it; add one, or if a Command(goto=...) reaches it, declare it with "
                f"add_node(..., destinations=({name!r},)) on the node that sends it there",
                node=name,
            )
