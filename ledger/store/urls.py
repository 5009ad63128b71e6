"""Store URLs: `sqlite:///path/to.db` (or a bare path) or
`postgresql://user@host:port/db[?schema=NAME]`."""

from __future__ import annotations

import os
from urllib.parse import parse_qs, unquote, urlencode, urlsplit, urlunsplit

from ledger.errors import InvalidInput
from ledger.i18n import _
from ledger.store.base import Store
from ledger.values import quote

DEFAULT_STORE = "sqlite:///leadledger.db"
MAX_SCHEMA_BYTES = 63 - len("_read")


def open_store(url: str | None) -> Store:
    """Parse a store URL; nothing is connected until the store is used. Each backend's module
    (and its driver) is imported here, when a URL names it."""
    url = url or os.environ.get("LEADLEDGER_STORE") or DEFAULT_STORE
    if not isinstance(url, str):
        raise InvalidInput(_("a store URL must be text, not {value}", value=repr(url)[:40]))
    if url.startswith(("postgresql://", "postgres://")):
        parts = urlsplit(url)
        query = parse_qs(parts.query)
        schema = (query.pop("schema", ["leadledger"]) or ["leadledger"])[0]
        if not schema.replace("_", "").isalnum():
            raise InvalidInput(_("invalid schema name in store URL: {schema}", schema=quote(schema)))
        if len(schema.encode()) > MAX_SCHEMA_BYTES:  # PostgreSQL would cut it short, and two names meet
            raise InvalidInput(_("schema name too long in store URL: {schema}… (at most {most} bytes: the read "
                                 "models' schema adds _read to it, within PostgreSQL's 63)",
                                 schema=schema[:40], most=MAX_SCHEMA_BYTES))
        conninfo = urlunsplit(parts._replace(query=urlencode(query, doseq=True)))
        from ledger.store.postgres import PostgresStore  # noqa: PLC0415 - psycopg only when used
        return PostgresStore(url, conninfo, schema)
    from ledger.store.sqlite import SQLiteStore  # noqa: PLC0415

    if url.startswith("sqlite:///"):
        path = unquote(url[len("sqlite:///"):].split("?", 1)[0])  # sqlite:////abs, sqlite:///rel
        if not path:
            raise InvalidInput(_("no file named in store URL {url}", url=repr(url)))
        return SQLiteStore(url, path)
    if "://" in url:
        raise InvalidInput(_("unsupported store URL {url}: use sqlite:///FILE or postgresql://...", url=repr(url)))
    return SQLiteStore(f"sqlite:///{url}", url)
