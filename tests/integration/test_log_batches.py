"""The log read batch after batch (`verify`'s and the in-memory tree's reads): every row once,
in position order, and on a backend that reads ahead, no thread or connection left behind."""

from __future__ import annotations

import threading

import psycopg

from ledger.store import log_batches
from tests.conftest import event_count


def test_the_batches_hold_every_event_once_in_order(world):
    store = world.store
    batches = list(log_batches(store, limit=7))
    positions = [row[0] for rows in batches for row in rows]
    assert positions == list(range(1, event_count(world) + 1))
    assert all(len(rows) == 7 for rows in batches[:-1]) and 0 < len(batches[-1]) <= 7
    assert [r for rows in batches for r in rows] == store.read_log_raw(after=0, limit=10**9)
    assert [row[0] for rows in log_batches(store, after=5, limit=4) for row in rows][0] == 6


def left_open(store_url: str, schema: str | None) -> tuple[int, int]:
    """Threads of this process, and on PostgreSQL the server's sessions whose last statement
    read this test's own schema (other test runs may share the database)."""
    sessions = 0
    if schema:
        with psycopg.connect(store_url.split("?")[0], autocommit=True) as con:
            sessions = con.execute("SELECT count(*) FROM pg_stat_activity WHERE pid <> pg_backend_pid() "
                                   "AND position(%s in query) > 0", [f'"{schema}".']).fetchone()[0]
    return threading.active_count(), sessions


def test_reading_ahead_leaves_no_thread_and_no_connection_behind(world, store_url, backend):
    schema = world.store.schema if backend == "postgresql" else None
    world.verify()  # this thread's own connections, opened before counting
    before = left_open(store_url, schema)
    for stop_after in (None, 1):  # read to the end, or abandoned after the first batch
        batches = log_batches(world.store, limit=3)
        for n, _rows in enumerate(batches, 1):
            if n == stop_after:
                break
        batches.close()
        assert left_open(store_url, schema) == before
    assert world.verify()["ok"] is True
    assert left_open(store_url, schema) == before
