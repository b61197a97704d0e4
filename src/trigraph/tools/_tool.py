"""``@tool``: a Python function as a tool a model can call.

A :class:`Tool` keeps the function, the JSON schema the model sees (from
the type hints and the docstring's ``Args:``, see ``_jsonschema``) and a
binder that turns a call's JSON arguments into the function's arguments:
it validates them (every mistake is a ``"where: what"`` line for the
model), fills defaults, and fills the injected parameters
(``InjectedState``, ``InjectedToolCallId``), which the model never sees and
cannot set: a model's value for one is dropped. The invariant: the function
is only ever called with arguments that passed the check.
"""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Callable, Mapping
from contextlib import aclosing
from typing import Annotated, Any, Final, Literal, get_args, get_origin, get_type_hints, overload

import attrs
import trio

from .. import Command, StreamWriter, get_stream_writer
from .._util import final
from ..messages import ToolMessage
from ._docstring import parse_docstring
from ._errors import ToolDefinitionError
from ._jsonschema import MISSING, Errors, Shape, UnsupportedType, compile_type, json_default

__all__ = ["InjectedState", "InjectedToolCallId", "Tool", "stream_writer", "tool"]

_NAME: Final = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


@final
class InjectedState:
    """Marks a tool parameter the engine fills with the graph's state.

    ``Annotated[dict, InjectedState]`` gets the whole state (the node's
    input); ``Annotated[list, InjectedState("messages")]`` one key of it.
    The parameter is not in the schema the model sees, and a value the
    model sends for it is ignored.

    Example:
      >>> from typing import Annotated
      >>> @tool
      ... def count(state: Annotated[dict, InjectedState]) -> int:
      ...     '''How many messages there are.'''
      ...     return len(state["messages"])
      >>> count.parameters
      {'type': 'object', 'properties': {}}

    .. versionadded:: 0.2
    """

    __slots__ = ("field",)

    def __init__(self, field: str | None = None) -> None:
        self.field = field

    def __repr__(self) -> str:
        return f"InjectedState({self.field!r})" if self.field else "InjectedState"


@final
class InjectedToolCallId:
    """Marks a parameter (``Annotated[str, InjectedToolCallId]``) the engine
    fills with the id of the call being answered, hidden from the model.

    .. versionadded:: 0.2
    """

    __slots__ = ()


@attrs.frozen(slots=True)
class _Param:
    name: str
    shape: Shape | None
    default: Any
    inject: Literal["state", "call_id"] | None = None
    field: str | None = None


def _injection(hint: Any) -> tuple[Literal["state", "call_id"] | None, str | None]:
    if get_origin(hint) is not Annotated:
        return None, None
    for meta in get_args(hint)[1:]:
        if meta is InjectedState:
            return "state", None
        if isinstance(meta, InjectedState):
            return "state", meta.field
        if meta is InjectedToolCallId or isinstance(meta, InjectedToolCallId):
            return "call_id", None
    return None, None


def _kind(fn: Callable[..., Any]) -> Literal["sync", "async", "agen"]:
    target = inspect.unwrap(fn)
    if inspect.isasyncgenfunction(target):
        return "agen"
    if inspect.iscoroutinefunction(target):
        return "async"
    return "sync"


@final
@attrs.frozen(eq=False)
class Tool:
    """A function a model can call, made by :func:`tool`.

    Attributes:
      name: the name the model calls it by.
      description: what the model reads about it.
      parameters: the JSON schema of its arguments (injected ones left out).
      fn: the function itself; calling the tool calls it.
      kind: ``"sync"`` (run in a worker thread), ``"async"`` or ``"agen"``
        (an async generator: what it yields is streamed as ``Custom``
        events; its answer is a ``ToolMessage`` or ``Command`` it yields,
        else the last value it yields).

    .. versionadded:: 0.2
    """

    name: str
    description: str
    parameters: dict[str, Any]
    fn: Callable[..., Any]
    kind: Literal["sync", "async", "agen"]
    strict: bool = False
    _params: tuple[_Param, ...] = ()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<Tool {self.name!r}>"

    def to_openai(self) -> dict[str, Any]:
        """The tool as an entry of a chat request's ``tools`` list."""
        function: dict[str, Any] = {"name": self.name, "description": self.description,
                                    "parameters": self.parameters}
        if self.strict:
            function["strict"] = True
        return {"type": "function", "function": function}

    def bind(
        self, args: Mapping[str, Any], *, state: Any = None, tool_call_id: str | None = None
    ) -> tuple[dict[str, Any], Errors]:
        """The function's keyword arguments for a call's JSON *args*, and the
        mistakes found (``"where: what"`` lines; empty when the call may run).

        Values the model sent for injected parameters are dropped; those
        parameters get *state* (or one key of it) and *tool_call_id*.
        """
        errors: Errors = []
        if not isinstance(args, Mapping):
            return {}, [f"the arguments must be a JSON object, got {type(args).__name__}"]
        kwargs: dict[str, Any] = {}
        known = set()
        for p in self._params:
            known.add(p.name)
            if p.inject == "call_id":
                kwargs[p.name] = tool_call_id
                continue
            if p.inject == "state":
                kwargs[p.name] = _read_state(state, p.field, self.name)
                continue
            if p.name in args:
                assert p.shape is not None
                value = p.shape.check(args[p.name], p.name, errors)
                if value is not MISSING:
                    kwargs[p.name] = value
            elif p.default is inspect.Parameter.empty:
                errors.append(f"{p.name}: required")
        for key in args:
            if key not in known:
                errors.append(f"{key}: unexpected argument (this tool takes: "
                              f"{', '.join(self.parameters.get('properties', {})) or 'none'})")
        return kwargs, errors

    async def run(self, kwargs: Mapping[str, Any]) -> Any:
        """Call the function with *kwargs* (already bound): a sync function in
        a worker thread, an async one awaited, an async generator driven to
        its end (its yields streamed as ``Custom`` events inside a node).

        Cancellation:
          A checkpoint. An async tool is cancelled at its next await; a sync
          tool's thread is waited for (it may call
          ``trigraph.check_cancelled()`` to stop early); an async generator
          is closed.
        """
        if self.kind == "async":
            return await self.fn(**kwargs)
        if self.kind == "sync":
            return await trio.to_thread.run_sync(functools.partial(self.fn, **kwargs))
        write = stream_writer()
        answer: Any = None
        last: Any = None
        async with aclosing(self.fn(**kwargs)) as agen:
            async for item in agen:
                if isinstance(item, (ToolMessage, Command)):
                    answer = item
                    continue
                last = item
                if write is not None:
                    await write(item)
                else:
                    await trio.lowlevel.checkpoint()
        return answer if answer is not None else last

    async def ainvoke(
        self, args: Mapping[str, Any], *, state: Any = None, tool_call_id: str | None = None
    ) -> Any:
        """Validate *args* as a model's call would be, then run the tool.

        Cancellation:
          As :meth:`run`.

        Raises:
          ValueError: the arguments are wrong (the message lists each mistake).

        Example:
          >>> import trio
          >>> @tool
          ... async def add(a: int, b: int = 1) -> int:
          ...     '''Add two numbers.'''
          ...     return a + b
          >>> trio.run(add.ainvoke, {"a": 2})
          3
        """
        kwargs, errors = self.bind(args, state=state, tool_call_id=tool_call_id)
        if errors:
            raise ValueError(f"bad arguments for tool {self.name!r}: " + "; ".join(errors))
        return await self.run(kwargs)


def stream_writer() -> StreamWriter | None:
    """The current node's stream writer, or ``None`` outside a running node."""
    try:
        return get_stream_writer()
    except RuntimeError:
        return None


def _read_state(state: Any, field: str | None, tool: str) -> Any:
    if field is None:
        return state
    if isinstance(state, Mapping):
        if field in state:
            return state[field]
    elif hasattr(state, field):
        return getattr(state, field)
    raise KeyError(f"tool {tool!r} wants InjectedState({field!r}), but the state has no "
                   f"{field!r}")


def _strict(schema: dict[str, Any]) -> dict[str, Any]:
    """OpenAI's strict form: closed objects, every property required (an
    optional one may be null), no defaults."""
    out = {k: v for k, v in schema.items() if k != "default"}
    if out.get("type") == "object" and "properties" in out:
        props = {}
        for name, sub in out["properties"].items():
            sub = _strict(sub)
            if name not in out.get("required", ()):
                sub = sub if _nullable(sub) else {"anyOf": [sub, {"type": "null"}]}
            props[name] = sub
        out["properties"] = props
        out["required"] = list(props)
        out["additionalProperties"] = False
    for key in ("items", "additionalProperties"):
        if isinstance(out.get(key), dict):
            out[key] = _strict(out[key])
    for key in ("anyOf", "prefixItems"):
        if key in out:
            out[key] = [_strict(s) for s in out[key]]
    return out


def _nullable(schema: dict[str, Any]) -> bool:
    return schema.get("type") == "null" or any(
        s.get("type") == "null" for s in schema.get("anyOf", ())
    )


def _make(
    fn: Callable[..., Any],
    name: str | None,
    description: str | None,
    strict: bool,
    parameters: dict[str, Any] | None,
) -> Tool:
    if isinstance(fn, Tool):
        fn = fn.fn
    if not callable(fn):
        raise TypeError(f"@tool takes a function, not {fn!r:.80}")
    name = name or getattr(fn, "__name__", None) or ""
    if not _NAME.match(name):
        raise ToolDefinitionError(
            name or repr(fn), "a tool name is 1-64 letters, digits, '_' or '-'; pass name=..."
        )
    summary, docs = parse_docstring(inspect.getdoc(fn))
    try:
        hints = get_type_hints(fn, include_extras=True)
    except NameError as exc:
        raise ToolDefinitionError(name, f"its annotations cannot be resolved ({exc}); define "
                                  "the types it names at module level") from exc
    params: list[_Param] = []
    properties: dict[str, Any] = {}
    required: list[str] = []
    for p in inspect.signature(fn).parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            raise ToolDefinitionError(name, f"*{p.name} has no JSON schema; name each "
                                      "parameter", parameter=p.name)
        if p.kind is p.POSITIONAL_ONLY:
            raise ToolDefinitionError(name, "a tool is called with keyword arguments; a "
                                      "positional-only parameter cannot be passed",
                                      parameter=p.name)
        hint = hints.get(p.name, Any)
        inject, field = _injection(hint)
        if inject is not None:
            params.append(_Param(p.name, None, p.default, inject, field))
            continue
        try:
            shape = compile_type(hint)
        except UnsupportedType as exc:
            raise ToolDefinitionError(name, str(exc), parameter=p.name) from None
        schema = dict(shape.schema)
        if p.name in docs and "description" not in schema:
            schema["description"] = docs[p.name]
        if p.default is inspect.Parameter.empty:
            required.append(p.name)
        else:
            default = json_default(p.default)
            if default is not MISSING:
                schema["default"] = default
        properties[p.name] = schema
        params.append(_Param(p.name, shape, p.default))
    if parameters is None:
        parameters = {"type": "object", "properties": properties}
        if required:
            parameters["required"] = required
        if strict:
            parameters = _strict(parameters)
    return Tool(name, description if description is not None else summary, parameters, fn,
                _kind(fn), strict, tuple(params))


@overload
def tool(fn: Callable[..., Any], /) -> Tool: ...
@overload
def tool(
    name: str | None = None,
    /,
    *,
    description: str | None = None,
    strict: bool = False,
    parameters: dict[str, Any] | None = None,
) -> Callable[[Callable[..., Any]], Tool]: ...


def tool(
    fn: Callable[..., Any] | str | None = None,
    /,
    *,
    description: str | None = None,
    strict: bool = False,
    parameters: dict[str, Any] | None = None,
) -> Tool | Callable[[Callable[..., Any]], Tool]:
    """Make a function (sync, ``async def`` or an async generator) a tool.

    ``@tool``, ``@tool("name")`` or ``@tool(description=..., strict=True)``.
    The schema comes from the type hints (see the module documentation for
    the types understood) and the docstring: its summary is the tool's
    description, its ``Args:`` entries the parameters'. A parameter
    annotated with :class:`InjectedState` or :class:`InjectedToolCallId` is
    filled by the engine and hidden from the model.

    Args:
      description: instead of the docstring's summary.
      strict: OpenAI's strict mode (closed objects, every property required,
        optional ones nullable).
      parameters: a JSON schema to send instead of the one derived (the
        arguments are then checked only against the function's hints).

    Raises:
      ToolDefinitionError: a parameter whose type has no JSON schema, a
        ``*args``/``**kwargs`` parameter, a name the API does not accept;
        the message names the tool and the parameter.

    Example:
      >>> from typing import Literal
      >>> @tool
      ... async def get_weather(city: str, units: Literal["c", "f"] = "c") -> str:
      ...     '''Current weather of a city.
      ...
      ...     Args:
      ...         city: the city's name.
      ...         units: c for Celsius, f for Fahrenheit.
      ...     '''
      ...     return f"12 {units.upper()} in {city}"
      >>> get_weather.to_openai()["function"]["parameters"]  # doctest: +NORMALIZE_WHITESPACE
      {'type': 'object', 'properties': {'city': {'type': 'string', 'description': "the city's
      name."}, 'units': {'type': 'string', 'enum': ['c', 'f'], 'description': 'c for Celsius,
      f for Fahrenheit.', 'default': 'c'}}, 'required': ['city']}

    .. versionadded:: 0.2
    """
    if isinstance(fn, str) or fn is None:
        name = fn
        return lambda f: _make(f, name, description, strict, parameters)
    return _make(fn, None, description, strict, parameters)
