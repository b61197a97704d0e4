"""Connection strings: telling one apart, naming its server, hiding its password.

Pure string work with no driver import, so that the command line can decide
what ``--db`` names and print it safely whether or not psycopg is installed.
Both libpq forms are understood: URLs (``postgresql://user:pw@host:5432/db``)
and keyword/value strings (``host=/tmp port=5432 password='s e c r e t'``).
The invariant: nothing this module returns contains the password.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, unquote, urlsplit

__all__ = ["describe_dsn", "is_postgres_url", "password_of", "redact_dsn", "scrub"]

_SCHEMES = ("postgresql://", "postgres://")
_KV_PASSWORD = re.compile(r"(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|\S*)")
_KV_PAIR = re.compile(r"(\w+)\s*=\s*('(?:[^'\\]|\\.)*'|\S*)")
_QUERY_PASSWORD = re.compile(r"([?&]password=)[^&#]*")
_HOSTPORT = re.compile(r"(\[[^\]]*\]|[^:]*)(?::(\d*))?")
REDACTED = "***"


def is_postgres_url(text: str) -> bool:
    """Whether *text* is a ``postgresql://`` (or ``postgres://``) URL.

    Example:
      >>> is_postgres_url("postgresql://db.example/app"), is_postgres_url("threads.db")
      (True, False)
    """
    return text.lower().startswith(_SCHEMES)


def _userinfo_span(dsn: str) -> tuple[int, int] | None:
    """Where the ``user[:password]`` part of a URL is, if it has one."""
    start = dsn.index("://") + 3
    query = dsn.find("?", start)
    end = dsn.rfind("@", start, query if query >= 0 else len(dsn))
    return None if end < 0 else (start, end)


def redact_dsn(dsn: str) -> str:
    """*dsn* with its password (if any) replaced by ``***``.

    Example:
      >>> redact_dsn("postgresql://app:s3cret@db.example:5432/app?sslmode=require")
      'postgresql://app:***@db.example:5432/app?sslmode=require'
      >>> redact_dsn("host=db.example password='a b' dbname=app")
      'host=db.example password=*** dbname=app'
    """
    if is_postgres_url(dsn):
        span = _userinfo_span(dsn)
        if span is not None:
            start, end = span
            colon = dsn.find(":", start, end)
            if colon >= 0:
                dsn = dsn[: colon + 1] + REDACTED + dsn[end:]
        return _QUERY_PASSWORD.sub(lambda m: m.group(1) + REDACTED, dsn)
    return _KV_PASSWORD.sub(lambda m: m.group(1) + REDACTED, dsn)


def _unquote_kv(value: str) -> str:
    if value.startswith("'") and value.endswith("'") and len(value) >= 2:
        return re.sub(r"\\(.)", r"\1", value[1:-1])
    return value


def _params(dsn: str) -> dict[str, str]:
    if is_postgres_url(dsn):
        parts = urlsplit(dsn)
        out = dict(parse_qsl(parts.query))
        hostport = parts.netloc.rpartition("@")[2]
        if parts.username:
            out.setdefault("user", unquote(parts.username))
        if parts.password:
            out.setdefault("password", unquote(parts.password))
        match = _HOSTPORT.fullmatch(hostport)
        if "," in hostport or match is None:
            if hostport:
                out.setdefault("host", unquote(hostport))
        else:
            if match.group(1):
                out.setdefault("host", unquote(match.group(1)))
            if match.group(2):
                out.setdefault("port", match.group(2))
        if parts.path.strip("/"):
            out.setdefault("dbname", unquote(parts.path.lstrip("/")))
        return out
    return {m.group(1): _unquote_kv(m.group(2)) for m in _KV_PAIR.finditer(dsn)}


def password_of(dsn: str) -> str | None:
    """The password written in *dsn*, for :func:`scrub`; ``None`` if none."""
    return _params(dsn).get("password") or None


def describe_dsn(dsn: str) -> str:
    """The server and database *dsn* names, for messages: ``host:port/dbname``.

    Example:
      >>> describe_dsn("postgresql://app:pw@db.example/app")
      'db.example:5432/app'
      >>> describe_dsn("host=/tmp/pg port=5433 user=me")
      '/tmp/pg:5433/me'
    """
    p = _params(dsn)
    host = p.get("host") or p.get("hostaddr") or "localhost"
    port = p.get("port") or "5432"
    dbname = p.get("dbname") or p.get("user") or "postgres"
    return f"{host}:{port}/{dbname}"


def scrub(message: str, dsn: str) -> str:
    """*message* with every occurrence of *dsn*'s password replaced by ``***``.

    Example:
      >>> scrub("bad DSN: password=hunter2", "password=hunter2")
      'bad DSN: password=***'
    """
    password = password_of(dsn)
    if password:
        message = message.replace(password, REDACTED)
    return message
