"""``Stores``: one kind of checkpointer under test, reopenable (not collected)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import trio

from trigraph import MemoryCheckpointer, PostgresCheckpointer, SqliteCheckpointer
from trigraph.abc import Checkpointer

__all__ = ["Stores", "drop_schema"]


def drop_schema(dsn: str, schema: str) -> None:
    """Drop a test's schema (sync)."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@attrs.define
class Stores:
    """One kind of checkpointer under test, and a way to open its storage afresh."""

    kind: str
    path: Path
    dsn: str | None = None
    schema: str | None = None
    opened: list[Checkpointer] = attrs.Factory(list)

    @property
    def cp(self) -> Checkpointer:
        """The first checkpointer opened on the storage."""
        return self.opened[0] if self.opened else self.open()

    def open(self, **kwargs: Any) -> Checkpointer:
        """A new checkpointer on the same storage (memory: the same object)."""
        store: Checkpointer
        if self.kind == "memory":
            if self.opened:
                return self.opened[0]
            store = MemoryCheckpointer()
        elif self.kind == "sqlite":
            store = SqliteCheckpointer(self.path, **kwargs)
        else:
            assert self.dsn is not None
            assert self.schema is not None
            store = PostgresCheckpointer(self.dsn, schema=self.schema, **kwargs)
        self.opened.append(store)
        return store

    reopen = open

    async def aclose(self) -> None:
        for store in self.opened:
            await store.aclose()
        if self.kind == "postgres" and self.dsn is not None and self.schema is not None:
            await trio.to_thread.run_sync(drop_schema, self.dsn, self.schema)
