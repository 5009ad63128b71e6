"""After a large import the planner still reads a stream by its index: on PostgreSQL the import
brings the statistics of the tables it grew up to date (autovacuum may be off, or not come
round yet); SQLite's planner takes the index without any."""

from __future__ import annotations

import sqlite3

import psycopg

from ledger.store import EVENTS_TABLE
from tests.conftest import T0, event_count

ROWS = 3000


def stream_plan(store_url: str, schema: str | None) -> str:
    """How the server would read one lead's events."""
    if schema is None:
        con = sqlite3.connect(store_url[len("sqlite:///"):])
        try:
            found = con.execute(f"EXPLAIN QUERY PLAN SELECT * FROM {EVENTS_TABLE} WHERE originator_id = ? "
                                "ORDER BY originator_version", ["lead:I-5"]).fetchall()
        finally:
            con.close()
        return " ".join(row[-1] for row in found)
    with psycopg.connect(store_url.split("?")[0], autocommit=True) as con:
        con.execute("SET max_parallel_workers_per_gather = 0")  # as the ledger's own connections
        found = con.execute(f'EXPLAIN SELECT * FROM "{schema}".{EVENTS_TABLE} WHERE originator_id = %s '
                            "ORDER BY originator_version", ["lead:I-5"]).fetchall()
    return " ".join(row[0] for row in found)


def statistics(store_url: str, schema: str) -> float:
    """The planner's row count of the events table (-1: never analysed)."""
    with psycopg.connect(store_url.split("?")[0], autocommit=True) as con:
        return con.execute("SELECT reltuples FROM pg_class WHERE oid = to_regclass(%s)",
                           [f'"{schema}".{EVENTS_TABLE}']).fetchone()[0]


def test_an_import_leaves_the_planner_reading_a_stream_by_its_index(world, store_url, backend):
    schema = world.store.schema if backend == "postgresql" else None
    rows = ((i + 2, {"id": f"I-{i}", "phone": f"1370{i:07d}"}) for i in range(ROWS))
    dry = world.import_leads("mgr", "east", rows, at=T0, dry_run=True)
    assert dry["imported"] == ROWS
    if schema:
        assert statistics(store_url, schema) == -1  # a dry run writes nothing, statistics neither
    rows = ((i + 2, {"id": f"I-{i}", "phone": f"1370{i:07d}"}) for i in range(ROWS))
    assert world.import_leads("mgr", "east", rows, at=T0)["imported"] == ROWS
    plan = stream_plan(store_url, schema)
    if schema:
        assert statistics(store_url, schema) == event_count(world)
        assert "Index Scan" in plan and "Sort" not in plan, plan
    else:
        assert "USING INDEX" in plan or "USING PRIMARY KEY" in plan, plan
