"""Serving graphs over HTTP with the LangGraph Server API (the ``server`` extra).

``trigraph serve`` and ``trigraph worker`` are the usual way in; the same
services are here for programs that embed them:

- :func:`serve`: the HTTP API (Hypercorn on Trio) plus in-process workers;
- :func:`run_worker`: a worker process of a PostgreSQL deployment;
- :func:`create_app`: the ASGI application alone, for another ASGI server.

Runs are queued in the database (SQLite or PostgreSQL) and executed by
workers under leases; their events are stored with increasing ids, so any
server process streams any run and a reconnecting client resumes exactly
after the last event it saw.
"""

from ._app import DEFAULT_MAX_BODY as DEFAULT_MAX_BODY, create_app as create_app
from ._graphs import assistant_id as assistant_id
from ._serve import open_backend as open_backend, run_worker as run_worker, serve as serve
from ._shapes import Context as Context

# Not trigraph._util.fixup_module_metadata: the server depends on the engine
# through its public names only.
for _obj in (create_app, assistant_id, open_backend, run_worker, serve, Context):
    _obj.__module__ = __name__
del _obj

__all__ = [
    "DEFAULT_MAX_BODY",
    "Context",
    "assistant_id",
    "create_app",
    "open_backend",
    "run_worker",
    "serve",
]
