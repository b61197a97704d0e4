"""State schemas written with string annotations (``from __future__ import
annotations``), so the engine must resolve them like any others."""

from __future__ import annotations

import dataclasses
import operator
from typing import Annotated, TypedDict

import attrs


class FutureState(TypedDict, total=False):
    topic: str
    notes: Annotated[list[str], operator.add]
    count: Annotated[int, operator.add]


@attrs.define
class FutureAttrsState:
    topic: str
    notes: Annotated[list[str], operator.add] = attrs.Factory(list)


@dataclasses.dataclass
class FutureDataclassState:
    topic: str
    notes: Annotated[list[str], operator.add] = dataclasses.field(default_factory=list)
