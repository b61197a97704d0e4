"""A disposable PostgreSQL server for the tests (not collected).

``PgServer.start()`` runs ``initdb`` into a new temporary folder and starts
the server with ``pg_ctl`` on a Unix socket in that folder (no TCP port, so
parallel test runs never collide), with fsync off: the tests kill clients,
never the machine. As root, initdb and postgres refuse to run, so both run as
the ``postgres`` user through ``runuser``. ``stop()`` stops exactly that
server (``pg_ctl -D <its folder> stop``) and deletes the folder.

Where the binaries are: ``$TRIGRAPH_PG_BIN`` (only there, when set), else
``pg_config --bindir``, else the newest ``/usr/lib/postgresql/*/bin``.
:func:`missing_reason` says why a server cannot be started here, or ``None``.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import attrs

__all__ = ["PgServer", "find_bindir", "missing_reason"]


def find_bindir() -> Path | None:
    """The folder of ``initdb`` and ``pg_ctl``, or ``None``."""
    given = os.environ.get("TRIGRAPH_PG_BIN")
    candidates: list[str] = [given] if given else []
    if given:
        pass  # only where we are told
    elif shutil.which("pg_config"):
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True)
        if out.returncode == 0:
            candidates.append(out.stdout.strip())
    if not given:
        candidates += sorted(
            glob.glob("/usr/lib/postgresql/*/bin"),
            key=lambda p: int(p.split("/")[-2]) if p.split("/")[-2].isdigit() else 0,
            reverse=True,
        )
    for folder in candidates:
        if (Path(folder) / "initdb").exists() and (Path(folder) / "pg_ctl").exists():
            return Path(folder)
    return None


def _runas() -> list[str]:
    if os.geteuid() != 0:
        return []
    return ["runuser", "-u", "postgres", "--"]


def missing_reason() -> str | None:
    """Why no disposable server can be started here, or ``None`` if one can."""
    if find_bindir() is None:
        return ("no PostgreSQL binaries (initdb, pg_ctl) found: install PostgreSQL "
                "(e.g. apt-get install -y postgresql) or set TRIGRAPH_TEST_PG_DSN")
    if os.geteuid() == 0:
        import pwd

        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no 'postgres' user to run the server as"
    return None


@attrs.define
class PgServer:
    """One disposable server: its folder, and its DSN once started."""

    folder: Path
    bindir: Path
    port: int = 5432

    @property
    def dsn(self) -> str:
        return f"host={self.folder} port={self.port} user=postgres dbname=postgres"

    @classmethod
    def start(cls) -> PgServer:
        bindir = find_bindir()
        if bindir is None:
            raise RuntimeError(missing_reason())
        folder = Path(tempfile.mkdtemp(prefix="trigraph-pg-"))
        folder.chmod(0o755)
        if os.geteuid() == 0:
            shutil.chown(folder, "postgres")
        server = cls(folder, bindir)
        init = subprocess.run(
            [*_runas(), str(bindir / "initdb"), "-D", str(folder / "data"), "-U", "postgres",
             "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"],
            capture_output=True, text=True, timeout=120,
        )
        if init.returncode != 0:
            shutil.rmtree(folder, ignore_errors=True)
            raise RuntimeError(f"initdb failed: {init.stderr.strip() or init.stdout.strip()}")
        server.resume()
        return server

    def _options(self) -> str:
        return (f"-p {self.port} -c listen_addresses='' -c unix_socket_directories='{self.folder}' "
                "-c max_connections=200 -c fsync=off -c synchronous_commit=off "
                "-c full_page_writes=off")

    def resume(self) -> None:
        """Start the server (again) on the same folder and socket."""
        started = subprocess.run(
            [*_runas(), str(self.bindir / "pg_ctl"), "-D", str(self.folder / "data"),
             "-l", str(self.folder / "server.log"), "-o", self._options(), "-w", "-t", "60",
             "start"],
            capture_output=True, text=True, timeout=90,
        )
        if started.returncode != 0:
            log = (self.folder / "server.log")
            tail = log.read_text()[-2000:] if log.exists() else started.stderr
            raise RuntimeError(f"pg_ctl start failed: {tail}")

    def halt(self, mode: str = "fast") -> None:
        """Stop the server (its folder stays, so :meth:`resume` can restart it)."""
        if (self.folder / "data" / "postmaster.pid").exists():
            subprocess.run(
                [*_runas(), str(self.bindir / "pg_ctl"), "-D", str(self.folder / "data"),
                 "-m", mode, "-w", "-t", "60", "stop"],
                capture_output=True, text=True, timeout=90,
            )

    def stop(self) -> None:
        """Stop the server and delete its folder."""
        try:
            self.halt()
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)
