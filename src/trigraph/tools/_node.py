"""``ToolNode``: the tool calls of the last ``AIMessage``, run as child tasks
of one nursery inside the node's task; and ``tools_condition``.

Each call that has no answer yet runs in its own child task (bounded by
``max_concurrency``, each limited by ``timeout``) through ``trigraph.once``
keyed by the call's id, so a call that finished is recorded with the node
task and never runs again when the task re-runs (after an ``interrupt()``
in a sibling, an error or a crash). Answers are returned in call order.

The invariants: when the node returns or raises, no call is still running
(the nursery waits for every child); every pending call gets exactly one
answer (``handle_errors=True``) or the node raises after cancelling the
others (``False``); ``trio.Cancelled`` is never turned into an answer, and
an ``interrupt()`` in one call lets the others finish before the node
pauses with every call's interrupts at once.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any, Final

import trio

from .. import END, Command, GraphInterrupt, GraphValidationError, once
from .._util import final
from ..messages import AIMessage, InvalidToolCall, ToolCall, ToolMessage
from ._errors import ToolTimeoutError
from ._tool import Tool, stream_writer, tool

__all__ = ["ToolNode", "tools_condition"]

_FIX: Final = "Please fix your mistakes."


def _messages(state: Any, key: str) -> Sequence[Any]:
    if isinstance(state, list):
        return state
    messages = state.get(key) if isinstance(state, Mapping) else getattr(state, key, None)
    if not isinstance(messages, list):
        raise ValueError(f"no message list at {key!r} in the state {type(state).__name__}")
    return messages


def pending_calls(messages: Sequence[Any]) -> list[ToolCall | InvalidToolCall]:
    """The calls of the last ``AIMessage`` that no ``ToolMessage`` after it answers."""
    for i in range(len(messages) - 1, -1, -1):
        msg = messages[i]
        if type(msg) is AIMessage:
            answered = {m.tool_call_id for m in messages[i + 1:] if type(m) is ToolMessage}
            calls: list[ToolCall | InvalidToolCall] = [*msg.tool_calls, *msg.invalid_tool_calls]
            return [c for c in calls if c.id not in answered]
    return []


def tools_condition(state: Any, messages_key: str = "messages") -> str:
    """Route to ``"tools"`` when the last message asks for tool calls, else ``END``.

    *state* is the graph's state (a dict or a schema instance) or a list of
    messages.

    Raises:
      ValueError: the state has no messages.

    Example:
      >>> from trigraph.messages import AIMessage, ToolCall
      >>> tools_condition({"messages": [AIMessage(tool_calls=[ToolCall("f", {}, "c1")])]})
      'tools'
      >>> tools_condition({"messages": [AIMessage("done")]})
      '__end__'

    .. versionadded:: 0.2
    """
    messages = _messages(state, messages_key)
    if not messages:
        raise ValueError(f"tools_condition found no messages at {messages_key!r} in the state")
    last = messages[-1]
    if type(last) is AIMessage and (last.tool_calls or last.invalid_tool_calls):
        return "tools"
    return END


def _content(value: Any) -> Any:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(
        isinstance(p, Mapping) and "type" in p for p in value
    ):
        return value
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return str(value)


def _error(call: ToolCall | InvalidToolCall, text: str) -> ToolMessage:
    return ToolMessage(text, call.id or "", status="error", name=call.name or None,
                       id=str(uuid.uuid4()))


@final
class ToolNode:
    """A graph node that runs the pending tool calls of the last ``AIMessage``.

    Add it as ``builder.add_node("tools", ToolNode([...]))``. It reads the
    state's ``messages``, runs each call of the last ``AIMessage`` that has
    no ``ToolMessage`` answer yet as a child task, and writes the answers,
    in the order of the calls, whatever order they finish in. A tool may
    return a ``Command`` (with the ``ToolMessage`` answering its call in the
    update), which is applied in its place.

    The model's own mistakes are always answered with an error
    ``ToolMessage`` it can act on: an unknown tool, arguments that fail the
    tool's schema, arguments that are not JSON.

    Args:
      tools: ``@tool`` tools or plain functions (made tools).
      max_concurrency: most calls running at once (``None``: no limit).
      timeout: seconds each call may take.
      handle_errors: ``True``: an exception a tool raises (or a timeout)
        is answered with ``ToolMessage(status="error")`` and the other calls
        go on; ``False``: it cancels the other calls and propagates (after
        they are gone).

    Cancellation:
      Cancelling the node cancels every call and waits for them (a sync
      tool's thread included) before the cancellation propagates; no answer
      is written. The calls that had finished are recorded with the task
      (in a durable run), so a resume runs only the others: every call is
      answered exactly once.

    Raises:
      GraphValidationError: two tools with one name, or no tools.
      ToolDefinitionError: a function that cannot be made a tool.

    Example:
      >>> import trio
      >>> from trigraph.messages import AIMessage, ToolCall
      >>> def add(a: int, b: int) -> int:
      ...     '''Add two numbers.'''
      ...     return a + b
      >>> node = ToolNode([add])
      >>> state = {"messages": [AIMessage(tool_calls=[ToolCall("add", {"a": 1, "b": 2}, "c1"),
      ...                                             ToolCall("add", {"a": "x"}, "c2")])]}
      >>> for m in trio.run(node.ainvoke, state)["messages"]:
      ...     print(f"{m.status}: {m.content}")
      success: 3
      error: Error invoking tool 'add' with args {'a': 'x'}:
       a: expected an integer, got str 'x'
       b: required
       Please fix your mistakes.

    .. versionadded:: 0.2
    """

    def __init__(
        self,
        tools: Sequence[Tool | Any],
        *,
        max_concurrency: int | None = None,
        timeout: float | None = None,
        handle_errors: bool = True,
    ) -> None:
        made = [t if isinstance(t, Tool) else tool(t) for t in tools]
        if not made:
            raise GraphValidationError("ToolNode needs at least one tool")
        self.tools: dict[str, Tool] = {}
        for t in made:
            if t.name in self.tools:
                raise GraphValidationError(
                    f"two tools are named {t.name!r}; tool names must be unique "
                    "(pass @tool('other_name') to rename one)"
                )
            self.tools[t.name] = t
        if max_concurrency is not None and (
            not isinstance(max_concurrency, int) or max_concurrency < 1
        ):
            raise GraphValidationError(
                f"ToolNode(max_concurrency=...) must be an int >= 1, got {max_concurrency!r}"
            )
        if timeout is not None and not timeout > 0:
            raise GraphValidationError(
                f"ToolNode(timeout=...) must be > 0 seconds, got {timeout!r}"
            )
        self.max_concurrency = max_concurrency
        self.timeout = timeout
        self.handle_errors = handle_errors
        self.messages_key = "messages"
        self.approve: frozenset[str] = frozenset()
        """Tools whose calls wait for a person's decision (set by ``create_agent``)."""

    def __repr__(self) -> str:
        return f"<ToolNode {list(self.tools)}>"

    async def __call__(self, state: Any) -> AsyncIterator[Command[Any]]:
        """The node: yields the answers as ``Command`` updates, in call order.

        Cancellation:
          Every call is cancelled and waited for before the cancellation
          propagates; nothing is yielded. Calls that had finished are
          recorded with the task (``trigraph.once``) and are not run again.
        """
        for update in await self._answers(state):
            yield update

    async def ainvoke(self, state: Any) -> dict[str, Any]:
        """Run the pending calls outside a graph; return ``{"messages": [...]}``.

        A tool's ``Command`` update is merged in (its messages in order).

        Cancellation:
          As for the node.
        """
        messages: list[Any] = []
        out: dict[str, Any] = {}
        for command in await self._answers(state):
            for key, value in (command.update or {}).items():
                if key == self.messages_key:
                    messages.extend(value if isinstance(value, list) else [value])
                else:
                    out[key] = value
        out[self.messages_key] = messages
        return out

    async def _answers(self, state: Any) -> list[Command[Any]]:
        calls = pending_calls(_messages(state, self.messages_key))
        if not calls:
            await trio.lowlevel.checkpoint()
            return []
        decisions: Mapping[str, Any] = {}
        if self.approve:
            from ._approval import ask

            decisions = ask(calls, self.approve)
        limiter = (trio.CapacityLimiter(self.max_concurrency)
                   if self.max_concurrency is not None else None)
        run: Callable[..., Awaitable[Any]] = once if stream_writer() is not None else _direct
        results: list[Any] = [None] * len(calls)
        paused: list[tuple[int, GraphInterrupt]] = []

        seen: set[str | None] = set()
        keys = []
        for i, call in enumerate(calls):  # a call's id names its result; a repeated id
            keys.append(call.id if call.id and call.id not in seen else f"{call.id}#{i}")
            seen.add(call.id)

        async def one(i: int, call: ToolCall | InvalidToolCall) -> None:
            try:
                results[i] = await run(keys[i], self._call, call, state, limiter,
                                         decisions.get(call.id or ""))
            except GraphInterrupt as gi:
                paused.append((i, gi))

        try:
            async with trio.open_nursery() as nursery:
                for i, call in enumerate(calls):
                    nursery.start_soon(one, i, call)
        except BaseExceptionGroup as group:
            raise _single(group) from None
        if paused:
            paused.sort(key=lambda p: p[0])
            raise GraphInterrupt(*(i for _, gi in paused for i in gi.interrupts))
        return self._updates(results)

    def _updates(self, results: list[Any]) -> list[Command[Any]]:
        """Runs of plain answers become one update; a tool's ``Command`` stays itself."""
        out: list[Command[Any]] = []
        batch: list[ToolMessage] = []
        for result in results:
            if isinstance(result, Command):
                if batch:
                    out.append(Command(update={self.messages_key: batch}))
                    batch = []
                out.append(result)
            else:
                batch.append(result)
        if batch:
            out.append(Command(update={self.messages_key: batch}))
        return out

    async def _call(
        self,
        call: ToolCall | InvalidToolCall,
        state: Any,
        limiter: trio.CapacityLimiter | None,
        decision: Any,
    ) -> ToolMessage | Command[Any]:
        """One call's answer (what ``trigraph.once`` records)."""
        if isinstance(call, InvalidToolCall):
            return _error(call, f"Error: the call of tool {call.name!r} could not be read: "
                                f"{call.error}. Its arguments were: {call.args[:500]!r}\n "
                                "Send the arguments as one JSON object.")
        t = self.tools.get(call.name)
        if t is None:
            return _error(call, f"Error: {call.name} is not a valid tool, try one of "
                                f"[{', '.join(self.tools)}].")
        args = call.args
        if decision is not None:
            if decision["type"] == "reject":
                return _error(call, decision.get("message") or
                              f"A person rejected this call of {call.name!r}; do not retry it.")
            if decision["type"] == "edit":
                args = decision["args"]
        kwargs, errors = t.bind(args, state=state, tool_call_id=call.id)
        if errors:
            lines = "\n".join(f" {e}" for e in errors)
            return _error(call, f"Error invoking tool {call.name!r} with args {args!r}:\n"
                                f"{lines}\n {_FIX}")
        if limiter is not None:
            async with limiter:
                return await self._run(t, call, kwargs)
        return await self._run(t, call, kwargs)

    async def _run(
        self, t: Tool, call: ToolCall, kwargs: dict[str, Any]
    ) -> ToolMessage | Command[Any]:
        try:
            if self.timeout is None:
                out = await t.run(kwargs)
            else:
                with trio.move_on_after(self.timeout) as scope:
                    out = await t.run(kwargs)
                if scope.cancelled_caught:
                    if not self.handle_errors:
                        raise ToolTimeoutError(t.name, call.id, self.timeout)
                    return _error(call, f"Error: tool {t.name!r} did not finish within "
                                        f"{self.timeout:g} s.\n Try again or do without it.")
            return self._answer(t, call, out)
        except ToolTimeoutError:
            raise
        except Exception as exc:
            if not self.handle_errors:
                exc.add_note(f"in tool {t.name!r}, call {call.id!r}")
                raise
            return _error(call, f"Error: {exc!r}\n {_FIX}")

    def _answer(self, t: Tool, call: ToolCall, out: Any) -> ToolMessage | Command[Any]:
        if isinstance(out, ToolMessage):
            if out.tool_call_id != call.id:
                raise ValueError(f"tool {t.name!r} returned a ToolMessage answering call "
                                 f"{out.tool_call_id!r}, but it was called as {call.id!r}")
            return out if out.id is not None else _with_id(out)
        if isinstance(out, Command):
            update = out.update or {}
            answers = update.get(self.messages_key, [])
            answers = answers if isinstance(answers, list) else [answers]
            if not any(isinstance(m, ToolMessage) and m.tool_call_id == call.id for m in answers):
                raise ValueError(
                    f"tool {t.name!r} returned a Command whose update has no ToolMessage "
                    f"answering call {call.id!r}; add "
                    f"{{{self.messages_key!r}: [ToolMessage(..., tool_call_id=...)]}}"
                )
            return out
        return ToolMessage(_content(out), call.id or "", name=t.name, id=str(uuid.uuid4()))


async def _direct(key: str, fn: Any, *args: Any) -> Any:
    """``once`` outside a running node: there is no task to record the result in."""
    return await fn(*args)


def _with_id(message: ToolMessage) -> ToolMessage:
    import attrs

    return attrs.evolve(message, id=str(uuid.uuid4()))


def _single(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The one real error of a nursery's group (its ``Cancelled`` siblings are echoes)."""
    real = [e for e in group.exceptions if not isinstance(e, trio.Cancelled)]
    if len(real) == 1:
        return real[0]
    return group
