"""The only place that knows SQLite from PostgreSQL.

Events are appended through eventsourcing's application recorders (SQLite, or PostgreSQL
serialised by an advisory lock, which gives gap-free, non-interleaved positions). Our own
append adds one thing inside the append transaction: the lead-key index used for the
duplicate check, checked and written under the same lock as the events themselves.

`base.py` holds the interface and what both backends share, `checks.py` what an append
checks under its lock; `sqlite.py` and `postgres.py` (with its recorder, `recorder.py`)
override what differs, down to the read models' bulk reads and writes (`readmodels.Db`);
`schema.py` names the tables and holds PostgreSQL's DDL and grants; `urls.py` picks the
backend from a store URL; `failures.py` names the library's errors without loading it. Code elsewhere asks a store what
it can do, never which one it is.
"""

from typing import Any

from ledger.store.base import Store, log_batches
from ledger.store.readmodels import Db
from ledger.store.records import Conflict, DuplicateKeys, LeadKey, NewEvent, Row, Stored
from ledger.store.schema import APPEND_ONLY, EVENTS_TABLE, KEYS_TABLE
from ledger.store.urls import DEFAULT_STORE, open_store

__all__ = [
    "APPEND_ONLY", "DEFAULT_STORE", "EVENTS_TABLE", "KEYS_TABLE", "Conflict", "Db", "DuplicateKeys",
    "LeadKey", "LedgerPostgresRecorder", "NewEvent", "PostgresStore", "Row", "SQLiteStore", "Store",
    "Stored", "append_lock_key", "log_batches", "open_store",
]


def __getattr__(name: str) -> Any:
    """The backends load on first use: a SQLite command never imports psycopg (a quarter of a
    second of start-up), a PostgreSQL one never the SQLite recorder."""
    if name == "PostgresStore":
        from ledger.store.postgres import PostgresStore  # noqa: PLC0415
        return PostgresStore
    if name in ("LedgerPostgresRecorder", "append_lock_key"):
        from ledger.store import recorder  # noqa: PLC0415
        return getattr(recorder, name)
    if name == "SQLiteStore":
        from ledger.store.sqlite import SQLiteStore  # noqa: PLC0415
        return SQLiteStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
