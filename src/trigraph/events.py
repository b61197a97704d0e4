"""The events of a run's stream (see :meth:`trigraph.CompiledGraph.stream`)."""

from ._events import (
    MODES as MODES,
    Custom as Custom,
    Event as Event,
    Interrupted as Interrupted,
    Mode as Mode,
    TaskEnd as TaskEnd,
    TaskStart as TaskStart,
    Token as Token,
    Update as Update,
    Values as Values,
)
from ._util import fixup_module_metadata

fixup_module_metadata(__name__, globals())
del fixup_module_metadata
