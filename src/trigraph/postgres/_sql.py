"""The SQL of ``PostgresCheckpointer``: its tables and every statement it runs.

Records are stored as the SQLite store keeps them (opaque bytes: deltas, and
now and then a snapshot), one row per checkpoint, plus one row per claimed
thread. The indexes serve exactly the reads the engine makes: the latest
record of a thread and namespace (``(thread, ns, seq)``), one record by id
(the unique ``(thread, ns, id)``, also walked by ``chain``'s recursive query),
and the history in write order.

Claims are lease rows: a token and an expiry on the SERVER's clock (never a
client's), taken in one statement when free or expired. Every write given a
claim checks it in the SAME statement, locking the claim row ``FOR SHARE``:
a takeover (which updates that row) waits for the write, or the write sees
the new token and stores nothing. So a run that lost its thread never lands
a write after the run that took it over has started.
"""

from __future__ import annotations

from typing import Any

from .._abc import CheckpointRecord
from ._schema import Component

__all__ = ["COMPONENT", "Statements", "record"]

COMPONENT = Component(
    "checkpoints",
    (
        """
        CREATE TABLE {schema}.checkpoints (
            seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            thread text NOT NULL,
            ns text NOT NULL,
            id text NOT NULL,
            parent_id text,
            step bigint NOT NULL,
            created_at double precision NOT NULL,
            body bytea NOT NULL,
            snapshot bytea,
            pending bytea,
            UNIQUE (thread, ns, id)
        );
        CREATE INDEX checkpoints_latest ON {schema}.checkpoints (thread, ns, seq);
        CREATE TABLE {schema}.thread_claims (
            thread text PRIMARY KEY,
            token text NOT NULL,
            owner text NOT NULL,
            expires timestamptz NOT NULL
        ) WITH (fillfactor = 70);
        """,
    ),
)

_COLUMNS = "thread, ns, id, parent_id, step, created_at, body, snapshot, pending"


def record(row: Any) -> CheckpointRecord:
    """A stored row (in ``_COLUMNS`` order) as a record."""
    return CheckpointRecord(
        thread=row[0],
        ns=row[1],
        id=row[2],
        parent_id=row[3],
        step=row[4],
        created_at=row[5],
        body=bytes(row[6]),
        snapshot=None if row[7] is None else bytes(row[7]),
        pending=None if row[8] is None else bytes(row[8]),
    )


class Statements:
    """Every statement, with the (quoted) schema filled in once."""

    def __init__(self, schema: str) -> None:
        s = schema
        cols = _COLUMNS
        values = "%s::text, %s::text, %s::text, %s::text, %s::bigint, " \
                 "%s::float8, %s::bytea, %s::bytea, %s::bytea"
        fence = (f"fence AS (SELECT 1 FROM {s}.thread_claims "
                 "WHERE thread = %s AND token = %s FOR SHARE)")
        self.put = f"INSERT INTO {s}.checkpoints ({cols}) VALUES ({values})"
        self.put_fenced = (
            f"WITH {fence}, ins AS (INSERT INTO {s}.checkpoints ({cols}) "
            f"SELECT {values} FROM fence RETURNING 1) SELECT count(*) FROM fence"
        )
        self.put_pending = (
            f"UPDATE {s}.checkpoints SET pending = %s::bytea "
            "WHERE thread = %s AND ns = %s AND id = %s"
        )
        self.put_pending_fenced = (
            f"WITH {fence}, upd AS (UPDATE {s}.checkpoints SET pending = %s::bytea "
            "WHERE thread = %s AND ns = %s AND id = %s AND EXISTS (SELECT 1 FROM fence) "
            "RETURNING 1) SELECT (SELECT count(*) FROM fence), (SELECT count(*) FROM upd)"
        )
        self.get_latest = (
            f"SELECT {cols} FROM {s}.checkpoints WHERE thread = %s AND ns = %s "
            "ORDER BY seq DESC LIMIT 1"
        )
        self.get_id = (
            f"SELECT {cols} FROM {s}.checkpoints WHERE thread = %s AND ns = %s AND id = %s"
        )
        qualified = ", ".join(f"t.{c.strip()}" for c in cols.split(","))
        self.chain = f"""
            WITH RECURSIVE c(seq, parent_id, has_snapshot, depth) AS (
                SELECT seq, parent_id, snapshot IS NOT NULL, 0 FROM {s}.checkpoints
                WHERE thread = %(thread)s AND ns = %(ns)s AND id = %(id)s
                UNION ALL
                SELECT p.seq, p.parent_id, p.snapshot IS NOT NULL, c.depth + 1
                FROM {s}.checkpoints p JOIN c
                ON p.thread = %(thread)s AND p.ns = %(ns)s AND p.id = c.parent_id
                WHERE NOT c.has_snapshot
            )
            SELECT {qualified} FROM c JOIN {s}.checkpoints t ON t.seq = c.seq ORDER BY c.depth
        """
        self.history = (
            f"SELECT {cols} FROM {s}.checkpoints WHERE thread = %s AND ns = %s "
            "ORDER BY seq DESC"
        )
        self.threads = (
            f"SELECT thread FROM {s}.checkpoints WHERE ns = '' "
            "GROUP BY thread ORDER BY max(seq) DESC"
        )
        self.claim = (
            f"INSERT INTO {s}.thread_claims AS c (thread, token, owner, expires) "
            "VALUES (%s, %s, %s, now() + %s * interval '1 second') "
            "ON CONFLICT (thread) DO UPDATE SET token = EXCLUDED.token, "
            "owner = EXCLUDED.owner, expires = EXCLUDED.expires WHERE c.expires <= now() "
            "RETURNING 1"
        )
        self.holder = (
            "SELECT owner, greatest(0, extract(epoch FROM expires - now()))::float8 "
            f"FROM {s}.thread_claims WHERE thread = %s"
        )
        self.renew = (
            f"UPDATE {s}.thread_claims SET expires = now() + %s * interval '1 second' "
            "WHERE thread = %s AND token = %s"
        )
        self.release = f"DELETE FROM {s}.thread_claims WHERE thread = %s AND token = %s"
        self.delete_thread = f"DELETE FROM {s}.checkpoints WHERE thread = %s"
        self.prune_rows = (
            f"SELECT ns, id, parent_id, snapshot IS NOT NULL FROM {s}.checkpoints "
            "WHERE thread = %s ORDER BY ns, seq"
        )
        self.prune_delete = (
            f"DELETE FROM {s}.checkpoints c USING unnest(%s::text[], %s::text[]) AS d(ns, id) "
            "WHERE c.thread = %s AND c.ns = d.ns AND c.id = d.id"
        )
