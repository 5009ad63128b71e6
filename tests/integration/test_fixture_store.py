"""A store written by an earlier version opens, verifies and answers the same, forever.

`tests/fixtures/store-v1.db` was written once by tests/fixtures/make_store_v1.py, with the
answers that version gave in `store-v1.json` (asked with the clock at the script's NOW).
Each test works on a copy: the fixture itself is never opened for writing. On PostgreSQL the
same stored events (same positions, same bytes) are copied into a fresh schema first.
Digests may change form in a later version: the digest is compared only while it has the old
form (`lld1:`); everything else must match exactly.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import psycopg
import pytest

from ledger.application import Ledger
from ledger.store import EVENTS_TABLE, KEYS_TABLE
from ledger.store.schema import keys_table_sql
from tests.conftest import PG
from tests.fixtures import make_store_v1 as v1

FIXTURE = Path(v1.__file__).resolve().parent
OLD_DIGEST = "lld1:"


@pytest.fixture(scope="module")
def expected() -> dict:
    return json.loads((FIXTURE / "store-v1.json").read_text(encoding="utf-8"))


def copy_to_postgresql(source: Path, url: str, schema: str) -> None:
    """The fixture's stored events and lead keys, row for row, in a fresh PostgreSQL store."""
    with Ledger(url) as led:
        led.store.init()
    con = sqlite3.connect(source)
    try:
        events = con.execute(f"SELECT rowid, originator_id, originator_version, topic, state FROM {EVENTS_TABLE} "
                             "ORDER BY rowid").fetchall()
        keys = con.execute(f"SELECT kind, value, lead FROM {KEYS_TABLE}").fetchall()
    finally:
        con.close()
    with psycopg.connect(PG, autocommit=False) as pg:
        pg.execute(f'SET search_path TO "{schema}"')
        with pg.cursor() as cur:
            cur.execute(f"DROP TABLE {KEYS_TABLE}")  # the file's key index holds text, as this version's does not
            for statement in keys_table_sql(KEYS_TABLE, "TEXT"):
                cur.execute(statement)
            cur.executemany(f"INSERT INTO {EVENTS_TABLE} (notification_id, originator_id, originator_version, "
                            "topic, state) VALUES (%s, %s, %s, %s, %s)", events)
            cur.executemany(f"INSERT INTO {KEYS_TABLE} (kind, value, lead) VALUES (%s, %s, %s)", keys)
            cur.execute(f"SELECT setval('{EVENTS_TABLE}_notification_id_seq', %s)", [events[-1][0]])


@pytest.fixture
def old_store(backend, store_url, tmp_path) -> str:
    """A copy of the fixture store on the backend under test."""
    copy = tmp_path / "store-v1.db"
    shutil.copyfile(FIXTURE / "store-v1.db", copy)
    if backend == "sqlite":
        return f"sqlite:///{copy}"
    schema = store_url.rsplit("schema=", 1)[1]
    copy_to_postgresql(copy, store_url, schema)
    return store_url


def test_the_fixture_holds_the_events_its_answers_came_from(expected, tmp_path):
    copy = tmp_path / "store-v1.db"
    shutil.copyfile(FIXTURE / "store-v1.db", copy)
    con = sqlite3.connect(copy)
    try:
        count = con.execute(f"SELECT COUNT(*) FROM {EVENTS_TABLE}").fetchone()[0]
    finally:
        con.close()
    assert count == expected["verify"]["events_checked"] == expected["digest"]["events"]


def test_an_old_store_opens_verifies_and_answers_the_same(old_store, expected):
    with Ledger(old_store, clock=lambda: v1.NOW) as led:
        got = v1.answers(led)
        old_digest = expected["digest"]["digest"]
        assert led.verify(old_digest)["ok"] is True  # a digest handed out then still proves the log
    assert got["verify"] == expected["verify"]
    if got["digest"]["digest"].startswith(OLD_DIGEST):
        assert got["digest"] == expected["digest"]
    else:  # a new form of digest: the same log, however it is summed up
        assert (got["digest"]["position"], got["digest"]["events"]) == \
            (expected["digest"]["position"], expected["digest"]["events"])
    for answer in expected:
        if answer not in ("verify", "digest"):
            assert got[answer] == expected[answer], answer


def test_an_old_store_takes_new_events(old_store, expected):
    """Opened by this version, the old store goes on: a claim, a rebuild, and still verified."""
    with Ledger(old_store) as led:
        claimed = led.claim("bob", "L-5")
        assert claimed["position"] == expected["digest"]["position"] + 1
        led.views.rebuild()
        led.views.catch_up()
        assert led.holdings("bob")["count_by_pool"] == {"east": 1}
        assert led.verify()["events_checked"] == expected["digest"]["events"] + 2
