"""A person's approval of tool calls, through ``interrupt()``.

Before any call of a turn runs, the calls of the tools that need approval
are put to a person in one ``interrupt({"action_requests": [...]})``; the
answer, ``{"decisions": [...]}``, has one decision per request, in order:
``{"type": "approve"}``, ``{"type": "reject", "message": str}`` or
``{"type": "edit", "args": {...}}``. An answer that does not fit is not an
error that would leave the thread stuck: the same requests are asked again
with an ``"error"`` saying what was wrong. The invariant: no gated call runs
without a decision that was read and checked.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from .. import interrupt
from ..messages import InvalidToolCall, ToolCall

__all__ = ["ask"]

_MAX_ASKS: Final = 100


def _check(answer: Any, gated: Sequence[ToolCall]) -> tuple[dict[str, Any], str | None]:
    if not isinstance(answer, Mapping) or not isinstance(answer.get("decisions"), list):
        return {}, ('answer with {"decisions": [...]}, one decision per action request, '
                    f"not {answer!r:.200}")
    decisions = answer["decisions"]
    if len(decisions) != len(gated):
        return {}, (f"{len(gated)} action request(s) need {len(gated)} decision(s), "
                    f"got {len(decisions)}")
    out: dict[str, Any] = {}
    for i, (call, decision) in enumerate(zip(gated, decisions, strict=True)):
        kind = decision.get("type") if isinstance(decision, Mapping) else None
        if kind == "approve":
            out[call.id or ""] = None
        elif kind == "reject":
            message = decision.get("message")
            if message is not None and not isinstance(message, str):
                return {}, f"decision {i}: a reject's 'message' is a string"
            out[call.id or ""] = {"type": "reject", "message": message}
        elif kind == "edit":
            args = decision.get("args")
            if not isinstance(args, Mapping):
                return {}, f"decision {i}: an edit needs 'args', an object of arguments"
            out[call.id or ""] = {"type": "edit", "args": dict(args)}
        else:
            return {}, (f"decision {i} ({call.name}): 'type' is 'approve', 'reject' or 'edit', "
                        f"not {decision!r:.100}")
    return out, None


def ask(
    calls: Sequence[ToolCall | InvalidToolCall], approve: frozenset[str]
) -> dict[str, Any]:
    """The decisions (by call id; ``None``: approved) on the calls of tools in
    *approve*; pauses the run (``interrupt()``) until a person answers."""
    gated = [c for c in calls if isinstance(c, ToolCall) and c.name in approve]
    if not gated:
        return {}
    request: dict[str, Any] = {
        "action_requests": [{"name": c.name, "args": c.args, "id": c.id} for c in gated]
    }
    error: str | None = None
    for _ in range(_MAX_ASKS):
        answer = interrupt(request if error is None else {**request, "error": error})
        decisions, error = _check(answer, gated)
        if error is None:
            return decisions
    raise ValueError(f"no usable decision after {_MAX_ASKS} answers; the last: {error}")
