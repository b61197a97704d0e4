"""Claims on threads that other processes see: byte-range locks on a file.

A SQLite database is shared by the processes of one machine, so its thread
claims are POSIX record locks (``fcntl``) on a lock file beside it: one byte
per thread, at an offset hashed from the thread id. The kernel drops a
process's record locks when the process dies, however it dies (a SIGKILL
included), so a crashed run never holds its thread: the claim is stale the
moment its process is gone, with no lease to wait out and no pid to trust.

Record locks do not exclude other holders inside one process, and closing
*any* descriptor of the file drops all of the process's locks on it, so each
lock file is opened once per process and known by its inode (two spellings
of one path, a symlink, a hard link: one entry), and claims inside the
process are kept in the same table. A forked child starts with no claims.

Everything here is sync and fast (non-blocking ``fcntl`` on a local file);
callers run it in their store's worker thread with the rest of their I/O.
"""

from __future__ import annotations

import errno
import hashlib
import os
import secrets
import threading
from pathlib import Path

import attrs

from ._abc import ThreadLock
from ._exceptions import CheckpointError, ThreadBusyError

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: claims are seen in this process only
    fcntl = None  # type: ignore[assignment]

__all__ = ["acquire", "holds", "release"]

_BUSY = frozenset({errno.EAGAIN, errno.EACCES})


@attrs.define(eq=False)
class _LockFile:
    fd: int
    key: tuple[int, int]
    held: dict[str, str] = attrs.Factory(dict)
    """thread -> token of the claims this process holds on the file."""


_FILES: dict[tuple[int, int], _LockFile] = {}
_HELD: dict[str, _LockFile] = {}
"""token -> the lock file of each claim this process holds."""
_KEPT: list[int] = []
"""Descriptors never closed: closing one would drop the process's locks."""
_MUTEX = threading.Lock()


def _forget_after_fork() -> None:  # pragma: no cover - runs in forked children
    global _MUTEX
    _MUTEX = threading.Lock()
    _FILES.clear()  # record locks are not inherited; the descriptors are left alone
    _HELD.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)


def _offset(thread: str) -> int:
    # 62 bits of a hash: far inside off_t, and collisions are negligible.
    digest = hashlib.blake2b(thread.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 2


def _open(path: Path) -> _LockFile:
    """The process's entry for the lock file at *path* (under ``_MUTEX``)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        pass
    else:
        known = _FILES.get((st.st_dev, st.st_ino))
        if known is not None:
            return known
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        st = os.fstat(fd)
    except OSError as exc:
        raise CheckpointError(f"cannot open the lock file {path}: {exc}") from exc
    key = (st.st_dev, st.st_ino)
    known = _FILES.get(key)
    if known is not None:  # pragma: no cover - the file appeared between stat and open
        _KEPT.append(fd)
        return known
    entry = _FILES[key] = _LockFile(fd, key)
    return entry


def acquire(path: Path, thread: str) -> ThreadLock:
    """Claim *thread* in the lock file *path*; raise ``ThreadBusyError`` if held.

    Raises:
      ThreadBusyError: another run (in this process or another) holds it.
      CheckpointError: the lock file cannot be opened or locked at all.
    """
    with _MUTEX:
        lf = _open(path)
        if thread in lf.held:
            raise ThreadBusyError(thread, holder="another run in this process")
        if fcntl is not None:
            try:
                fcntl.lockf(lf.fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, _offset(thread))
            except OSError as exc:
                if exc.errno in _BUSY:
                    raise ThreadBusyError(thread, holder="a run in another process") from None
                raise CheckpointError(
                    f"cannot lock thread {thread!r} in {path}: {exc} (thread claims need "
                    "POSIX record locks, which this file system does not give)"
                ) from exc
        token = secrets.token_hex(8)
        lf.held[thread] = token
        _HELD[token] = lf
        return ThreadLock(thread, token)


def holds(lock: ThreadLock) -> bool:
    """Whether this process still holds *lock*."""
    lf = _HELD.get(lock.token)
    return lf is not None and lf.held.get(lock.thread) == lock.token


def release(lock: ThreadLock) -> None:
    """Release *lock* if this process still holds it; close the file when unused."""
    with _MUTEX:
        lf = _HELD.pop(lock.token, None)
        if lf is None or lf.held.get(lock.thread) != lock.token:
            return
        del lf.held[lock.thread]
        if fcntl is not None:
            fcntl.lockf(lf.fd, fcntl.LOCK_UN, 1, _offset(lock.thread))
        if not lf.held:
            os.close(lf.fd)
            del _FILES[lf.key]
