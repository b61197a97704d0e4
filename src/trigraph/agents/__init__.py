"""Agents: ``create_agent`` compiles the loop of a model that calls tools,
with a person approving chosen calls.

.. versionadded:: 0.2
"""

from .._util import fixup_module_metadata as _fixup
from ._create import create_agent as create_agent
from ._errors import MaxTurnsError as MaxTurnsError

_fixup(__name__, globals())
del _fixup
