"""The JSON codec for checkpoints: plain JSON, plus registered attrs classes
and dataclasses, and never pickle.

JSON types round-trip as themselves (a tuple comes back as a list). An attrs
or dataclass instance is written as ``{"__trigraph_type__": name, "fields": {...}}``
(a dict of exactly those two keys is reserved for this)
and read back only if its class was registered, either with
:meth:`JsonSerializer.register` or by being encoded earlier in this process
(``compile()`` registers the attrs classes and dataclasses named in the state
schema's annotations, so a fresh process can read what an earlier one wrote). Reading never imports
a module or calls anything but a registered class's constructor.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, TypeVar

import attrs

from ._exceptions import SerializationError
from ._util import final

__all__ = ["JsonSerializer", "default_serializer", "register_type"]

C = TypeVar("C", bound=type)

_TYPE = "__trigraph_type__"


def _type_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _check_keys(value: Any) -> None:
    """Raise ``TypeError`` for a dict key, however nested, that is not a ``str``.

    Runs on every checkpoint write, so scalars are skipped by exact type
    before any ``isinstance`` check.
    """
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, inner in item.items():
                if type(key) is not str:
                    raise TypeError(
                        f"dict key {key!r} is a {type(key).__name__}; JSON keeps only str "
                        f"keys (it would come back as {str(key)!r})"
                    )
                if type(inner) not in _SCALARS and isinstance(inner, _CONTAINERS):
                    stack.append(inner)
        elif isinstance(item, _CONTAINERS):
            stack.extend(
                inner for inner in item
                if type(inner) not in _SCALARS and isinstance(inner, _CONTAINERS)
            )


_CONTAINERS = (dict, list, tuple)
_SCALARS = frozenset({str, int, float, bool, type(None)})


@final
class JsonSerializer:
    """JSON with a registry of attrs classes and dataclasses.

    Example:
      >>> import attrs
      >>> @attrs.frozen
      ... class Point:
      ...     x: int
      ...     y: int
      >>> s = JsonSerializer()
      >>> s.register(Point)
      >>> s.loads(s.dumps([Point(1, 2)]))
      [Point(x=1, y=2)]

    .. versionadded:: 0.1
    """

    def __init__(self) -> None:
        self._types: dict[str, type] = {}
        self._encoder = json.JSONEncoder(
            default=self._default, ensure_ascii=False, allow_nan=False, separators=(",", ":")
        )
        self._decoder = json.JSONDecoder(object_hook=self._hook)

    def register(self, cls: type) -> None:
        """Allow instances of the attrs class or dataclass *cls* to be read back."""
        if not (attrs.has(cls) or dataclasses.is_dataclass(cls)):
            raise TypeError(f"only attrs classes and dataclasses can be registered, not {cls!r}")
        self._types[_type_name(cls)] = cls

    def _default(self, obj: Any) -> Any:
        cls = type(obj)
        if attrs.has(cls):
            self._types.setdefault(_type_name(cls), cls)
            fields = {a.name: getattr(obj, a.name) for a in attrs.fields(cls) if a.init}
            _check_keys(fields)
            return {_TYPE: _type_name(cls), "fields": fields}
        if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
            self._types.setdefault(_type_name(cls), cls)
            fields = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj) if f.init}
            _check_keys(fields)
            return {_TYPE: _type_name(cls), "fields": fields}
        raise TypeError(f"a {cls.__qualname__} cannot be stored as JSON")

    def _hook(self, obj: dict[str, Any]) -> Any:
        name = obj.get(_TYPE)
        if name is None or len(obj) != 2 or "fields" not in obj:
            return obj
        cls = self._types.get(name)
        if cls is None:
            raise SerializationError(
                f"the checkpoint holds a {name}, which is not registered; call "
                f"JsonSerializer.register({name.rsplit('.', 1)[-1]}) before reading it"
            )
        return cls(**obj["fields"])

    def dumps(self, value: Any) -> bytes:
        """Encode *value*; raise ``TypeError``/``ValueError`` if it is not storable.

        A dict key that is not a ``str`` is refused rather than silently
        turned into one (``{1: "a"}`` would come back as ``{"1": "a"}``).
        """
        _check_keys(value)
        return self._encoder.encode(value).encode()

    def loads(self, data: bytes) -> Any:
        """Decode bytes made by :meth:`dumps`."""
        return self._decoder.decode(data.decode())


default_serializer = JsonSerializer()
"""The serializer every checkpointer uses unless told otherwise."""


def register_type(cls: C) -> C:
    """Let checkpoints hold instances of the attrs class or dataclass *cls*.

    Classes named in a graph's state schema are registered when it is
    compiled; register any other class whose instances a state may hold (a
    value inside a ``list`` or ``dict`` key, say), so that a thread written by
    one process can be read back by another. Usable as a class decorator.

    Raises:
      TypeError: *cls* is neither an attrs class nor a dataclass.

    Example:
      >>> import attrs
      >>> from trigraph import register_type
      >>> @register_type
      ... @attrs.frozen
      ... class Reading:
      ...     value: float

    .. versionadded:: 0.2
    """
    default_serializer.register(cls)
    return cls

