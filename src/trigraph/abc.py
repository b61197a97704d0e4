"""Protocols for implementers of checkpoint stores and serializers."""

from ._abc import (
    Checkpointer as Checkpointer,
    CheckpointRecord as CheckpointRecord,
    Serializer as Serializer,
    ThreadLock as ThreadLock,
    prunable as prunable,
)
from ._util import fixup_module_metadata

fixup_module_metadata(__name__, globals())
del fixup_module_metadata
