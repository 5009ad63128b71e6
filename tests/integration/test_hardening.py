"""Limits of input and of time, the last admin, and the store's own defences, on both
backends. Every refusal is checked for its exit status, its error code, and that nothing but
the refusal record was written."""

from __future__ import annotations

import json
import signal
import sqlite3
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from ledger.application import Ledger
from ledger.errors import LedgerError
from ledger.store import APPEND_ONLY, EVENTS_TABLE
from tests.conftest import PG, T0, run_cli
from tests.integration.test_ledger import d, fails, top, written
from tests.integration.test_projections import big_store, cli_process, wait_until

LATER = "2030-01-01T00:00:00Z"  # years after the store's clock in these tests
EXITS = {"invalid_input": 2, "last_admin": 1, "claim_limit_reached": 1, "already_exists": 1}


def refused(ledger: Ledger, call, code: str, *, records: str | None = None) -> LedgerError:
    error = fails(ledger, call, code, records=records)
    assert error.exit_code == EXITS[code]
    return error


def future(minutes: float) -> str:
    return (datetime.now(UTC) + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


# --- values of the wrong type through the Python API ----------------------------------------

@pytest.mark.parametrize("call", [
    lambda led: led.add_person("root", "zed", "Zed", "rep", team=5, at=d(1)),
    lambda led: led.add_person("root", "zed", "Zed", "rep", team=["x"], at=d(1)),
    lambda led: led.create_pool("root", "north", 5, at=d(1)),
    lambda led: led.release("alice", "L-1", reason=7, at=d(2)),
    lambda led: led.convert("alice", "L-1", deal=7, at=d(2)),
    lambda led: led.assign("mgr", "L-2", "alice", reason=True, at=d(2)),
], ids=["team int", "team list", "pool name", "release reason", "deal", "assign reason"])
def test_a_value_of_the_wrong_type_is_refused_and_the_store_stays_readable(world, call):
    world.claim("alice", "L-1", at=d(1))
    refused(world, lambda: call(world), "invalid_input")
    assert world.verify()["ok"] and len(list(world.iter_events())) == top(world)  # every event still decodes


def test_add_and_claim_by_one_who_may_add_but_not_claim_adds_nothing(world):
    """The claim's permission is checked before the lead is added: an admin adds nothing."""
    before = top(world)
    with pytest.raises(LedgerError) as caught:
        world.add_lead("root", "N-1", "east", company="New Co", claim=True, at=d(1))
    assert caught.value.code == "permission_denied" and top(world) == before


@pytest.mark.parametrize("call", [
    lambda led: led.digest(upto=-1), lambda led: led.digest(upto=1.5), lambda led: led.receipt("x"),
    lambda led: led.receipt(None), lambda led: list(led.iter_events(since=-1)),
    lambda led: list(led.iter_events(since=2**63)), lambda led: list(led.iter_events(since=None)),
    lambda led: list(led.iter_events(since=b"1")), lambda led: list(led.iter_events(batch=0)),
    lambda led: led.export("events", since=-1),
], ids=["digest -1", "digest 1.5", "receipt x", "receipt None", "since -1", "since 2^63", "since None",
        "since bytes", "batch 0", "export since -1"])
def test_a_position_outside_the_limits_is_invalid_input_through_the_api(world, call):
    refused(world, lambda: call(world), "invalid_input")


@pytest.mark.parametrize("call", [
    lambda led: led.add_person("root", "p1", None, "rep", at=d(1)),
    lambda led: led.add_person("root", "p1", b"Zed", "rep", at=d(1)),
    lambda led: led.follow_up("alice", "L-1", 5, at=d(2)),
    lambda led: led.reassign("mgr", "L-1", "bob", 5, at=d(2)),
    lambda led: led.open_dispute("bob", "L-1", 5, at=d(2)),
    lambda led: led.erase_lead("root", "L-1", None),
    lambda led: led.grant("root", "east", "dave", at=d(2)),
    lambda led: led.grant("root", "east", 5, at=d(2)),
    lambda led: led.add_lead("mgr", "N-1", "east", phone=True, at=d(2)),
    lambda led: led.dispute_show(None),
    lambda led: led.verify(digest=5),
], ids=["name None", "name bytes", "note int", "reason int", "dispute reason", "erase reason", "people str",
        "people int", "phone bool", "dispute id", "digest int"])
def test_an_argument_of_another_kind_is_invalid_input_through_the_api(world, call):
    world.claim("alice", "L-1", at=d(1))
    refused(world, lambda: call(world), "invalid_input")


def test_import_rows_that_are_not_line_field_pairs_are_rejected_rows(world):
    report = world.import_leads("mgr", "east", [(2, None), {"id": "I-1"}, (4, {"id": "I-2"})], at=d(2))
    assert report["imported"] == 1
    assert [(r["line"], r["code"]) for r in report["rejected"]] == [(2, "malformed_row"), (2, "malformed_row")]
    refused(world, lambda: world.import_leads("mgr", "east", None, at=d(2)), "invalid_input")


def test_a_store_url_that_is_not_text_is_invalid_input():
    with pytest.raises(LedgerError) as caught:
        Ledger(12)
    assert caught.value.code == "invalid_input"


# --- ids ------------------------------------------------------------------------------------

BAD_IDS = ["", " x", "x ", "a:b", "x" * 129, "ab\u202ecd", "a\u200bb", "tab\there"]


@pytest.mark.parametrize("bad", BAD_IDS)
def test_bad_ids_are_refused_where_they_are_made(world, bad):
    refused(world, lambda: world.add_person("root", bad, "Name", "rep", at=d(1)), "invalid_input")
    refused(world, lambda: world.create_pool("root", bad, "Name", at=d(1)), "invalid_input")
    refused(world, lambda: world.add_lead("mgr", bad, "east", company="Acme Bad", at=d(1)), "invalid_input")


def test_a_128_character_id_is_fine_and_a_message_quotes_40(world):
    world.add_person("root", "p" * 128, "Long", "rep", at=d(1))
    error = refused(world, lambda: world.add_lead("mgr", "q" * 300, "east", at=d(1)), "invalid_input")
    assert "q" * 41 not in error.message and "q" * 40 in error.message


def test_init_refuses_a_bad_admin_id_and_makes_no_store(store_url):
    with Ledger(store_url) as led:
        with pytest.raises(LedgerError) as caught:
            led.init("ro:ot", "Root")
        assert (caught.value.code, caught.value.exit_code) == ("invalid_input", 2)
    run = run_cli(store_url, "person", "list")
    assert run.code == 5, run  # still no store


# --- rules ----------------------------------------------------------------------------------

def test_claim_limit_zero_is_valid_and_closes_the_pool_to_claims(world):
    world.change_rules("root", "east", claim_limit=0, at=d(1))
    refused(world, lambda: world.claim("alice", "L-1", at=d(2)), "claim_limit_reached", records="ClaimRefused")
    world.change_rules("root", "east", claim_limit=1_000_000, daily_claim_limit=1_000_000, at=d(3))
    assert world.claim("alice", "L-1", at=d(4))["owner"] == "alice"


@pytest.mark.parametrize("rules", [{"claim_limit": -1}, {"claim_limit": 1_000_001}, {"daily_claim_limit": "1e3"},
                                   {"idle_limit": "3651d"}, {"cooldown": "30s"}, {"hold_limit": "-1d"}])
def test_rules_outside_the_limits_are_refused(world, rules):
    refused(world, lambda: world.change_rules("root", "east", at=d(1), **rules), "invalid_input")
    refused(world, lambda: world.create_pool("root", "north", "North", at=d(1), **rules), "invalid_input")


def test_absurd_but_valid_rules_break_nothing_anywhere(world, store_url, tmp_path):
    """One pool's rules never make another pool's commands (or any read) fail."""
    longest = {"claim_limit": 1_000_000, "daily_claim_limit": 1_000_000, "idle_limit": "3650d",
               "hold_limit": "3650d", "cooldown": "3650d", "warn_before": "3650d"}
    world.create_pool("root", "wild", "Wild", at=d(1), **longest)
    world.grant("root", "wild", ["alice", "bob"], at=d(1))
    world.add_lead("root", "W-1", "wild", company="Wild One", at=d(1))
    world.add_lead("root", "W-2", "wild", company="Wild Two", at=d(1))
    world.claim("alice", "W-1", at=d(2))
    world.claim("alice", "L-1", at=d(2))
    world.claim("bob", "W-2", at=d(2))
    world.release("bob", "W-2", at=d(3))
    assert {h["lead"] for h in world.holdings("alice")["leads"]} >= {"W-1", "L-1"}
    world.sweep("root", dry_run=True, now="9999-12-31T00:00:00Z")
    world.sweep("root")
    for model in ("events", "holdings", "pool_leads", "ownership_intervals"):
        run = run_cli(store_url, "export", model, "--out", str(tmp_path / f"{model}.jsonl"))
        assert run.code == 0, run
    run = run_cli(store_url, "project", "--rebuild")
    assert run.code == 0 and run.json["rebuilt"] is True, run
    assert world.owner("W-1")["owner"] == "alice"
    assert world.claim("carol", "L-2")["owner"] == "carol"  # the other pool works on, now


# --- time -----------------------------------------------------------------------------------

def test_an_at_in_the_future_is_refused_everywhere(world):
    world.claim("alice", "L-1", at=d(1))
    world.claim("alice", "L-2", at=d(1))
    calls = [
        lambda: world.add_person("root", "zed", "Zed", "rep", at=LATER),
        lambda: world.create_pool("root", "north", "North", at=LATER),
        lambda: world.change_rules("root", "east", claim_limit=3, at=LATER),
        lambda: world.grant("root", "east", ["dave"], at=LATER),
        lambda: world.revoke("root", "east", ["bob"], at=LATER),
        lambda: world.add_lead("mgr", "L-9", "east", company="Nine", at=LATER),
        lambda: world.claim("bob", "L-3", at=LATER),
        lambda: world.release("alice", "L-1", at=LATER),
        lambda: world.follow_up("alice", "L-1", "called", at=LATER),
        lambda: world.convert("alice", "L-1", at=LATER),
        lambda: world.assign("mgr", "L-3", "bob", at=LATER),
        lambda: world.reassign("mgr", "L-1", "bob", reason="cover", at=LATER),
        lambda: world.move("mgr", "L-3", "west", at=LATER),
        lambda: world.open_dispute("bob", "L-1", "mine", at=LATER),
        lambda: world.deactivate_person("root", "carol", at=LATER),
        lambda: world.sweep("root", now=LATER),
    ]
    for call in calls:
        error = refused(world, call, "invalid_input")
        assert "future" in error.message
    world.sweep("root", now=LATER, dry_run=True)  # a dry run may look ahead


def test_a_few_minutes_ahead_is_within_the_slack(world):
    world.claim("alice", "L-1", at=future(4))
    refused(world, lambda: world.follow_up("alice", "L-1", "called", at=future(7)), "invalid_input")


def test_a_refused_future_follow_up_leaves_the_lead_usable(world, store_url):
    world.claim("alice", "L-1", at=d(1))
    before = top(world)
    run = run_cli(store_url, "follow-up", "L-1", "--note", "call", "--at", "2030-05-01T09:00:00Z", actor="alice")
    assert run.code == 2 and run.json["error"]["code"] == "invalid_input", run
    assert written(world, before) == []
    assert run_cli(store_url, "follow-up", "L-1", "--note", "call", actor="alice").code == 0
    assert run_cli(store_url, "release", "L-1", actor="alice").code == 0


def test_a_default_time_is_never_earlier_than_the_leads_latest_event(world):
    claimed = world.claim("alice", "L-1", at=future(4))  # within the slack: a clock a little ahead
    done = world.follow_up("alice", "L-1", "called")
    assert done["occurred_at"] >= claimed["occurred_at"]


def test_nothing_happens_before_its_actor_or_pool_existed(world):
    world.add_person("root", "late", "Late", "manager", at=d(5))
    world.create_pool("root", "north", "North", at=d(5))
    world.grant("root", "north", ["late", "alice"], at=d(5))
    refused(world, lambda: world.grant("root", "east", ["late"], at=d(4)), "invalid_input")
    refused(world, lambda: world.add_lead("root", "L-10", "north", at=d(4)), "invalid_input")
    refused(world, lambda: world.change_rules("root", "north", claim_limit=3, at=d(4)), "invalid_input")
    refused(world, lambda: world.revoke("root", "north", ["alice"], at=d(4)), "invalid_input")
    refused(world, lambda: world.move("mgr", "L-1", "north", at=d(4)), "invalid_input")
    world.grant("root", "east", ["late"], at=d(6))
    refused(world, lambda: world.add_lead("late", "L-11", "east", at=d(4)), "invalid_input")
    refused(world, lambda: world.open_dispute("late", "L-2", "mine", at=d(4)), "invalid_input")
    refused(world, lambda: world.deactivate_person("root", "late", at=d(4)), "invalid_input")
    world.move("root", "L-1", "north", at=d(6))
    refused(world, lambda: world.claim("alice", "L-1", at=d(5)), "invalid_input")


def test_init_refuses_a_future_time(store_url):
    with Ledger(store_url) as led:
        with pytest.raises(LedgerError) as caught:
            led.init("root", "Root", at=LATER)
        assert (caught.value.code, caught.value.exit_code) == ("invalid_input", 2)


# --- the last admin -------------------------------------------------------------------------

def test_the_last_active_admin_cannot_be_deactivated(world):
    refused(world, lambda: world.deactivate_person("root", "root", at=d(1)), "last_admin")
    world.add_person("root", "root2", "Second", "admin", at=d(1))
    world.deactivate_person("root2", "root", at=d(2))
    refused(world, lambda: world.deactivate_person("root2", "root2", at=d(3)), "last_admin")
    world.deactivate_person("root2", "mgr", at=d(3))  # other people still can be


def test_last_admin_through_the_cli(world, store_url):
    before = top(world)
    run = run_cli(store_url, "person", "deactivate", "root", actor="root")
    assert run.code == 1 and run.json["error"]["code"] == "last_admin", run
    assert written(world, before) == []


# --- storage --------------------------------------------------------------------------------

def test_sqlite_refuses_changes_of_stored_events(ledger, backend):
    if backend != "sqlite":
        pytest.skip("PostgreSQL: see test_append_only")
    con = sqlite3.connect(ledger.store.path)
    try:
        for sql in (f"UPDATE {EVENTS_TABLE} SET topic = 'x'", f"DELETE FROM {EVENTS_TABLE}",
                    f"DELETE FROM {EVENTS_TABLE} WHERE rowid = 1"):
            with pytest.raises(sqlite3.DatabaseError, match="append-only"):
                con.execute(sql)
        assert con.execute(f"SELECT COUNT(*) FROM {EVENTS_TABLE}").fetchone()[0] == 1
    finally:
        con.close()


def test_an_older_sqlite_store_gets_the_triggers_when_written(store_url, backend):
    if backend != "sqlite":
        pytest.skip("SQLite triggers")
    with Ledger(store_url) as led:
        led.init("root", "Root", at=T0)
    con = sqlite3.connect(store_url.removeprefix("sqlite:///"))
    for op in ("update", "delete"):
        con.execute(f"DROP TRIGGER {APPEND_ONLY}_{op}")
    con.commit()
    with Ledger(store_url) as led:
        led.add_person("root", "alice", "Alice", "rep", at=T0)
    triggers = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")}
    assert {f"{APPEND_ONLY}_update", f"{APPEND_ONLY}_delete"} <= triggers
    con.close()


def _foreign(store_url: str, backend: str, tmp_path) -> str:
    """The store_url's place, holding another application's table."""
    if backend == "sqlite":
        con = sqlite3.connect(store_url.removeprefix("sqlite:///"))
        con.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
        con.execute("INSERT INTO customers (name) VALUES ('Acme')")
        con.commit()
        con.close()
    else:
        schema = store_url.rsplit("schema=", 1)[1]
        with psycopg.connect(PG, autocommit=True) as con:
            con.execute(f'CREATE SCHEMA "{schema}"')
            con.execute(f'CREATE TABLE "{schema}".customers (id INT, name TEXT)')
    return store_url


def _snapshot(store_url: str, backend: str):
    if backend == "sqlite":
        path = store_url.removeprefix("sqlite:///")
        return open(path, "rb").read()
    schema = store_url.rsplit("schema=", 1)[1]
    with psycopg.connect(PG) as con:
        return con.execute("SELECT table_schema, table_name FROM information_schema.tables "
                           "WHERE table_schema IN (%s, %s) ORDER BY 1, 2", [schema, f"{schema}_read"]).fetchall()


def test_init_refuses_another_applications_database(store_url, backend, tmp_path):
    _foreign(store_url, backend, tmp_path)
    before = _snapshot(store_url, backend)
    run = run_cli(store_url, "init", "--admin", "root", "--name", "Root")
    assert run.code == 2 and run.json["error"]["code"] == "invalid_input", run
    assert "customers" in run.json["error"]["message"]
    assert _snapshot(store_url, backend) == before


def test_init_refuses_a_file_that_is_not_a_database(tmp_path):
    path = tmp_path / "notes.db"
    path.write_bytes(b"These are my notes, not a database.\n" * 200)
    before = path.read_bytes()
    run = run_cli(f"sqlite:///{path}", "init", "--admin", "root", "--name", "Root")
    assert run.code == 2 and run.json["error"]["code"] == "invalid_input", run
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.db"]


def test_init_again_on_a_ledger_is_still_fine(ledger, store_url):
    run = run_cli(store_url, "init", "--admin", "root", "--name", "Root")
    assert run.code == 0 and run.json["created"] is False, run


def test_demo_never_replaces_a_store_holding_events_it_did_not_write(store_url, backend):
    first = run_cli(store_url, "demo")
    assert first.code == 0, first
    events = first.json["events"]
    if backend == "sqlite":  # the demo's own file is replaced by a new demo
        again = run_cli(store_url, "demo")
        assert again.code == 0 and again.json["events"] == events, again
    assert run_cli(store_url, "claim", "L-1020", actor="bob").code == 0
    with Ledger(store_url) as led:
        after = led.store.max_position()
    assert after > events
    run = run_cli(store_url, "demo")
    assert run.code == 2 and run.json["error"]["code"] == "invalid_input", run
    with Ledger(store_url) as led:
        assert led.store.max_position() == after


def test_demo_refuses_a_real_ledger_whose_admin_shares_the_demos_name(store_url):
    with Ledger(store_url) as led:
        led.init("root", "Zhou Admin", at=T0)
    run = run_cli(store_url, "demo")
    assert run.code == 2 and run.json["error"]["code"] == "invalid_input", run
    with Ledger(store_url) as led:
        assert json.loads(json.dumps(led.store.max_position())) == 1


def test_an_interrupted_rebuild_says_how_to_resume_it(store_url):
    """SIGINT during `project --rebuild`: exit 130, no traceback, and stderr names the command
    that resumes it; that command then does."""
    big_store(store_url, leads=12000)
    with Ledger(store_url) as led:
        led.views.catch_up()
        proc = cli_process(store_url, "project", "--rebuild")
        wait_until(lambda: (led.views.pending_rebuild() or 0) >= 500 or proc.poll() is not None,
                   "the rebuild to get going")
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
        assert proc.returncode == 130, (stdout, stderr)
        assert "Traceback" not in stderr and "`leadledger project` resumes it" in stderr
        assert led.views.pending_rebuild() is not None
        resumed = cli_process(store_url, "project")
        stdout, stderr = resumed.communicate(timeout=300)
        assert resumed.returncode == 0, stderr
        assert json.loads(stdout)["resumed_rebuild"] is True
        assert led.views.pending_rebuild() is None
