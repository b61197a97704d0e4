"""PostgreSQL support: durable threads shared by many processes on many machines.

``PostgresCheckpointer`` (also importable as ``trigraph.PostgresCheckpointer``)
needs the ``postgres`` extra: ``pip install "trigraph[postgres]"`` (psycopg 3
and psycopg-pool). Importing this package does not import psycopg; the first
``PostgresCheckpointer(...)`` does, and says how to install it if it is missing.

Private modules: ``_dsn`` (connection strings, password redaction), ``_db``
(the Trio seam over psycopg's sync API: a pool, one worker-thread hop per
transaction, cancellation that reaches the server), ``_schema`` (versioned
schemas in a namespace of their own), ``_sql`` and ``_checkpointer``.
"""

from ._checkpointer import PostgresCheckpointer as PostgresCheckpointer
