"""Schema introspection: what keys a state has, which have reducers, what a
reducer key starts from, and how a node sees the state.

A state is always held as a plain ``dict`` of the keys that have been set; the
schema (a ``TypedDict``, an attrs class, a dataclass, or ``dict`` for a
schemaless graph) only decides which keys are allowed, which are merged by a
reducer (``Annotated[T, reducer]``), and whether nodes receive a ``dict`` or an
instance of the class. Everything here runs once, at ``compile()``, except
:meth:`Schema.node_input`, which runs once per task and is kept cheap.
"""

from __future__ import annotations

import dataclasses
import inspect
import typing
from collections.abc import Callable, Mapping
from typing import Any, Final, get_args, get_origin, get_type_hints

import attrs

from ._exceptions import GraphValidationError, InvalidUpdateError
from ._util import Sentinel

__all__ = ["MISSING", "Reducer", "Schema", "schema_of"]

MISSING: Final = Sentinel("MISSING")
Reducer = Callable[[Any, Any], Any]


@attrs.frozen(slots=True)
class Schema:
    """The compiled view of a state schema.

    Attributes:
      cls: the class nodes are given an instance of, or ``None`` for a dict.
      keys: the allowed keys, or ``None`` when any key is allowed (``dict``).
      reducers: key -> reducer, for ``Annotated[T, reducer]`` keys.
      initial: key -> factory of the value a key starts from (a reducer key's
        empty value, a dataclass/attrs field default).
      input_keys / output_keys: keys accepted as input / returned as output.
    """

    name: str
    cls: type | None
    keys: frozenset[str] | None
    reducers: Mapping[str, Reducer]
    initial: Mapping[str, Callable[[], Any]]
    input_keys: frozenset[str] | None
    output_keys: frozenset[str] | None
    value_types: frozenset[type] = frozenset()
    """attrs classes and dataclasses named in the annotations (for the serializer)."""
    preparers: Mapping[str, Callable[[Any], Any]] = attrs.Factory(dict)
    """key -> the ``prepare`` hook of its reducer, for reducers that have one."""

    def prepare(self, update: Mapping[str, Any]) -> Mapping[str, Any]:
        """*update* with each write to a key whose reducer has a ``prepare`` hook
        passed through it (once, when the write is made: before it is streamed,
        stored or merged). Returns *update* itself when no key has one."""
        preparers = self.preparers
        if not preparers or preparers.keys().isdisjoint(update):
            return update
        return {k: (preparers[k](v) if k in preparers else v) for k, v in update.items()}

    def check_update_keys(self, update: Mapping[str, Any], node: str, step: int) -> None:
        """Raise :class:`InvalidUpdateError` if *update* names a key the schema lacks."""
        keys = self.keys
        if keys is None:
            return
        for key in update:
            if key not in keys:
                raise InvalidUpdateError(
                    f"node {node!r} wrote key {key!r} in step {step}, but the state "
                    f"schema {self.name} has no such key (it has: {', '.join(sorted(keys))})",
                    key=key,
                    nodes=(node,),
                    step=step,
                )

    def initial_values(self) -> dict[str, Any]:
        """The values a fresh thread starts from, before the input is applied."""
        return {key: factory() for key, factory in self.initial.items()}

    def coerce_input(self, data: Any) -> dict[str, Any]:
        """Turn run input (a mapping or an instance of the schema class) into a dict."""
        if isinstance(data, Mapping):
            values = dict(data)
        elif self.cls is not None and isinstance(data, self.cls):
            values = _instance_to_dict(data)
        else:
            raise InvalidUpdateError(
                f"the input must be a mapping of state keys (or a {self.name}), "
                f"not {type(data).__name__}"
            )
        allowed = self.input_keys
        if allowed is not None:
            for key in values:
                if key not in allowed:
                    raise InvalidUpdateError(
                        f"the input has key {key!r}, which the input schema does not "
                        f"accept (it accepts: {', '.join(sorted(allowed))})",
                        key=key,
                    )
        return dict(self.prepare(values))

    def node_input(self, values: dict[str, Any]) -> Any:
        """What a node receives: a shallow copy of the state, or an instance."""
        cls = self.cls
        if cls is None:
            return values.copy()
        try:
            return cls(**values)
        except TypeError as exc:
            raise InvalidUpdateError(
                f"the state {sorted(values)} does not make a {self.name}: {exc}; "
                "give the missing fields a default or put them in the input"
            ) from exc

    def output(self, values: dict[str, Any]) -> dict[str, Any]:
        """The final state a run returns, restricted to the output schema's keys."""
        keys = self.output_keys
        if keys is None:
            return dict(values)
        return {k: v for k, v in values.items() if k in keys}


def _instance_to_dict(obj: Any) -> dict[str, Any]:
    if attrs.has(type(obj)):
        return {f.name: getattr(obj, f.name) for f in attrs.fields(type(obj))}
    if dataclasses.is_dataclass(obj):
        return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    raise TypeError(f"cannot read fields of {type(obj).__name__}")  # pragma: no cover


def _is_typeddict(cls: Any) -> bool:
    return isinstance(cls, type) and typing.is_typeddict(cls)


def _hints(cls: type) -> dict[str, Any]:
    try:
        return get_type_hints(cls, include_extras=True)
    except NameError as exc:
        raise GraphValidationError(
            f"cannot resolve the annotations of state schema {cls.__qualname__}: {exc}; "
            "define the types it names at module level"
        ) from exc


_QUALIFIERS = (typing.Required, typing.NotRequired, typing.ClassVar, typing.Final)


def _strip(hint: Any) -> Any:
    """*hint* without ``Required``/``NotRequired``/``Final`` wrappers."""
    while get_origin(hint) in _QUALIFIERS:
        hint = get_args(hint)[0]
    return hint


def _reducer_of(key: str, hint: Any, schema_name: str) -> Reducer | None:
    hint = _strip(hint)
    if get_origin(hint) is not typing.Annotated:
        return None
    for meta in hint.__metadata__:
        if callable(meta):
            _check_reducer_arity(key, meta, schema_name)
            return meta  # type: ignore[no-any-return,unused-ignore]
    return None


def _check_reducer_arity(key: str, fn: Callable[..., Any], schema_name: str) -> None:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):  # some builtins have no signature
        return
    try:
        sig.bind(None, None)
    except TypeError:
        raise GraphValidationError(
            f"the reducer of {schema_name}.{key} must take two arguments "
            f"(old, new), but its signature is {sig}",
            node=None,
        ) from None


def _empty_factory(hint: Any) -> Callable[[], Any] | None:
    hint = _strip(hint)
    base = _strip(get_args(hint)[0]) if get_origin(hint) is typing.Annotated else hint
    origin = get_origin(base) or base
    if not isinstance(origin, type) or inspect.isabstract(origin):
        return None
    try:
        origin()
    except Exception:
        return None
    return origin  # type: ignore[no-any-return,unused-ignore]


@attrs.define
class _Fields:
    keys: set[str] = attrs.Factory(set)
    reducers: dict[str, Reducer] = attrs.Factory(dict)
    initial: dict[str, Callable[[], Any]] = attrs.Factory(dict)
    types: set[type] = attrs.Factory(set)


def _collect_types(hint: Any, into: set[type]) -> None:
    """Add the attrs classes and dataclasses *hint* names, however nested."""
    hint = _strip(hint)
    if isinstance(hint, type) and (attrs.has(hint) or dataclasses.is_dataclass(hint)):
        if hint in into:
            return
        into.add(hint)
        try:
            nested = get_type_hints(hint, include_extras=True)
        except Exception:  # unresolvable field annotations: the class alone is enough
            return
        for field_hint in nested.values():
            _collect_types(field_hint, into)
        return
    for arg in get_args(hint):
        _collect_types(arg, into)


def _collect(cls: Any, into: _Fields) -> frozenset[str] | None:
    """Add *cls*'s keys, reducers and defaults to *into*; return its key set."""
    if cls is dict or cls is None:
        return None
    if not isinstance(cls, type):
        raise GraphValidationError(
            f"a state schema must be a TypedDict, an attrs class, a dataclass or dict, "
            f"not {cls!r}"
        )
    if not (_is_typeddict(cls) or attrs.has(cls) or dataclasses.is_dataclass(cls)):
        raise GraphValidationError(
            f"state schema {cls.__qualname__} is not a TypedDict, an attrs class, "
            "a dataclass or dict"
        )
    hints = _hints(cls)
    name = cls.__qualname__
    for key, hint in hints.items():
        if key.startswith("__"):
            continue
        into.keys.add(key)
        _collect_types(hint, into.types)
        reducer = _reducer_of(key, hint, name)
        if reducer is not None:
            into.reducers[key] = reducer
            factory = _empty_factory(hint)
            if factory is not None:
                into.initial.setdefault(key, factory)
    if not _is_typeddict(cls):
        into.types.add(cls)
    if attrs.has(cls):
        for a in attrs.fields(cls):
            if isinstance(a.default, attrs.Factory):  # type: ignore[arg-type]
                into.initial[a.name] = a.default.factory
            elif a.default is not attrs.NOTHING:
                into.initial[a.name] = _const(a.default)
    elif dataclasses.is_dataclass(cls):
        for f in dataclasses.fields(cls):
            if f.default_factory is not dataclasses.MISSING:
                into.initial[f.name] = f.default_factory
            elif f.default is not dataclasses.MISSING:
                into.initial[f.name] = _const(f.default)
    return frozenset(k for k in hints if not k.startswith("__"))


def _const(value: Any) -> Callable[[], Any]:
    return lambda: value


def schema_of(schema: Any, input_schema: Any = None, output_schema: Any = None) -> Schema:
    """Compile *schema* (and the optional input/output schemas) into a :class:`Schema`.

    Raises:
      GraphValidationError: a schema of an unsupported kind, unresolvable
        annotations, or a reducer that does not take two arguments.
    """
    fields = _Fields()
    main = _collect(schema, fields)
    input_keys = _collect(input_schema, fields) if input_schema is not None else main
    output_keys = _collect(output_schema, fields) if output_schema is not None else main
    keys = None if main is None else frozenset(fields.keys)
    cls: type | None = None
    if isinstance(schema, type) and (attrs.has(schema) or dataclasses.is_dataclass(schema)):
        cls = schema
    name = getattr(schema, "__qualname__", repr(schema))
    return Schema(
        name=name,
        cls=cls,
        keys=keys,
        reducers=fields.reducers,
        initial=fields.initial,
        input_keys=input_keys,
        output_keys=output_keys,
        value_types=frozenset(fields.types),
        preparers={
            key: prepare
            for key, reducer in fields.reducers.items()
            if callable(prepare := getattr(reducer, "prepare", None))
        },
    )
