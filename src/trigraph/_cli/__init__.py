"""The ``trigraph`` console script (also ``python -m trigraph``).

Commands: ``run``, ``resume``, ``threads``, ``state``, ``history``,
``mermaid`` and ``demo`` (see ``trigraph --help``). The command line is the
``cli`` extra: it renders with ``rich``, which the engine itself does not
need. Without it, :func:`main` prints one line naming the extra and exits 1.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

__all__ = ["main"]

_MISSING_RICH = (
    "trigraph: the command line needs the 'cli' extra (rich): pip install 'trigraph[cli]'"
)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with *argv* (default ``sys.argv[1:]``); return the exit status.

    0: done (or paused, waiting for ``resume``); 1: the run failed; 2: a usage
    error (a bad target, input, thread or database); 130: cancelled by Ctrl-C.

    .. versionadded:: 0.1
    """
    try:
        import rich  # noqa: F401
    except ImportError:
        print(_MISSING_RICH, file=sys.stderr)
        return 1
    from ._commands import dispatch

    return dispatch(argv)
