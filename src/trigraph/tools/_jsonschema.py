"""Types as JSON schema, and the check that turns JSON arguments back into them.

:func:`compile_type` walks a type hint once and returns a :class:`Shape`:
the JSON schema a model sees, and a ``check`` that validates a JSON value
against the hint and builds the Python value (an ``Enum`` member, a tuple,
an attrs or dataclass instance, ...). Supported: ``str``, ``int``,
``float``, ``bool``, ``None``, ``Any``, ``Literal``, ``Enum``, lists,
sequences, sets, tuples, dicts with ``str`` keys, unions and ``Optional``,
``TypedDict`` (``Required``/``NotRequired``), attrs classes, dataclasses,
``Annotated[T, "description"]``, and classes with pydantic's
``model_json_schema``/``model_validate`` (used by duck typing, never
imported). Anything else raises :class:`UnsupportedType` naming the type.

The invariant: a value accepted by ``check`` is what the schema describes,
and every rejection is a ``"where: what"`` line a model can act on.
"""

from __future__ import annotations

import collections.abc as cabc
import dataclasses
import enum
import types
import typing
from collections.abc import Callable
from typing import Any, get_args, get_origin, get_type_hints

import attrs

__all__ = ["Errors", "Shape", "UnsupportedType", "compile_type", "json_default"]

Errors = list[str]
_MISSING = object()


class UnsupportedType(Exception):
    """A type that has no JSON schema here (the message says which)."""


@attrs.frozen(slots=True)
class Shape:
    """A compiled type: its schema and its check ``(value, where, errors) -> value``."""

    schema: dict[str, Any]
    check: Callable[[Any, str, Errors], Any]


def _describe(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 60 else text[:57] + '...'}"


def json_default(value: Any) -> Any:
    """*value* as JSON for a schema's ``default``, or ``_MISSING`` if it has none."""
    if isinstance(value, enum.Enum):
        value = value.value
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, (list, tuple)) and all(
        json_default(v) is not _MISSING for v in value
    ):
        return [json_default(v) for v in value]
    return _MISSING


def _scalar(tp: type, name: str) -> Shape:
    def check(value: Any, where: str, errors: Errors) -> Any:
        if tp is float:
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return float(value)
        elif tp is int:
            if isinstance(value, int) and not isinstance(value, bool):
                return value
            if isinstance(value, float) and value.is_integer():
                return int(value)
        elif type(value) is tp:
            return value
        errors.append(f"{where}: expected {'an' if name == 'integer' else 'a'} {name}, "
                      f"got {_describe(value)}")
        return _MISSING

    return Shape({"type": name}, check)


_SCALARS = {str: "string", int: "integer", float: "number", bool: "boolean"}


def _json_type(values: list[Any]) -> dict[str, Any]:
    kinds = {type(v) for v in values}
    if len(kinds) == 1:
        kind = kinds.pop()
        if kind in _SCALARS:
            return {"type": _SCALARS[kind]}
        if kind is type(None):
            return {"type": "null"}
    return {}


def _literal(tp: Any) -> Shape:
    values = list(get_args(tp))
    allowed = [v.value if isinstance(v, enum.Enum) else v for v in values]

    def check(value: Any, where: str, errors: Errors) -> Any:
        for option, raw in zip(values, allowed, strict=True):
            if type(value) is type(raw) and value == raw:
                return option
        errors.append(f"{where}: must be one of {', '.join(map(repr, allowed))}; "
                      f"got {_describe(value)}")
        return _MISSING

    return Shape({**_json_type(allowed), "enum": allowed}, check)


def _enum(tp: type[enum.Enum]) -> Shape:
    members = list(tp)
    allowed = [m.value for m in members]

    def check(value: Any, where: str, errors: Errors) -> Any:
        for member in members:
            if type(value) is type(member.value) and value == member.value:
                return member
        errors.append(f"{where}: must be one of {', '.join(map(repr, allowed))}; "
                      f"got {_describe(value)}")
        return _MISSING

    return Shape({**_json_type(allowed), "enum": allowed}, check)


class _Compiler:
    def __init__(self) -> None:
        self._stack: list[Any] = []

    def compile(self, tp: Any) -> Shape:
        if tp is Any or tp is object:
            return Shape({}, lambda value, where, errors: value)
        if tp is None or tp is type(None):
            return self._none()
        if tp in _SCALARS:
            return _scalar(tp, _SCALARS[tp])
        origin = get_origin(tp)
        if origin is typing.Annotated:
            base, *meta = get_args(tp)
            shape = self.compile(base)
            notes = [m for m in meta if isinstance(m, str)]
            if notes:
                return Shape({**shape.schema, "description": " ".join(notes)}, shape.check)
            return shape
        if origin in (typing.Required, typing.NotRequired):
            return self.compile(get_args(tp)[0])
        if origin is typing.Literal:
            return _literal(tp)
        if origin is typing.Union or origin is types.UnionType:
            return self._union(get_args(tp))
        if isinstance(tp, type) and issubclass(tp, enum.Enum):
            return _enum(tp)
        if tp in self._stack:
            raise UnsupportedType(f"{_name(tp)} refers to itself; a recursive type has no "
                                  "inline JSON schema")
        self._stack.append(tp)
        try:
            return self._container(tp, origin)
        finally:
            self._stack.pop()

    def _none(self) -> Shape:
        def check(value: Any, where: str, errors: Errors) -> Any:
            if value is None:
                return None
            errors.append(f"{where}: expected null, got {_describe(value)}")
            return _MISSING

        return Shape({"type": "null"}, check)

    def _union(self, options: tuple[Any, ...]) -> Shape:
        shapes = [self.compile(o) for o in options]

        def check(value: Any, where: str, errors: Errors) -> Any:
            tried: Errors = []
            for shape in shapes:
                attempt: Errors = []
                out = shape.check(value, where, attempt)
                if not attempt:
                    return out
                tried.extend(attempt)
            kinds = " or ".join(s.schema.get("type", "value") for s in shapes)
            errors.append(f"{where}: expected {kinds}, got {_describe(value)}")
            return _MISSING

        return Shape({"anyOf": [s.schema for s in shapes]}, check)

    def _container(self, tp: Any, origin: Any) -> Shape:
        base = origin or tp
        args = get_args(tp)
        if base in (list, cabc.Sequence, cabc.MutableSequence, cabc.Iterable, cabc.Collection):
            return self._array(args[0] if args else Any, list, {})
        if base in (set, frozenset, cabc.Set, cabc.MutableSet):
            return self._array(args[0] if args else Any, frozenset if base is frozenset else set,
                               {"uniqueItems": True})
        if base is tuple:
            if not args or (len(args) == 2 and args[1] is Ellipsis):
                return self._array(args[0] if args else Any, tuple, {})
            return self._tuple(args)
        if base in (dict, cabc.Mapping, cabc.MutableMapping):
            key, value = args if args else (str, Any)
            if key is not str:
                raise UnsupportedType(f"{_name(tp)} has {_name(key)} keys; JSON objects have "
                                      "str keys")
            return self._mapping(value)
        if isinstance(tp, type):
            if typing.is_typeddict(tp) or _is_te_typeddict(tp):
                return self._typeddict(tp)
            if attrs.has(tp) or dataclasses.is_dataclass(tp):
                return self._record(tp)
            if callable(getattr(tp, "model_json_schema", None)) and callable(
                getattr(tp, "model_validate", None)
            ):
                return _pydantic(tp)
        raise UnsupportedType(
            f"{_name(tp)} has no JSON schema; use str, int, float, bool, None, Literal, an "
            "Enum, list, tuple, set, dict[str, ...], a union, a TypedDict, an attrs class "
            "or a dataclass"
        )

    def _array(self, item: Any, kind: Callable[[Any], Any], extra: dict[str, Any]) -> Shape:
        inner = self.compile(item)

        def check(value: Any, where: str, errors: Errors) -> Any:
            if not isinstance(value, list):
                errors.append(f"{where}: expected an array, got {_describe(value)}")
                return _MISSING
            out = [inner.check(v, f"{where}[{i}]", errors) for i, v in enumerate(value)]
            try:
                return kind(out)
            except TypeError as exc:  # an unhashable item of a set
                errors.append(f"{where}: {exc}")
                return _MISSING

        schema = {"type": "array", **({"items": inner.schema} if inner.schema else {}), **extra}
        return Shape(schema, check)

    def _tuple(self, items: tuple[Any, ...]) -> Shape:
        shapes = [self.compile(i) for i in items]

        def check(value: Any, where: str, errors: Errors) -> Any:
            if not isinstance(value, list) or len(value) != len(shapes):
                errors.append(f"{where}: expected an array of {len(shapes)} items, "
                              f"got {_describe(value)}")
                return _MISSING
            return tuple(s.check(v, f"{where}[{i}]", errors)
                         for i, (s, v) in enumerate(zip(shapes, value, strict=True)))

        return Shape({"type": "array", "prefixItems": [s.schema for s in shapes],
                      "minItems": len(shapes), "maxItems": len(shapes)}, check)

    def _mapping(self, value_type: Any) -> Shape:
        inner = self.compile(value_type)

        def check(value: Any, where: str, errors: Errors) -> Any:
            if not isinstance(value, dict):
                errors.append(f"{where}: expected an object, got {_describe(value)}")
                return _MISSING
            return {k: inner.check(v, f"{where}.{k}", errors) for k, v in value.items()}

        schema: dict[str, Any] = {"type": "object"}
        if inner.schema:
            schema["additionalProperties"] = inner.schema
        return Shape(schema, check)

    def _object(
        self,
        fields: list[tuple[str, Any, Any]],
        build: Callable[[dict[str, Any]], Any],
    ) -> Shape:
        """An object of *fields* ``(name, type, default or _MISSING)``."""
        shapes = {name: self.compile(hint) for name, hint, _ in fields}
        defaults = {name: default for name, _, default in fields}
        properties: dict[str, Any] = {}
        for name, shape in shapes.items():
            schema = dict(shape.schema)
            default = json_default(defaults[name])
            if defaults[name] is not _MISSING and default is not _MISSING:
                schema["default"] = default
            properties[name] = schema
        required = [name for name, default in defaults.items() if default is _MISSING]

        def check(value: Any, where: str, errors: Errors) -> Any:
            if not isinstance(value, dict):
                errors.append(f"{where}: expected an object, got {_describe(value)}")
                return _MISSING
            before = len(errors)
            out = {}
            for key, item in value.items():
                shape = shapes.get(key)
                if shape is None:
                    errors.append(f"{where}.{key}: unexpected key (known: {', '.join(shapes)})")
                else:
                    out[key] = shape.check(item, f"{where}.{key}", errors)
            for key in required:
                if key not in value:
                    errors.append(f"{where}.{key}: required")
            if len(errors) > before:
                return _MISSING
            try:
                return build(out)
            except (TypeError, ValueError) as exc:
                errors.append(f"{where}: {exc}")
                return _MISSING

        schema = {"type": "object", "properties": properties}
        if required:
            schema["required"] = required
        return Shape(schema, check)

    def _typeddict(self, tp: type) -> Shape:
        hints = _hints(tp)
        required = set(getattr(tp, "__required_keys__", hints))
        for key, hint in hints.items():  # string annotations hide these from the class
            if get_origin(hint) is typing.NotRequired:
                required.discard(key)
            elif get_origin(hint) is typing.Required:
                required.add(key)
        fields = [(k, h, _MISSING if k in required else None) for k, h in hints.items()]
        shape = self._object(fields, dict)
        schema = {**shape.schema, "properties": {
            k: {kk: vv for kk, vv in v.items() if not (kk == "default" and k not in required)}
            for k, v in shape.schema["properties"].items()
        }}
        return Shape(schema, shape.check)

    def _record(self, tp: type) -> Shape:
        hints = _hints(tp)
        fields: list[tuple[str, Any, Any]] = []
        if attrs.has(tp):
            for a in attrs.fields(tp):
                if not a.init:
                    continue
                default = a.default
                if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
                    default = None if default.takes_self else default.factory()
                elif default is attrs.NOTHING:
                    default = _MISSING
                fields.append((a.alias or a.name, hints.get(a.name, Any), default))
        else:
            for f in dataclasses.fields(tp):
                if not f.init:
                    continue
                if f.default is not dataclasses.MISSING:
                    default = f.default
                elif f.default_factory is not dataclasses.MISSING:
                    default = f.default_factory()
                else:
                    default = _MISSING
                fields.append((f.name, hints.get(f.name, Any), default))
        return self._object(fields, lambda values: tp(**values))


def _pydantic(tp: Any) -> Shape:
    def check(value: Any, where: str, errors: Errors) -> Any:
        try:
            return tp.model_validate(value)
        except ValueError as exc:
            errors.append(f"{where}: {exc}")
            return _MISSING

    return Shape(tp.model_json_schema(), check)


def _is_te_typeddict(tp: type) -> bool:
    try:
        import typing_extensions
    except ImportError:  # pragma: no cover - typing_extensions comes with many packages
        return False
    return bool(typing_extensions.is_typeddict(tp))


def _hints(tp: Any) -> dict[str, Any]:
    try:
        return get_type_hints(tp, include_extras=True)
    except NameError as exc:
        raise UnsupportedType(f"the annotations of {_name(tp)} cannot be resolved: {exc}") from exc


def _name(tp: Any) -> str:
    return getattr(tp, "__qualname__", None) or repr(tp)


def compile_type(tp: Any) -> Shape:
    """The :class:`Shape` of the type hint *tp*.

    Raises:
      UnsupportedType: *tp* (or a type inside it) has no JSON schema here.

    Example:
      >>> from typing import Literal
      >>> shape = compile_type(list[Literal["c", "f"]])
      >>> shape.schema
      {'type': 'array', 'items': {'type': 'string', 'enum': ['c', 'f']}}
      >>> errors = []
      >>> _ = shape.check(["c", "k"], "units", errors)
      >>> errors
      ["units[1]: must be one of 'c', 'f'; got str 'k'"]
    """
    return _Compiler().compile(tp)


MISSING = _MISSING
"""What ``check`` returns for a value it rejected (with an error added)."""
