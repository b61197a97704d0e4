"""Every error trigraph raises, in one place.

The hierarchy::

    Exception
    └── TrigraphError
        ├── GraphValidationError (also ValueError)    a graph that cannot run
        ├── InvalidUpdateError (also ValueError)      a write the state cannot take
        ├── GraphRecursionError (also RecursionError) more supersteps than allowed
        ├── NodeTimeoutError (also TimeoutError)      a node ran past its timeout=
        ├── RunTimeoutError (also TimeoutError)       a run ran past its timeout=
        ├── SerializationError (also TypeError)       a value a checkpoint cannot hold
        ├── CheckpointError                           the checkpoint store failed
        ├── ThreadBusyError                           a thread that another run holds
        └── EmptyInputError (also ValueError)         resuming a thread with nothing to resume

Each error carries the attributes that locate it (``node``, ``step``, ``key``)
and builds its message in ``__init__``, so the message always says what
happened, where, and the usual fix. ``trio.Cancelled`` is never caught or
turned into any of these.
"""

from __future__ import annotations

from collections.abc import Sequence

from ._util import final

__all__ = [
    "CheckpointError",
    "EmptyInputError",
    "GraphRecursionError",
    "GraphValidationError",
    "InvalidUpdateError",
    "NodeTimeoutError",
    "RunTimeoutError",
    "SerializationError",
    "ThreadBusyError",
    "TrigraphError",
]


class TrigraphError(Exception):
    """The root of every error trigraph raises itself.

    .. versionadded:: 0.1
    """


@final
class GraphValidationError(TrigraphError, ValueError):
    """A graph that cannot run: found by ``compile()``, or by a router at run time.

    Attributes:
      node: the node or edge end the problem is about, if any.

    .. versionadded:: 0.1
    """

    def __init__(self, message: str, *, node: str | None = None) -> None:
        super().__init__(message)
        self.node = node


@final
class InvalidUpdateError(TrigraphError, ValueError):
    """A write the state cannot take.

    Raised when two tasks of one superstep write a key that has no reducer,
    when an update names a key the schema lacks, or when a node returns
    something that is not an update.

    Attributes:
      key: the state key concerned, if any.
      nodes: the nodes that wrote it.
      step: the superstep.

    .. versionadded:: 0.1
    """

    def __init__(
        self,
        message: str,
        *,
        key: str | None = None,
        nodes: Sequence[str] = (),
        step: int | None = None,
    ) -> None:
        super().__init__(message)
        self.key = key
        self.nodes = tuple(nodes)
        self.step = step


@final
class GraphRecursionError(TrigraphError, RecursionError):
    """A run needed more supersteps than its ``recursion_limit``.

    .. versionadded:: 0.1
    """

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"the run did not reach END within recursion_limit={limit} supersteps; "
            "look for a loop without an exit, or pass a larger recursion_limit="
        )
        self.limit = limit


@final
class NodeTimeoutError(TrigraphError, TimeoutError):
    """A node ran longer than its ``timeout=`` (after all its retries, if any).

    .. versionadded:: 0.1
    """

    def __init__(self, node: str, timeout: float, step: int) -> None:
        super().__init__(f"node {node!r} timed out after {timeout:g} s in step {step}")
        self.node = node
        self.timeout = timeout
        self.step = step


@final
class RunTimeoutError(TrigraphError, TimeoutError):
    """A run took longer than the ``timeout=`` given to ``ainvoke``/``stream``.

    .. versionadded:: 0.1
    """

    def __init__(self, timeout: float, step: int) -> None:
        super().__init__(
            f"the run timed out after {timeout:g} s during step {step}; "
            "a durable thread resumes from its last checkpoint with ainvoke(None, thread=...)"
        )
        self.timeout = timeout
        self.step = step


@final
class SerializationError(TrigraphError, TypeError):
    """A state value that the checkpoint serializer cannot store.

    .. versionadded:: 0.1
    """

    def __init__(self, message: str, *, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


class CheckpointError(TrigraphError):
    """The checkpoint store failed or holds something this version cannot read.

    .. versionadded:: 0.1
    """


@final
class EmptyInputError(TrigraphError, ValueError):
    """``ainvoke(None, thread=...)`` on a thread that has nothing to continue.

    .. versionadded:: 0.1
    """


@final
class ThreadBusyError(TrigraphError):
    """A thread that another run holds: one thread runs one run at a time.

    Raised at once, before anything is written, by a run (or an
    ``update_state()``, ``delete_thread()``) on a thread whose claim another
    run holds, in this process or, with a shared database, in any other. Also
    raised by a run that lost its claim (its lease lapsed while the process
    was stalled and another process took the thread over): that run stops,
    and none of its later writes reach the thread.

    Attributes:
      thread: the thread id.
      holder: who holds the thread, when the checkpointer knows (e.g.
        ``"another task of this process"``), else ``None``.
      lost: true when the run had the thread and lost it.

    .. versionadded:: 0.2
    """

    def __init__(self, thread: str, *, holder: str | None = None, lost: bool = False) -> None:
        if lost:
            message = (
                f"the run lost its claim on thread {thread!r} (its lease lapsed and another "
                "run took the thread over); nothing more of this run was written"
            )
        else:
            by = f" ({holder})" if holder else ""
            message = (
                f"thread {thread!r} has a run in progress{by}; one thread runs one run at a "
                "time: wait for it to finish (or cancel it), or use another thread"
            )
        super().__init__(message)
        self.thread = thread
        self.holder = holder
        self.lost = lost

