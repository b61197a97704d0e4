"""Versioned schemas in a dedicated PostgreSQL namespace, upgraded on first use.

Everything trigraph stores lives in one PostgreSQL schema (``"trigraph"`` by
default), so a database shared with other applications is fine. The schema's
marker is its ``schema_versions`` table: one row per *component* (the
checkpoints here; the HTTP server's run queue adds its own), holding the
number of migrations applied. :func:`ensure` brings a component up to date:

- a quick read first: an up-to-date schema costs one query and takes no lock;
- otherwise one transaction under an advisory lock keyed by the schema name,
  so two processes starting at once upgrade it once, the second waiting for
  the first and then finding nothing to do;
- a schema that holds tables but no marker is somebody else's, and a
  component newer than this trigraph knows is refused: both are a
  ``CheckpointError`` raised before anything is changed.
"""

from __future__ import annotations

from typing import Any

import attrs

from .._exceptions import CheckpointError

__all__ = ["MARKER", "Component", "ensure", "quote_ident", "valid_schema_name"]

MARKER = "schema_versions"
_LOCK_CLASS = 0x74726967  # "trig": the advisory lock space of schema upgrades


def valid_schema_name(name: object) -> str:
    """*name* if it can name a PostgreSQL schema unambiguously, else ``ValueError``.

    Example:
      >>> valid_schema_name("trigraph")
      'trigraph'
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"schema must be a non-empty str, got {name!r}")
    if "\x00" in name or len(name.encode()) > 63:
        # PostgreSQL cuts identifiers at 63 bytes: two long names would share a schema.
        raise ValueError(f"schema name {name!r} must be at most 63 bytes, without NUL")
    return name


def quote_ident(name: str) -> str:
    """*name* as a quoted SQL identifier.

    Example:
      >>> quote_ident('a"b')
      '"a""b"'
    """
    return '"' + name.replace('"', '""') + '"'


@attrs.frozen
class Component:
    """A set of tables that upgrades as one.

    Attributes:
      name: the key of its row in the marker table.
      migrations: SQL scripts; ``migrations[i]`` takes version ``i`` to
        ``i + 1``. ``{schema}`` in a script is replaced by the quoted schema.
    """

    name: str
    migrations: tuple[str, ...]

    @property
    def version(self) -> int:
        return len(self.migrations)


def _tables(conn: Any, schema: str) -> list[str]:
    rows = conn.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relkind IN ('r', 'p', 'v', 'm', 'f') ORDER BY 1",
        (schema,),
    ).fetchall()
    return [r[0] for r in rows]


def _version(conn: Any, schema: str, component: Component, where: str) -> int | None:
    """The component's version; ``None`` when the schema has no marker yet."""
    q = quote_ident(schema)
    # pg_class through a fresh snapshot, not to_regclass(): the catalog cache
    # may not yet show a marker that another process just committed.
    found = _tables(conn, schema)
    if MARKER not in found:
        foreign = found
        if foreign:
            raise CheckpointError(
                f"PostgreSQL schema {schema!r} at {where} is not trigraph's (it holds "
                f"{', '.join(foreign[:5])}{', ...' if len(foreign) > 5 else ''}); "
                "pass another schema= (trigraph keeps its tables in a schema of its own)"
            )
        return None
    row = conn.execute(
        f"SELECT version FROM {q}.{MARKER} WHERE component = %s", (component.name,)
    ).fetchone()
    version = 0 if row is None else int(row[0])
    if version > component.version:
        raise CheckpointError(
            f"PostgreSQL schema {schema!r} at {where} was written by a newer trigraph "
            f"({component.name} schema v{version}; this one knows up to "
            f"v{component.version}); upgrade trigraph"
        )
    return version


def ensure(conn: Any, schema: str, component: Component, *, where: str) -> None:
    """Create or upgrade *component* in *schema* (sync; *conn* in autocommit mode).

    Raises:
      CheckpointError: the schema is somebody else's, or newer than this
        trigraph; nothing was changed.
    """
    if _version(conn, schema, component, where) == component.version:
        return
    q = quote_ident(schema)
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (_LOCK_CLASS, schema))
        version = _version(conn, schema, component, where)  # again, under the lock
        if version is None:
            conn.execute(f"CREATE SCHEMA IF NOT EXISTS {q}")
            conn.execute(
                f"CREATE TABLE {q}.{MARKER} (component text PRIMARY KEY, "
                "version integer NOT NULL)"
            )
            version = 0
        for script in component.migrations[version:]:
            conn.execute(script.replace("{schema}", q))
        conn.execute(
            f"INSERT INTO {q}.{MARKER} (component, version) VALUES (%s, %s) "
            "ON CONFLICT (component) DO UPDATE SET version = EXCLUDED.version",
            (component.name, component.version),
        )
