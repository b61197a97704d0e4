"""The error of ``trigraph.agents``::

    TrigraphError
    └── MaxTurnsError (also RuntimeError)   an agent reached create_agent(max_turns=)
"""

from __future__ import annotations

from .. import TrigraphError
from .._util import final

__all__ = ["MaxTurnsError"]


@final
class MaxTurnsError(TrigraphError, RuntimeError):
    """An agent would call its model more than ``max_turns`` times for one
    user message. The thread keeps its state; raise the bound (or add a
    message) and resume.

    Attributes:
      max_turns: the bound that was reached.

    .. versionadded:: 0.2
    """

    def __init__(self, max_turns: int, agent: str) -> None:
        super().__init__(
            f"agent {agent!r} called its model {max_turns} times since the last user message "
            f"(max_turns={max_turns}) and still asks for tools; pass a larger max_turns= to "
            "create_agent, or check why the model keeps calling tools"
        )
        self.max_turns = max_turns
