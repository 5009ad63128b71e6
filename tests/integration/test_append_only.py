"""PostgreSQL: stored events cannot be changed, in the database itself, and the roles work.

Real roles are created in the test database (`ll_app_…`, `ll_read_…`) with the grants
docs/postgres-roles.md recommends, and dropped afterwards. The store's owner here is the
test server's superuser, which runs `init`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from ledger.application import Ledger
from ledger.store import APPEND_ONLY, EVENTS_TABLE
from tests.conftest import PG, T0, event_count

pytestmark = pytest.mark.skipif(not PG, reason="LEADLEDGER_TEST_PG is not set")

CHANGES = [
    "UPDATE {events} SET topic = 'x'",
    "UPDATE {events} SET state = state WHERE false",
    "DELETE FROM {events}",
    "DELETE FROM {events} WHERE notification_id = (SELECT MAX(notification_id) FROM {events})",
    "TRUNCATE {events}",
    "INSERT INTO {events} SELECT originator_id, originator_version, topic, state FROM {events} "
    "ON CONFLICT (originator_id, originator_version) DO UPDATE SET state = excluded.state",
]


def as_role(store_url: str, role: str) -> str:
    parts = urlsplit(store_url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{role}@{host}"))


def conninfo(role: str) -> str:
    parts = urlsplit(PG)
    return urlunsplit(parts._replace(netloc=f"{role}@{parts.netloc.rsplit('@', 1)[-1]}"))


@pytest.fixture
def pg_ledger(store_url: str, backend: str) -> Iterator[Ledger]:
    if backend != "postgresql":
        pytest.skip("PostgreSQL only: SQLite has no roles")
    with Ledger(store_url) as led:
        led.init("root", "Root Admin", at=T0)
        led.add_person("root", "alice", "Alice", "rep", at=T0)
        led.add_person("root", "mgr", "Manager", "manager", at=T0)
        led.create_pool("root", "east", "East", at=T0)
        led.grant("root", "east", ["alice", "mgr"], at=T0)
        led.add_lead("mgr", "L-1", "east", at=T0)
        yield led


@pytest.fixture
def roles(pg_ledger: Ledger) -> Iterator[dict[str, str]]:
    """An application role and a read-only role, granted as the docs recommend."""
    suffix = uuid.uuid4().hex[:10]
    app, reader = f"ll_app_{suffix}", f"ll_read_{suffix}"
    with psycopg.connect(PG, autocommit=True) as con:
        con.execute(f'CREATE ROLE "{app}" LOGIN')
        con.execute(f'CREATE ROLE "{reader}" LOGIN')
        for statement in pg_ledger.store.role_grants(app, reader):
            con.execute(statement)
    yield {"app": app, "reader": reader}
    with psycopg.connect(PG, autocommit=True) as con:
        for role in (app, reader):
            con.execute(f'DROP OWNED BY "{role}"')
            con.execute(f'DROP ROLE "{role}"')


def events(ledger: Ledger) -> str:
    return f'"{ledger.store.schema}".{EVENTS_TABLE}'


def refused(role: str | None, sql: str) -> psycopg.Error:
    with psycopg.connect(conninfo(role) if role else PG, autocommit=True) as con:
        with pytest.raises(psycopg.Error) as caught:
            con.execute(sql)
    return caught.value


@pytest.mark.parametrize("change", CHANGES)
def test_the_app_role_cannot_change_stored_events(pg_ledger, roles, change):
    before = [(s.position, s.hash) for s in pg_ledger.store.read_log(limit=10**6)]
    error = refused(roles["app"], change.format(events=events(pg_ledger)))
    assert isinstance(error, psycopg.errors.InsufficientPrivilege)
    assert [(s.position, s.hash) for s in pg_ledger.store.read_log(limit=10**6)] == before
    assert pg_ledger.verify()["ok"] is True


@pytest.mark.parametrize("change", CHANGES)
def test_even_a_role_granted_every_right_is_refused_by_the_trigger(pg_ledger, roles, change):
    """The grants are one wall; the trigger is another, for roles granted too much (and the owner)."""
    with psycopg.connect(PG, autocommit=True) as con:
        con.execute(f'GRANT ALL ON {events(pg_ledger)} TO "{roles["app"]}"')
    before = event_count(pg_ledger)
    for role in (roles["app"], None):  # None: the owner (here a superuser) without tricks
        error = refused(role, change.format(events=events(pg_ledger)))
        assert "append-only" in str(error)
    assert event_count(pg_ledger) == before


def test_init_is_idempotent_and_keeps_one_trigger(pg_ledger, store_url):
    pg_ledger.init("root", "Root Admin")
    with Ledger(store_url) as again:
        assert again.init("root", "Root Admin")["created"] is False
    with psycopg.connect(PG) as con:
        count = con.execute(
            "SELECT COUNT(*) FROM pg_trigger WHERE tgrelid = %s::regclass AND tgname = %s",
            [events(pg_ledger), APPEND_ONLY]).fetchone()[0]
    assert count == 1


def test_the_app_role_runs_the_ledger(pg_ledger, roles, store_url):
    """Appends (advisory lock, not the table lock), the duplicate index, read models, verify."""
    with Ledger(as_role(store_url, roles["app"])) as app:
        added = app.add_lead("mgr", "L-2", "east", phone="13800000002", at=T0)
        claimed = app.claim("alice", "L-2", at=T0)
        assert claimed["owner"] == "alice" and claimed["position"] > added["position"]
        holdings = app.holdings("alice")
        assert [h["lead"] for h in holdings["leads"]] == ["L-2"]
        assert app.pool_show("east")["pooled"] == ["L-1"]
        assert app.verify()["ok"] is True
        assert app.digest()["position"] == claimed["position"] + 1


def test_the_app_role_imports_leads(pg_ledger, roles, store_url):
    """A bulk import (COPY of events and keys under the advisory lock) needs INSERT and SELECT only."""
    rows = [(i + 2, {"id": f"I-{i}", "phone": f"1370000{i:04d}", "email": f"i{i}@x.cn"}) for i in range(30)]
    rows.append((32, {"id": "I-dup", "phone": "+86 137 0000 0007"}))
    with Ledger(as_role(store_url, roles["app"])) as app:
        report = app.import_leads("mgr", "east", rows, at=T0, batch=10)
        assert report["imported"] == 30
        assert [(d["lead"], d["duplicate_of"]) for d in report["duplicates"]] == [("I-dup", "I-7")]
        again = app.import_leads("mgr", "east", rows, at=T0)
        assert (again["imported"], again["skipped_existing"], len(again["duplicates"])) == (0, 30, 1)
        assert app.verify()["ok"] is True
    assert pg_ledger.lead_show("I-29")["attributes"]["email"] == "i29@x.cn"


def test_concurrent_app_writers_get_whole_batches_of_positions(pg_ledger, roles, store_url):
    """Each append's events take consecutive positions: no writer's events interleave."""
    url = as_role(store_url, roles["app"])

    def work(n: int) -> list[dict]:
        out = []
        with Ledger(url) as app:
            for i in range(6):
                out.append(app.add_lead("mgr", f"C-{n}-{i}", "east", claim=True, at=T0)["claim"])
        return out

    pg_ledger.grant("root", "east", ["alice"], at=T0)
    pg_ledger.change_rules("root", "east", at=T0, claim_limit=100)
    with ThreadPoolExecutor(4) as pool:
        claims = [c for batch in pool.map(work, range(4)) for c in batch]
    by_position = {s.position: s for s in pg_ledger.store.read_log(limit=10**6)}
    for claim in claims:
        claimed, holdings = by_position[claim["position"]], by_position[claim["position"] + 1]
        assert type(claimed.event).__name__ == "LeadClaimed"
        assert type(holdings.event).__name__ == "HoldingsChanged" and holdings.event.lead == claim["lead"]
    assert pg_ledger.verify()["ok"] is True


def test_the_reader_role_reads_read_models_only(pg_ledger, roles):
    pg_ledger.project()
    read = pg_ledger.store.table("pool_leads")
    with psycopg.connect(conninfo(roles["reader"])) as con:
        assert con.execute(f"SELECT lead FROM {read}").fetchall() == [("L-1",)]
    assert isinstance(refused(roles["reader"], f"DELETE FROM {read}"), psycopg.errors.InsufficientPrivilege)
    assert isinstance(refused(roles["reader"], f"SELECT * FROM {events(pg_ledger)}"),
                      psycopg.errors.InsufficientPrivilege)


def test_the_app_role_keeps_its_grants_after_the_owner_rebuilds_the_read_models(pg_ledger, roles, store_url):
    pg_ledger.project(rebuild=True)
    with Ledger(as_role(store_url, roles["app"])) as app:
        app.claim("alice", "L-1", at=T0)
        assert [h["lead"] for h in app.holdings("alice")["leads"]] == ["L-1"]
    with psycopg.connect(conninfo(roles["reader"])) as con:
        assert con.execute(f"SELECT COUNT(*) FROM {pg_ledger.store.table('holdings')}").fetchone()[0] == 1
