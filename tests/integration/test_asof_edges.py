"""As of any moment, whatever the log holds: the ends of the calendar, and history stated
before the pool or the rep it names existed (events are forever, whatever wrote them)."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from ledger import events as ev
from ledger.application import Ledger
from ledger.codec import GENESIS
from ledger.state import lead_stream, pool_stream
from ledger.store import NewEvent
from tests.conftest import T0, run_cli

MODELS = ["pool_leads", "holdings", "ownership_intervals", "follow_ups", "disputes", "people", "pools",
          "pool_members"]
FIRST, LAST = "0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999999Z"  # the ends the time parser accepts
EARLY = "2025-07-01T00:00:00Z"  # before east was created and its reps registered (T0)


def when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def append_held(ledger: Ledger, lead: str, rep: str, at: str, pool: str = "east") -> None:
    """Lead `lead` added to `pool` and assigned to `rep` at `at`, appended as they are stored,
    whatever a command would check (the history an old import could write)."""
    stream, t = lead_stream(lead), when(at)
    ledger.store.append([
        NewEvent(stream, 1, GENESIS, ev.LeadAdded(occurred_at=t, actor="root", lead=lead, pool=pool,
                                                  attributes=ev.Attributes(company=lead))),
        NewEvent(stream, 2, GENESIS, ev.LeadAssigned(occurred_at=t, actor="root", lead=lead, pool=pool, rep=rep,
                                                     reason="import", rules_version=1)),
    ])


def as_of_commands(at: str, lead: str, rep: str, pool: str) -> list[list[str]]:
    """Every read command that answers as of a business time."""
    return [["owner", lead, "--at", at], ["lead", "show", lead, "--at", at], ["holdings", rep, "--at", at],
            ["pool", "show", pool, "--at", at], *(["export", m, "--at", at] for m in MODELS)]


def answered(store_url: str, args: list[str]) -> dict | list[dict]:
    """The JSON answer of a command that must succeed (the text form too): export's rows."""
    text = run_cli(store_url, *args, as_json=False)
    assert (text.code, text.stderr) == (0, ""), args
    r = run_cli(store_url, *args)
    assert r.code == 0, (args, r.stdout)
    return [json.loads(line) for line in r.stdout.splitlines()] if args[0] == "export" else r.json


# --- history stated before its pool and its rep ------------------------------------------------

@pytest.fixture
def early(world: Ledger) -> Ledger:
    """`world`, with E-1 (2025-06-01) and E-2 (1970) held by alice since before east was created
    and before alice was registered, and a rule change and a grant stated before east was
    created; then alice claims L-1 the ordinary way."""
    append_held(world, "E-1", "alice", "2025-06-01T00:00:00Z")
    append_held(world, "E-2", "alice", "1970-01-01T00:00:00Z")
    stream = world.store.read_stream(pool_stream("east"))
    rules = ev.Rules(claim_limit=2, idle_limit=3 * 86400)
    world.store.append([
        NewEvent(pool_stream("east"), len(stream) + 1, stream[-1].hash, ev.PoolRulesChanged(
            occurred_at=when("2025-01-01T00:00:00Z"), actor="root", pool="east", rules=rules, rules_version=2)),
        NewEvent(pool_stream("east"), len(stream) + 2, GENESIS, ev.MembersGranted(
            occurred_at=when("2025-01-01T00:00:00Z"), actor="root", pool="east", people=["dave"])),
    ])
    world.claim("alice", "L-1", at="2026-03-10T09:00:00Z")
    return world


@pytest.mark.parametrize("at", [FIRST, "1969-12-31T23:59:59Z", "1970-01-01T00:00:00Z", "1980-01-01T00:00:00Z",
                                "2025-01-01T00:00:00Z", EARLY, T0, "2026-03-20T00:00:00Z", LAST])
def test_history_before_its_pool_answers_as_of_any_moment(early, store_url, at):
    for args in as_of_commands(at, "E-2", "alice", "east"):
        answered(store_url, args)


def test_leads_held_before_their_pool_existed_show_as_held_without_a_deadline(early, store_url):
    holdings = answered(store_url, ["holdings", "alice", "--at", EARLY])
    assert [(x["lead"], x["since"], x["recycle_at"], x["overdue"]) for x in holdings["leads"]] == [
        ("E-1", "2025-06-01T00:00:00Z", None, False), ("E-2", "1970-01-01T00:00:00Z", None, False)]
    assert (holdings["count_by_pool"], holdings["active"]) == ({"east": 2}, False)  # not registered yet
    exported = answered(store_url, ["export", "holdings", "--at", EARLY])
    assert [(r["lead"], r["rep"], r["recycle_at"]) for r in exported] == [
        ("E-1", "alice", None), ("E-2", "alice", None)]
    pool = answered(store_url, ["pool", "show", "east", "--at", EARLY])
    assert (pool["exists"], pool["held_count"], pool["pooled"]) == (False, 2, [])
    assert answered(store_url, ["lead", "show", "E-1", "--at", EARLY])["recycle_at"] is None
    assert answered(store_url, ["owner", "E-2", "--at", "1980-01-01T00:00:00Z"])["owner"] == "alice"  # as stored
    assert answered(store_url, ["holdings", "alice", "--at", "1969-12-31T23:59:59Z"])["leads"] == []
    # once east exists its rules give the deadlines, as now
    then = {x["lead"]: x for x in answered(store_url, ["holdings", "alice", "--at", "2026-03-20T00:00:00Z"])["leads"]}
    now = {x["lead"]: x for x in answered(store_url, ["holdings", "alice"])["leads"]}
    assert sorted(then) == sorted(now) == ["E-1", "E-2", "L-1"]
    assert all(then[lead]["recycle_at"] == now[lead]["recycle_at"] is not None for lead in then)


def test_report_over_history_before_its_pool(early, store_url):
    r = answered(store_url, ["report", "--from", FIRST, "--to", EARLY])
    assert [(x["rep"], x["held_at_end"], x["assigned_in"]) for x in r["reps"] if x["rep"] == "alice"] == [
        ("alice", 2, 2)]


# --- the ends of the calendar --------------------------------------------------------------

@pytest.mark.parametrize("at", [FIRST, "0001-01-01T00:00:00.000001Z", "9999-12-31T23:59:59Z", LAST])
def test_every_as_of_command_answers_at_the_ends_of_the_calendar(ledger, store_url, at):
    """On a store with no leads yet, then on one where wang holds L-1."""
    ledger.add_person("root", "wang", "Wang", "rep", at=T0)
    ledger.create_pool("root", "east", "East", at=T0)
    first = "0001" in at
    assert answered(store_url, ["holdings", "wang", "--at", at])["leads"] == []
    pool = answered(store_url, ["pool", "show", "east", "--at", at])
    assert (pool.get("exists", True), pool["pooled"], pool["held_count"]) == (not first, [], 0)
    for model in MODELS:
        rows = answered(store_url, ["export", model, "--at", at])
        assert rows == ([] if first else answered(store_url, ["export", model])), model
    ledger.grant("root", "east", ["wang"], at=T0)
    ledger.add_lead("root", "L-1", "east", company="Acme", at=T0)
    ledger.claim("wang", "L-1", at=T0)
    owner = answered(store_url, ["owner", "L-1", "--at", at])
    assert owner["owner"] == (None if first else "wang")
    assert answered(store_url, ["lead", "show", "L-1", "--at", at])["status"] == (None if first else "held")
    holdings = answered(store_url, ["holdings", "wang", "--at", at])
    assert [(x["lead"], x["overdue"]) for x in holdings["leads"]] == ([] if first else [("L-1", True)])
    assert answered(store_url, ["pool", "show", "east", "--at", at])["held_count"] == (0 if first else 1)
    for model in MODELS:
        rows = answered(store_url, ["export", model, "--at", at])
        assert rows == ([] if first else answered(store_url, ["export", model])), model
    report = answered(store_url, ["report", "--from", FIRST, "--to", LAST])
    assert [x["held_at_end"] for x in report["reps"] if x["rep"] == "wang"] == [1]


# --- deadlines near the ends of the calendar --------------------------------------------------

def test_a_warning_due_before_year_one_is_at_its_first_instant(store_url):
    """A store may begin in year 1 (`init --at`); a 1-minute idle limit warned 3 days before."""
    with Ledger(store_url) as led:
        led.init("root", "Root", at=FIRST)
        led.add_person("root", "al", "Al", "rep", at=FIRST)
        led.create_pool("root", "p", "P", at=FIRST, idle_limit="1m", warn_before="3d")
        led.grant("root", "p", ["al"], at=FIRST)
        led.add_lead("root", "X", "p", at=FIRST)
        led.claim("al", "X", at=FIRST)
    for args in (["holdings", "al"], ["holdings", "al", "--at", FIRST], ["lead", "show", "X", "--at", FIRST],
                 ["explain", "X"]):
        assert run_cli(store_url, *args).code == 0, args
    assert answered(store_url, ["holdings", "al", "--at", FIRST])["leads"][0]["recycle_at"] == "0001-01-01T00:01:00Z"


def test_a_deadline_past_year_9999_is_at_its_last_instant(ledger, store_url):
    """A lead stated as held near the end of the calendar (a wrong clock): its deadline would
    be later than any time, and the read models, which every read catches up, compute it."""
    ledger.add_person("root", "al", "Al", "rep", at=T0)
    ledger.create_pool("root", "east", "East", at=T0)
    append_held(ledger, "Z-1", "al", "9999-12-20T00:00:00Z")
    for args in (["pool", "list"], ["holdings", "al"], ["holdings", "al", "--at", LAST], ["explain", "Z-1"],
                 ["export", "holdings", "--at", LAST]):
        assert run_cli(store_url, *args).code == 0, args
    assert answered(store_url, ["holdings", "al", "--at", LAST])["leads"][0]["recycle_at"] == LAST
