"""The Python API (`Ledger`) on SQLite and PostgreSQL: the domain rules, check order, time, import.

The `world` fixture (tests/conftest.py): pool `east` (claim_limit 2, idle 10d, hold 30d,
cooldown 7d, warn 2d) with mgr, alice, bob, carol; pool `west` (defaults) with mgr and dave;
leads L-1..L-6 in east (company "Company N", phone 138000000NN), all at T0.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest

from ledger import events as ev
from ledger.application import Ledger
from ledger.codec import GENESIS
from ledger.errors import InvalidInput, LedgerError
from ledger.importing import read_rows
from ledger.state import lead_stream
from ledger.store import Conflict, DuplicateKeys, NewEvent
from tests.conftest import T0, event_count


def d(days: float, hours: float = 0) -> str:
    """The ISO time `days` (and `hours`) after T0."""
    base = datetime.fromisoformat(T0.replace("Z", "+00:00"))
    return (base + timedelta(days=days, hours=hours)).isoformat().replace("+00:00", "Z")


def top(ledger: Ledger) -> int:
    return ledger.store.max_position()


def written(ledger: Ledger, since: int) -> list[str]:
    """Types of the events appended after position `since`."""
    return [type(s.event).__name__ for s in ledger.store.read_log(after=since, limit=10**6)]


def fails(ledger: Ledger, call: Callable[[], Any], code: str, *, records: str | None = None) -> LedgerError:
    """`call` fails with `code`, writing nothing, or only the refusal record named by `records`."""
    before = top(ledger)
    with pytest.raises(LedgerError) as caught:
        call()
    assert caught.value.code == code, caught.value.to_dict()
    assert written(ledger, before) == ([records] if records else [])
    return caught.value


def owner_of(ledger: Ledger, lead: str) -> str | None:
    return ledger.owner(lead)["owner"]


# --- rule 1: at most one owner ----------------------------------------------------------------

def test_a_held_lead_cannot_be_claimed_or_assigned(world):
    claim = world.claim("alice", "L-1", at=d(1))
    assert (claim["owner"], claim["event"]) == ("alice", "LeadClaimed")
    err = fails(world, lambda: world.claim("bob", "L-1", at=d(1, 1)), "lead_owned", records="ClaimRefused")
    assert (err.details["owner"], err.details["owner_since_position"]) == ("alice", claim["position"])
    assert err.exit_code == 1
    fails(world, lambda: world.assign("mgr", "L-1", "bob", at=d(1, 2)), "lead_owned", records="AssignmentRefused")
    assert owner_of(world, "L-1") == "alice"
    intervals = world.history("L-1")["ownership"]
    assert [(i["owner"], i["to"]) for i in intervals] == [("alice", None)]


# --- rule 2: claim_limit, converted leads do not count ---------------------------------------

def test_claim_limit_and_converted_leads(world):
    world.claim("alice", "L-1", at=d(1))
    world.claim("alice", "L-2", at=d(1))
    err = fails(world, lambda: world.claim("alice", "L-3", at=d(1, 1)), "claim_limit_reached",
                records="ClaimRefused")
    assert err.details["claim_limit"] == 2
    world.convert("alice", "L-1", deal="D-1", at=d(2))
    assert world.claim("alice", "L-3", at=d(2, 1))["owner"] == "alice"
    held = world.holdings("alice")
    assert {x["lead"]: x["status"] for x in held["leads"]} == {"L-1": "converted", "L-2": "held", "L-3": "held"}
    assert held["count_by_pool"] == {"east": 2}


def test_assign_and_reassign_respect_claim_limit(world):
    world.claim("bob", "L-1", at=d(1))
    world.claim("bob", "L-2", at=d(1))
    world.claim("alice", "L-3", at=d(1))
    fails(world, lambda: world.assign("mgr", "L-4", "bob", at=d(2)), "claim_limit_reached",
          records="AssignmentRefused")
    fails(world, lambda: world.reassign("mgr", "L-3", "bob", "cover", at=d(2)), "claim_limit_reached",
          records="AssignmentRefused")
    assert owner_of(world, "L-3") == "alice" and owner_of(world, "L-4") is None


# --- rule 3: membership ----------------------------------------------------------------------

def test_only_members_claim_or_are_assigned(world):
    fails(world, lambda: world.claim("dave", "L-1", at=d(1)), "not_pool_member", records="ClaimRefused")
    fails(world, lambda: world.assign("mgr", "L-1", "dave", at=d(1)), "not_pool_member",
          records="AssignmentRefused")
    world.claim("alice", "L-2", at=d(1))
    fails(world, lambda: world.reassign("mgr", "L-2", "dave", "cover", at=d(2)), "not_pool_member",
          records="AssignmentRefused")
    world.revoke("root", "east", ["bob"], at=d(2))
    fails(world, lambda: world.claim("bob", "L-3", at=d(3)), "not_pool_member", records="ClaimRefused")
    assert owner_of(world, "L-1") is None and owner_of(world, "L-2") == "alice"


def test_a_manager_acts_only_on_his_pools(world):
    world.add_person("root", "mgr2", "Mgr Two", "manager", at=d(0))
    fails(world, lambda: world.assign("mgr2", "L-1", "alice", at=d(1)), "not_pool_member")
    fails(world, lambda: world.add_lead("mgr2", "X-1", "east", company="Xco", at=d(1)), "not_pool_member")
    # an admin is not bound by membership
    assert world.assign("root", "L-1", "alice", at=d(1))["owner"] == "alice"


# --- rule 4: only the owner ----------------------------------------------------------------

@pytest.mark.parametrize("command", ["release", "follow_up", "convert"])
def test_only_the_owner_releases_follows_up_converts(world, command):
    calls = {
        "release": lambda who, at: world.release(who, "L-1", at=at),
        "follow_up": lambda who, at: world.follow_up(who, "L-1", "called", "call", at=at),
        "convert": lambda who, at: world.convert(who, "L-1", at=at),
    }
    fails(world, lambda: calls[command]("alice", d(1)), "lead_pooled")
    world.claim("alice", "L-1", at=d(1))
    err = fails(world, lambda: calls[command]("bob", d(2)), "not_owner")
    assert err.details["owner"] == "alice"
    result = calls[command]("alice", d(2))
    assert result["lead"] == "L-1" and result["position"] == top(world) - (0 if command == "follow_up" else 1)


def test_a_converted_lead_cannot_be_released_or_claimed(world):
    world.claim("alice", "L-1", at=d(1))
    world.convert("alice", "L-1", at=d(2))
    fails(world, lambda: world.release("alice", "L-1", at=d(3)), "lead_converted")
    fails(world, lambda: world.claim("bob", "L-1", at=d(3)), "lead_converted", records="ClaimRefused")


# --- rule 5: cooldown -----------------------------------------------------------------------

def test_cooldown_after_release(world):
    world.claim("alice", "L-1", at=d(1))
    world.release("alice", "L-1", reason="not now", at=d(2))
    err = fails(world, lambda: world.claim("alice", "L-1", at=d(8)), "cooldown_active", records="ClaimRefused")
    assert err.details["cooldown_until"] == d(9)
    assert world.claim("alice", "L-1", at=d(9))["owner"] == "alice"


def test_cooldown_counts_from_the_most_recent_time_it_left_that_rep(world):
    world.claim("alice", "L-1", at=d(1))
    world.release("alice", "L-1", at=d(2))
    world.claim("bob", "L-1", at=d(3))
    world.reassign("mgr", "L-1", "alice", "bob is away", at=d(4))
    world.reassign("mgr", "L-1", "carol", "alice is away", at=d(6))
    world.release("carol", "L-1", at=d(7))
    fails(world, lambda: world.claim("alice", "L-1", at=d(12)), "cooldown_active", records="ClaimRefused")
    assert world.claim("alice", "L-1", at=d(13))["owner"] == "alice"


def test_cooldown_ignores_other_reps_releases(world):
    world.claim("alice", "L-1", at=d(1))
    world.release("alice", "L-1", at=d(2))
    world.claim("bob", "L-1", at=d(3))
    world.release("bob", "L-1", at=d(8))
    assert world.claim("alice", "L-1", at=d(9))["owner"] == "alice"


def test_cooldown_after_recycle(world):
    world.claim("alice", "L-1", at=d(1))
    assert [r["lead"] for r in world.sweep("root", now=d(12))["recycled"]] == ["L-1"]
    fails(world, lambda: world.claim("alice", "L-1", at=d(18)), "cooldown_active", records="ClaimRefused")
    assert world.claim("alice", "L-1", at=d(19))["owner"] == "alice"


# --- rule 6: duplicates ---------------------------------------------------------------------

@pytest.mark.parametrize("field, value, normal", [
    ("phone", "+86 138-0000-0001", "13800000001"),
    ("phone", "0086 13800000001", "13800000001"),
    ("company", "  COMPANY   1 ", "company1"),
])
def test_duplicate_lead_is_refused(world, field, value, normal):
    err = fails(world, lambda: world.add_lead("alice", "N-1", "east", at=d(1), **{field: value}), "duplicate_lead")
    assert (err.details["existing"], err.details["field"], err.details["pool"]) == ("L-1", field, "east")
    assert err.exit_code == 1
    assert world.history("L-1")["events"][-1]["type"] == "LeadAdded"


def test_duplicate_email_names_the_current_owner(world):
    world.add_lead("mgr", "E-1", "east", email="Buyer@Example.cn", at=d(0))
    world.claim("alice", "E-1", at=d(1))
    err = fails(world, lambda: world.add_lead("bob", "E-2", "east", email=" buyer@example.CN", at=d(2)),
                "duplicate_lead")
    assert (err.details["existing"], err.details["owner"]) == ("E-1", "alice")
    assert "alice" in err.message


def test_allow_duplicate_records_the_match(world):
    added = world.add_lead("bob", "N-1", "east", phone="+86 138 0000 0001", allow_duplicate=True, at=d(1))
    assert added["duplicates"] == [{"lead": "L-1", "field": "phone", "value": "13800000001"}]
    first = world.history("N-1")["events"][0]
    assert first["type"] == "LeadAdded"  # the stored match keeps no personal value (sealed data)
    assert first["duplicates"] == [{"lead": "L-1", "field": "phone", "value": None}]


def test_lead_add_with_claim(world):
    added = world.add_lead("alice", "N-1", "east", company="New Co", claim=True, at=d(1))
    assert added["claim"]["owner"] == "alice"
    assert written(world, added["position"] - 1)[:2] == ["LeadAdded", "LeadClaimed"]


# --- rule 7: refusals are recorded, other failures write nothing ----------------------------

def test_refused_claim_is_in_the_history(world):
    claim = world.claim("alice", "L-1", at=d(1))
    with pytest.raises(LedgerError) as e:
        world.claim("bob", "L-1", at=d(1, 1))
    refused = world.history("L-1")["refused"]
    assert len(refused) == 1
    r = refused[0]
    assert (r["type"], r["actor"], r["reason"], r["occurred_at"]) == ("ClaimRefused", "bob", "lead_owned", d(1, 1))
    assert r["position"] == e.value.details["refusal_position"] == top(world)
    assert r["owner"] == "alice" and r["owner_since_position"] == claim["position"]


def test_permission_input_unknown_and_inactive_failures_write_nothing(world):
    fails(world, lambda: world.claim("audrey", "L-1", at=d(1)), "permission_denied")
    fails(world, lambda: world.assign("alice", "L-1", "bob", at=d(1)), "permission_denied")
    fails(world, lambda: world.claim("alice", "L-404", at=d(1)), "unknown_lead")
    fails(world, lambda: world.claim("ghost", "L-1", at=d(1)), "unknown_person")
    fails(world, lambda: world.claim("alice", "L-1", at="not a time"), "invalid_input")
    fails(world, lambda: world.assign("mgr", "L-1", "ghost", at=d(1)), "unknown_person")
    fails(world, lambda: world.move("mgr", "L-1", "nowhere", at=d(1)), "unknown_pool")
    fails(world, lambda: world.follow_up("alice", "L-1", "x", "fax", at=d(1)), "invalid_input")
    world.deactivate_person("root", "carol", at=d(1))
    fails(world, lambda: world.claim("carol", "L-1", at=d(2)), "actor_inactive")


# --- rule 8: recycling ----------------------------------------------------------------------

def test_lead_stays_held_until_a_sweep_records_its_recycle(world, store_url):
    world.claim("alice", "L-1", at=d(1))
    world.follow_up("alice", "L-1", "called", "call", at=d(3))
    late = Ledger(store_url, clock=lambda: datetime.fromisoformat(d(20).replace("Z", "+00:00")))
    try:
        row = late.holdings("alice")["leads"][0]
        assert (row["lead"], row["recycle_at"], row["recycle_rule"], row["overdue"]) == \
            ("L-1", d(13), "idle_limit", True)
        assert owner_of(late, "L-1") == "alice"
    finally:
        late.close()
    before = top(world)
    swept = world.sweep("root", now=d(20))
    assert swept["recycled"] == [{"lead": "L-1", "from": "alice", "rule": "idle_limit", "deadline": d(13),
                                  "pool": "east"}]
    assert written(world, before) == ["LeadRecycled", "HoldingsChanged"]
    event = world.history("L-1")["events"][-1]
    assert event["type"] == "LeadRecycled"
    assert (event["occurred_at"], event["actor"], event["actor_kind"]) == (d(20), "root", "rule")
    assert (event["rule"], event["limit"], event["rules_version"], event["deadline"]) == \
        ("idle_limit", 10 * 86400, 1, d(13))
    assert (event["held_since"], event["last_follow_up_at"]) == (d(1), d(3))
    assert owner_of(world, "L-1") is None
    assert world.owner("L-1", at=d(19))["owner"] == "alice"


def test_hold_limit_recycles_despite_follow_ups(world):
    world.claim("alice", "L-1", at=d(1))
    for day in (8, 16, 24, 30):
        world.follow_up("alice", "L-1", "still talking", at=d(day))
    swept = world.sweep("mgr", now=d(31))
    assert [(r["lead"], r["rule"], r["deadline"]) for r in swept["recycled"]] == [("L-1", "hold_limit", d(31))]


def test_sweep_warns_once_then_recycles(world):
    world.claim("alice", "L-1", at=d(1))
    world.claim("bob", "L-2", at=d(1))
    world.follow_up("bob", "L-2", "met", at=d(5))
    first = world.sweep("root", now=d(9, 12))
    assert first["warned"] == [{"lead": "L-1", "owner": "alice", "recycle_at": d(11), "rule": "idle_limit"}]
    assert first["recycled"] == []
    before = top(world)
    assert world.sweep("root", now=d(10)) == {"now": d(10), "dry_run": False, "warned": [], "recycled": []}
    assert top(world) == before
    warning = [e for e in world.history("L-1")["events"] if e["type"] == "RecycleWarned"]
    assert len(warning) == 1 and warning[0]["actor_kind"] == "rule"


def test_sweep_twice_changes_nothing_the_second_time(world):
    world.claim("alice", "L-1", at=d(1))
    world.claim("bob", "L-2", at=d(1))
    world.claim("carol", "L-3", at=d(20))
    first = world.sweep("root", now=d(21))
    assert sorted(r["lead"] for r in first["recycled"]) == ["L-1", "L-2"]
    before = event_count(world)
    second = world.sweep("root", now=d(21))
    assert (second["warned"], second["recycled"]) == ([], [])
    assert event_count(world) == before


def test_sweep_dry_run_writes_nothing_and_predicts_the_sweep(world):
    world.claim("alice", "L-1", at=d(1))
    world.claim("bob", "L-2", at=d(1))
    world.follow_up("bob", "L-2", "call", at=d(2))
    before = event_count(world)
    dry = world.sweep("root", now=d(11), dry_run=True)
    assert event_count(world) == before
    assert dry["dry_run"] is True
    assert [r["lead"] for r in dry["recycled"]] == ["L-1"] and [w["lead"] for w in dry["warned"]] == ["L-2"]
    real = world.sweep("root", now=d(11))
    assert (real["warned"], real["recycled"]) == (dry["warned"], dry["recycled"])
    assert event_count(world) == before + 3  # recycle + holdings change + warning


def test_deadline_follows_a_later_rule_change(world):
    world.claim("alice", "L-1", at=d(1))
    world.change_rules("root", "east", idle_limit="20d", at=d(5))
    assert world.sweep("root", now=d(12))["recycled"] == []
    swept = world.sweep("root", now=d(21))
    assert [(r["lead"], r["deadline"]) for r in swept["recycled"]] == [("L-1", d(21))]
    event = world.history("L-1")["events"][-1]
    assert (event["type"], event["rules_version"], event["limit"]) == ("LeadRecycled", 2, 20 * 86400)


def test_sweep_needs_admin_or_manager(world):
    fails(world, lambda: world.sweep("alice", now=d(40)), "permission_denied")
    fails(world, lambda: world.sweep("audrey", now=d(40)), "permission_denied")


@pytest.mark.parametrize("dry_run", [False, True])
def test_sweep_now_before_the_sweeper_was_registered_is_invalid_input(world, dry_run):
    error = fails(world, lambda: world.sweep("mgr", now="2020-01-01T00:00:00Z", dry_run=dry_run), "invalid_input")
    assert "registration of mgr" in error.message


# --- rule 9: deactivation -------------------------------------------------------------------

def test_deactivation_returns_each_lead_with_its_own_event(world):
    world.claim("alice", "L-1", at=d(1))
    world.claim("alice", "L-2", at=d(1))
    world.claim("bob", "L-3", at=d(1))
    before = top(world)
    result = world.deactivate_person("root", "alice", at=d(2))
    assert sorted(r["lead"] for r in result["returned"]) == ["L-1", "L-2"]
    assert result["reassigned"] == []
    types = written(world, before)
    assert types.count("LeadReturned") == 2 and types.count("PersonDeactivated") == 1
    for lead in ("L-1", "L-2"):
        last = world.history(lead)["events"][-1]
        assert (last["type"], last["rep"], last["occurred_at"]) == ("LeadReturned", "alice", d(2))
        assert owner_of(world, lead) is None
    assert owner_of(world, "L-3") == "bob"
    assert [x["lead"] for x in world.holdings("alice")["leads"]] == []
    fails(world, lambda: world.claim("alice", "L-4", at=d(3)), "actor_inactive")
    fails(world, lambda: world.add_lead("alice", "N-1", "east", company="N", at=d(3)), "actor_inactive")
    with pytest.raises(LedgerError) as e:
        world.check_reader("alice")
    assert e.value.code == "actor_inactive"
    fails(world, lambda: world.deactivate_person("root", "alice", at=d(3)), "actor_inactive")


def test_deactivation_reassign_to_respects_membership_only(world):
    world.claim("alice", "L-1", at=d(1))
    world.claim("alice", "L-2", at=d(1))
    world.claim("bob", "L-3", at=d(1))
    world.claim("bob", "L-4", at=d(1))  # bob is at claim_limit 2
    fails(world, lambda: world.deactivate_person("root", "alice", reassign_to="dave", at=d(2)), "not_pool_member")
    fails(world, lambda: world.deactivate_person("root", "alice", reassign_to="ghost", at=d(2)), "unknown_person")
    assert world.holdings("alice")["count_by_pool"] == {"east": 2}
    before = top(world)
    result = world.deactivate_person("root", "alice", reassign_to="bob", at=d(2))
    assert sorted(r["lead"] for r in result["reassigned"]) == ["L-1", "L-2"]
    assert written(world, before).count("LeadReassigned") == 2
    assert world.holdings("bob")["count_by_pool"] == {"east": 4}
    assert owner_of(world, "L-1") == owner_of(world, "L-2") == "bob"


# --- rule 10: existing ids ------------------------------------------------------------------

def test_existing_ids_are_refused(world):
    fails(world, lambda: world.add_lead("mgr", "L-1", "east", company="Other", at=d(1)), "already_exists")
    fails(world, lambda: world.add_person("root", "alice", "A", "rep", at=d(1)), "already_exists")
    fails(world, lambda: world.create_pool("root", "east", "Again", at=d(1)), "already_exists")


# --- --at ordering --------------------------------------------------------------------------

def test_at_before_the_leads_latest_event_is_invalid(world):
    world.claim("alice", "L-1", at=d(3))
    for call in (lambda: world.release("alice", "L-1", at=d(2)),
                 lambda: world.follow_up("alice", "L-1", "x", at=d(2)),
                 lambda: world.claim("bob", "L-1", at=d(2)),
                 lambda: world.reassign("mgr", "L-1", "bob", "cover", at=d(2))):
        err = fails(world, call, "invalid_input")
        assert err.exit_code == 2
    assert world.release("alice", "L-1", at=d(3))["event"] == "LeadReleased"  # the same instant is fine


def test_at_is_ordered_per_lead_and_per_holdings_not_globally(world):
    world.claim("alice", "L-1", at=d(5))
    assert world.claim("bob", "L-2", at=d(2))["occurred_at"] == d(2)  # another rep's holdings
    with pytest.raises(InvalidInput):  # alice's count is known from d(5) on, not before
        world.claim("alice", "L-3", at=d(2))


# --- checks order ---------------------------------------------------------------------------

def test_checks_run_in_spec_order(world):
    world.claim("bob", "L-1", at=d(3))
    world.deactivate_person("root", "carol", at=d(3))
    # actor known -> before everything else, even a malformed --at and an unknown lead
    fails(world, lambda: world.claim("ghost", "L-404", at="garbage"), "unknown_person")
    # actor active -> before role
    fails(world, lambda: world.assign("carol", "L-404", "alice", at="garbage"), "actor_inactive")
    # role -> before ids
    fails(world, lambda: world.assign("alice", "L-404", "ghost", at="garbage"), "permission_denied")
    # ids -> before --at
    fails(world, lambda: world.assign("mgr", "L-404", "alice", at="garbage"), "unknown_lead")
    fails(world, lambda: world.assign("mgr", "L-2", "ghost", at="garbage"), "unknown_person")
    fails(world, lambda: world.reassign("mgr", "L-1", "ghost", "r", at=d(1)), "unknown_person")
    fails(world, lambda: world.move("mgr", "L-2", "nowhere", at="garbage"), "unknown_pool")
    # --at -> before the rules
    fails(world, lambda: world.claim("alice", "L-1", at=d(2)), "invalid_input")
    fails(world, lambda: world.claim("alice", "L-1", at="garbage"), "invalid_input")
    fails(world, lambda: world.claim("alice", "L-1", at=d(4)), "lead_owned", records="ClaimRefused")


# --- pools and rule versions ----------------------------------------------------------------

def test_rule_versions(world):
    world.claim("alice", "L-1", at=d(1))
    world.claim("alice", "L-2", at=d(1))
    changed = world.change_rules("root", "east", claim_limit=3, at=d(5))
    assert (changed["rules_version"], changed["rules"]["claim_limit"], changed["since"]) == (2, 3, d(5))
    fails(world, lambda: world.claim("alice", "L-3", at=d(4)), "claim_limit_reached", records="ClaimRefused")
    world.claim("alice", "L-3", at=d(5))
    claimed = world.history("L-3")["events"][-1]
    assert (claimed["type"], claimed["rules_version"], claimed["claim_limit"]) == ("LeadClaimed", 2, 3)
    refused = world.history("L-3")["events"][-2]
    assert (refused["type"], refused["rules_version"]) == ("ClaimRefused", 1)
    shown = world.pool_show("east")
    assert shown["rules_version"] == 2 and shown["rules"]["claim_limit"] == 3
    assert shown["rules"]["idle_limit"] == "10d"
    assert [(v["version"], v["since"]) for v in shown["rule_versions"]] == [(1, T0), (2, d(5))]


def test_rule_change_checks(world):
    fails(world, lambda: world.change_rules("mgr", "east", claim_limit=5, at=d(1)), "permission_denied")
    fails(world, lambda: world.change_rules("root", "nope", claim_limit=5, at=d(1)), "unknown_pool")
    fails(world, lambda: world.change_rules("root", "east", claim_limit=-1, at=d(1)), "invalid_input")
    fails(world, lambda: world.change_rules("root", "east", claim_limit=1_000_001, at=d(1)), "invalid_input")
    fails(world, lambda: world.change_rules("root", "east", idle_limit="soon", at=d(1)), "invalid_input")
    fails(world, lambda: world.change_rules("root", "east", at=d(1)), "invalid_input")
    world.change_rules("root", "east", cooldown="1d", at=d(2))
    fails(world, lambda: world.change_rules("root", "east", cooldown="2d", at=d(1)), "invalid_input")


def test_pool_defaults_and_membership(world):
    west = world.pool_show("west")
    assert west["rules"] == {"claim_limit": 50, "daily_claim_limit": 0, "idle_limit": "30d",
                             "hold_limit": "90d", "cooldown": "7d", "warn_before": "3d"}
    assert west["members"] == ["dave", "mgr"]
    again = world.grant("root", "west", ["dave"], at=d(1))
    assert again["changed"] == [] and again["position"] is None
    fails(world, lambda: world.grant("root", "west", ["audrey"], at=d(1)), "invalid_input")
    fails(world, lambda: world.grant("root", "west", ["ghost"], at=d(1)), "unknown_person")
    fails(world, lambda: world.grant("mgr", "west", ["alice"], at=d(1)), "permission_denied")


def test_daily_claim_limit(world):
    world.change_rules("root", "east", claim_limit=10, daily_claim_limit=2, at=d(0))
    world.claim("alice", "L-1", at=d(1, 1))
    world.release("alice", "L-1", at=d(1, 2))
    world.claim("alice", "L-2", at=d(1, 3))
    fails(world, lambda: world.claim("alice", "L-3", at=d(1, 4)), "daily_limit_reached", records="ClaimRefused")
    assert world.claim("bob", "L-3", at=d(1, 5))["owner"] == "bob"
    assert world.claim("alice", "L-4", at=d(2))["owner"] == "alice"


def test_move(world):
    moved = world.move("mgr", "L-1", "west", reason="wrong region", at=d(1))
    assert (moved["event"], moved["pool"], moved["owner"]) == ("LeadMoved", "west", None)
    assert "L-1" in world.pool_show("west")["pooled"] and "L-1" not in world.pool_show("east")["pooled"]
    assert world.claim("dave", "L-1", at=d(2))["owner"] == "dave"
    world.claim("alice", "L-2", at=d(2))
    fails(world, lambda: world.move("mgr", "L-2", "west", at=d(3)), "lead_owned")
    fails(world, lambda: world.move("alice", "L-3", "west", at=d(3)), "permission_denied")


# --- init -----------------------------------------------------------------------------------

def test_init_is_idempotent(world, store_url):
    before = event_count(world)
    assert world.init("root", "Root Admin")["created"] is False
    with Ledger(store_url) as other:
        assert other.init("root", "Root Admin")["created"] is False
    assert event_count(world) == before


def test_init_does_not_add_a_second_admin(world):
    before = event_count(world)
    with pytest.raises(LedgerError):
        world.init("root2", "Other Admin")
    assert event_count(world) == before
    assert "root2" not in [p["person"] for p in world.person_list()["people"]]


def test_uninitialised_store(store_url):
    with Ledger(store_url) as led:
        with pytest.raises(LedgerError) as e:
            led.claim("alice", "L-1")
        assert (e.value.code, e.value.exit_code) == ("store_unavailable", 5)


# --- lead import ----------------------------------------------------------------------------

CSV = (
    "id,company,phone,email\n"                      # 1
    "N-1,Alpha Co,13900000001,a@x.cn\n"             # 2  imported
    'N-2,"Beta\nCo",13900000002,b@x.cn\n'           # 3-4 imported (a quoted newline)
    ",Nameless,13900000003,c@x.cn\n"                # 5  rejected: no id
    "N-3,Gamma Co,13900000004,not-an-email\n"       # 6  rejected: bad email
    "\n"                                            # 7  blank
    "N-4,Delta Co,13900000005\n"                    # 8  rejected: too few fields
    "N-5,Company 1,13900000006,e@x.cn\n"            # 9  duplicate of L-1 (company)
    "N-6,ALPHA  co,13900000007,f@x.cn\n"            # 10 duplicate of N-1 (same file)
    "L-2,Other,13900000008,g@x.cn\n"                # 11 skipped: exists
    "N-7,Eta Co,+86 139 0000 0009,h@x.cn\n"         # 12 imported
)

JSONL = (
    '{"id": "J-1", "company": "Jay Co", "phone": "13700000001"}\n'     # 1 imported
    "\n"                                                                 # 2 blank
    '{"id": "J-2", "company": "Kay Co"\n'                                # 3 rejected: bad JSON
    '["J-3"]\n'                                                          # 4 rejected: not an object
    '{"id": "J-4", "phone": "0086 137 0000 0001"}\n'                     # 5 duplicate of J-1
    '{"id": "J-5", "company": "Em Co", "fax": "123"}\n'                  # 6 imported: the unknown key fax is ignored and listed
    '{"id": "L-3", "company": "Whatever"}\n'                             # 7 skipped: exists
    '{"id": "J-6", "company": "Zed Co", "email": "Z@X.CN"}\n'            # 8 imported
)


def run_import(ledger: Ledger, path, actor: str = "mgr", **kw: Any) -> dict[str, Any]:
    return ledger.import_leads(actor, "east", read_rows(str(path)), at=d(1), **kw)


def test_import_csv(world, tmp_path):
    path = tmp_path / "leads.csv"
    path.write_text(CSV, encoding="utf-8")
    before = event_count(world)
    report = run_import(world, path)
    assert report["imported"] == 3
    assert report["skipped_existing"] == 1
    assert [(x["line"], x["lead"], x["duplicate_of"]) for x in report["duplicates"]] == \
        [(9, "N-5", "L-1"), (10, "N-6", "N-1")]
    assert [x["line"] for x in report["rejected"]] == [5, 6, 8]
    assert event_count(world) == before + 3
    assert world.lead_show("N-2")["attributes"]["company"] == "Beta\nCo"
    assert world.lead_show("N-7")["pool"] == "east"
    again = run_import(world, path)
    assert (again["imported"], again["skipped_existing"]) == (0, 4)
    assert event_count(world) == before + 3


def test_import_jsonl(world, tmp_path):
    path = tmp_path / "leads.jsonl"
    path.write_text(JSONL, encoding="utf-8")
    report = run_import(world, path)
    assert report["imported"] == 3
    assert report["skipped_existing"] == 1
    assert [(x["line"], x["lead"], x["duplicate_of"], x["field"]) for x in report["duplicates"]] == \
        [(5, "J-4", "J-1", "phone")]
    assert [x["line"] for x in report["rejected"]] == [3, 4]
    assert report["ignored_columns"] == ["fax"]
    assert world.lead_show("J-6")["attributes"]["email"] == "Z@X.CN"
    before = event_count(world)
    assert run_import(world, path)["imported"] == 0
    assert event_count(world) == before


def test_import_duplicate_of_an_existing_email_normalised(world, tmp_path):
    world.add_lead("mgr", "E-1", "east", email="buyer@example.cn", at=d(0))
    path = tmp_path / "more.jsonl"
    path.write_text('{"id": "E-2", "email": "  BUYER@example.cn "}\n', encoding="utf-8")
    report = run_import(world, path)
    assert report["imported"] == 0 and report["duplicates"][0]["duplicate_of"] == "E-1"


def test_import_allow_duplicate_records_matches(world, tmp_path):
    path = tmp_path / "leads.csv"
    path.write_text("id,company\nN-1,company 1\n", encoding="utf-8")
    report = run_import(world, path, allow_duplicate=True)
    assert report["imported"] == 1 and report["duplicates"] == []
    assert world.history("N-1")["events"][0]["duplicates"] == [{"lead": "L-1", "field": "company", "value": None}]


def test_import_checks_actor_and_pool(world, tmp_path):
    path = tmp_path / "leads.csv"
    path.write_text("id,company\nN-1,New Co\n", encoding="utf-8")
    fails(world, lambda: run_import(world, path, actor="alice"), "permission_denied")
    fails(world, lambda: world.import_leads("mgr", "nope", read_rows(str(path))), "unknown_pool")
    fails(world, lambda: world.import_leads("dave", "east", read_rows(str(path))), "permission_denied")


@pytest.mark.parametrize("name, content", [
    ("missing.csv", None),
    ("noid.csv", "company,phone\nAcme,1390000\n".encode()),
    ("twice.csv", "id,company,Company\nN-1,Acme,Acme\n".encode()),  # unknown columns are ignored
    ("latin1.csv", "id,company\nN-1,Caf\xe9 Co\n".encode("latin-1")),
    ("late-latin1.csv", ("id,company\n" + "".join(f"N-{i},Co {i}\n" for i in range(1, 2000))).encode()
     + "N-9999,Caf\xe9\n".encode("latin-1")),
    ("latin1.jsonl", '{"id": "N-1", "company": "Caf\xe9"}\n'.encode("latin-1")),
    ("folder", "dir"),
])
def test_unreadable_file_is_invalid_input_and_writes_nothing(world, tmp_path, name, content):
    path = tmp_path / name
    if content == "dir":
        path.mkdir()
    elif content is not None:
        path.write_bytes(content)
    before = event_count(world)
    with pytest.raises(LedgerError) as e:
        run_import(world, path)
    assert (e.value.code, e.value.exit_code) == ("invalid_input", 2)
    assert event_count(world) == before


def test_import_100k_rows(world, tmp_path):
    path = tmp_path / "big.csv"
    with path.open("w", encoding="utf-8") as f:
        f.write("id,company,contact,phone,email,region,industry,source\n")
        for i in range(100_000):
            f.write(f"B-{i},Big Co {i},Contact {i},+86 150{i:08d},buyer{i}@big.cn,上海,retail,web\n")
    before = event_count(world)
    report = run_import(world, path)
    assert (report["imported"], report["skipped_existing"], report["duplicates"], report["rejected"]) == \
        (100_000, 0, [], [])
    assert event_count(world) == before + 100_000
    assert world.lead_show("B-99999")["attributes"]["phone"] == "+86 15000099999"
    assert len(world.pool_show("east")["pooled"]) == 6 + 100_000


def test_import_keys_with_tabs_and_backslashes_are_indexed_as_they_are(world, tmp_path):
    path = tmp_path / "odd.jsonl"
    rows = [{"id": "N\\1", "email": "back\\slash@x.cn"}, {"id": "N-2", "email": "tab\there@x.cn"},
            {"id": "N-3", "email": "line\r\nbreak@x.cn"}, {"id": "N-4", "company": "Plain Co"}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    assert run_import(world, path)["imported"] == 4
    for lead, email in [("N\\1", "BACK\\slash@x.cn"), ("N-2", "tab\there@X.CN"), ("N-3", " line\r\nbreak@x.cn")]:
        error = fails(world, lambda email=email: world.add_lead("mgr", "X-1", "east", email=email, at=d(1)),
                      "duplicate_lead")
        assert error.details["existing"] == lead
    assert world.lead_show("N\\1")["attributes"]["email"] == "back\\slash@x.cn"
    assert world.verify()["ok"] is True


def test_import_rechecks_keys_a_lead_took_while_the_batch_was_decided(world, tmp_path, monkeypatch):
    """Another writer adds a lead with a phone the import is about to index, after the import
    looked the keys up: the append notices under its lock, the batch is decided again, and
    the row is reported as a duplicate of the lead added meanwhile."""
    path = tmp_path / "leads.csv"
    path.write_text("id,phone\nN-1,13700000001\nN-2,13700000002\nL-1,13700000003\n", encoding="utf-8")
    tries = _another_writer_adds_a_lead_before_the_first_append(world, monkeypatch, "+86 137 0000 0002")
    report = run_import(world, path)
    assert len(tries) == 2 and tries[1] > tries[0]
    assert (report["imported"], report["skipped_existing"]) == (1, 1)  # counted once, not per attempt
    assert [(x["lead"], x["duplicate_of"], x["field"]) for x in report["duplicates"]] == [("N-2", "M-1", "phone")]
    assert [s.event.lead for s in world.store.read_log(after=0, limit=10**6)[-2:]] == ["M-1", "N-1"]
    assert world.verify()["ok"] is True


def _another_writer_adds_a_lead_before_the_first_append(world, monkeypatch, phone: str) -> list[Any]:
    """Another ledger adds lead M-1 with `phone` just before the import's first append (after
    the import looked its keys up). Returns the `checked_at` each append was given."""
    append, tries = world.store.append_bulk, []

    def after_another_writer(*args, **kwargs):
        if not tries:
            with Ledger(world.store.url) as other:
                other.add_lead("mgr", "M-1", "east", phone=phone, at=d(1))
        tries.append(kwargs["checked_at"])
        return append(*args, **kwargs)

    monkeypatch.setattr(world.store, "append_bulk", after_another_writer)
    return tries


def _hold_each_append_until_the_next_batch_is_decided(world, monkeypatch) -> list[Any]:
    """Each batch's append (in the import's writer thread) waits until the batch after it
    has been decided and made ready (or 5 s): that batch's look-ups then cannot see its keys
    in the index. Returns the `ours` each append was given."""
    prepare, append = world.store.prepare_bulk, world.store.append_bulk
    prepared, seen = threading.Semaphore(0), []

    def preparing(*args, **kwargs):
        ready = prepare(*args, **kwargs)
        prepared.release()
        return ready

    def appending(*args, **kwargs):
        seen.append(kwargs.get("ours"))
        if kwargs.get("prepared") is not None:  # in the writer thread: the next batch first
            prepared.acquire(timeout=5)
        return append(*args, **kwargs)

    monkeypatch.setattr(world.store, "prepare_bulk", preparing)
    monkeypatch.setattr(world.store, "append_bulk", appending)
    return seen


def test_imports_leave_no_connection_behind(world, tmp_path):
    """Each import appends from a writer thread of its own: its connection is closed with it,
    so an app that imports again and again through one ledger holds no more of them."""
    def open_files() -> int:
        return len(os.listdir("/proc/self/fd"))  # connections are files too (a socket, a database)

    def import_some(n: int) -> None:
        path = tmp_path / f"leads-{n}.csv"
        path.write_text("id,phone\n" + "".join(f"C{n}-{i},1370{n:03d}{i:04d}\n" for i in range(6)), encoding="utf-8")
        assert run_import(world, path, batch=2)["imported"] == 6

    import_some(0)
    before = open_files()
    for n in range(1, 6):
        import_some(n)
    assert open_files() <= before


def test_import_finds_duplicates_of_the_batch_being_appended(world, tmp_path, monkeypatch):
    """A batch is decided while the one before it is appended: a row sharing a key with a
    lead of that batch is its duplicate, though the index did not hold the key yet."""
    seen = _hold_each_append_until_the_next_batch_is_decided(world, monkeypatch)
    path = tmp_path / "leads.csv"
    path.write_text("id,phone,email\nN-1,13700000001,a@x.cn\nN-2,13700000002,b@x.cn\n"
                    "N-3,13700000002,c@x.cn\nN-4,13700000004,d@x.cn\nN-5,13700000005,d@x.cn\n",
                    encoding="utf-8")
    report = run_import(world, path, batch=2)
    assert report["imported"] == 3
    assert [(x["lead"], x["duplicate_of"], x["field"]) for x in report["duplicates"]] == [
        ("N-3", "N-2", "phone"), ("N-5", "N-4", "email")]
    assert seen[0] is None and all(ours is not None for ours in seen[1:])  # no look-up again under the lock
    assert world.verify()["ok"] is True


def test_import_decides_again_after_the_batch_being_appended_lost_a_race(world, tmp_path, monkeypatch):
    """Another writer takes a phone of the batch being appended: that batch is decided
    again, and so is the next one, which had counted on its keys."""
    _hold_each_append_until_the_next_batch_is_decided(world, monkeypatch)
    _another_writer_adds_a_lead_before_the_first_append(world, monkeypatch, "+86 137 0000 0001")
    path = tmp_path / "leads.csv"
    path.write_text("id,phone\nN-1,13700000001\nN-2,13700000002\nN-3,13700000001\nN-4,13700000004\n",
                    encoding="utf-8")
    report = run_import(world, path, batch=2)
    assert report["imported"] == 2
    assert [(x["lead"], x["duplicate_of"]) for x in report["duplicates"]] == [("N-1", "M-1"), ("N-3", "M-1")]
    assert sorted(k.lead for k in world.store.find_keys([("phone", "13700000001")])) == ["M-1"]
    assert world.verify()["ok"] is True


def test_bulk_append_refuses_a_key_indexed_since_the_callers_look_up(world):
    """Store level: with a stale `checked_at` the keys are looked up again under the lock;
    without `unique_keys` (--allow-duplicate) a shared key is indexed once more."""
    seen = world.store.max_position()
    world.add_lead("mgr", "M-1", "east", email="m@x.cn", at=d(1))
    event = ev.LeadAdded(occurred_at=datetime.fromisoformat("2026-03-03T09:00:00+00:00"), actor="mgr",
                         lead="N-1", pool="east", attributes=ev.Attributes(email="m@x.cn"))
    new = [NewEvent(lead_stream("N-1"), 1, GENESIS, event)]
    before = event_count(world)
    with pytest.raises(DuplicateKeys):
        world.store.append_bulk(new, keys=[("email", "m@x.cn", "N-1")], checked_at=seen)
    assert event_count(world) == before
    world.store.append_bulk(new, keys=[("email", "m@x.cn", "N-1")], unique_keys=False, checked_at=seen)
    assert sorted(k.lead for k in world.store.find_keys([("email", "m@x.cn")])) == ["M-1", "N-1"]
    with pytest.raises(Conflict):  # the stream exists now: nothing is written twice
        world.store.append_bulk(new, unique_keys=False)
    assert event_count(world) == before + 1
    assert world.history("N-1")["events"][0]["type"] == "LeadAdded"
    assert world.verify()["ok"] is True


# --- state a ledger remembers between commands --------------------------------------------------

def test_a_ledger_sees_what_another_changed_after_it_last_read(world, store_url):
    """People and pools are remembered between commands and moved on by the events stored
    since: rule changes, revoked access and deactivations by another writer count at once."""
    with Ledger(store_url) as other:
        world.claim("alice", "L-1", at=d(1))
        other.change_rules("root", "east", at=d(1), claim_limit=1)
        fails(world, lambda: world.claim("alice", "L-2", at=d(2)), "claim_limit_reached",
              records="ClaimRefused")
        world.claim("bob", "L-2", at=d(2))
        other.revoke("root", "east", ["bob"], at=d(2))
        fails(world, lambda: world.claim("bob", "L-3", at=d(3)), "not_pool_member", records="ClaimRefused")
        world.claim("carol", "L-3", at=d(3))
        other.deactivate_person("root", "carol", at=d(3))
        fails(world, lambda: world.release("carol", "L-3", at=d(4)), "actor_inactive")
    assert world.pool_show("east")["rules"]["claim_limit"] == 1


def test_holdings_remembered_from_an_earlier_claim_are_never_decided_on_once_moved_on(world, store_url):
    """A ledger remembers a rep's holdings from his last claim. Another writer moves them on
    (an assignment, a release): the next claim, decided from what was remembered, cannot be
    recorded as it stands, and is decided again on what is stored (limit 2 in east)."""
    with Ledger(store_url) as other:
        world.claim("alice", "L-1", at=d(1))
        other.assign("mgr", "L-2", "alice", at=d(1))  # alice now holds 2, the limit
        fails(world, lambda: world.claim("alice", "L-3", at=d(2)), "claim_limit_reached",
              records="ClaimRefused")
        other.release("alice", "L-1", at=d(3))  # holds 1 again
        assert world.claim("alice", "L-3", at=d(4))["owner"] == "alice"
    assert sorted(h["lead"] for h in world.holdings("alice")["leads"]) == ["L-2", "L-3"]
    assert world.verify()["ok"] is True


def test_a_postgresql_ledger_replaces_a_connection_the_server_closed(world, backend):
    if backend != "postgresql":
        pytest.skip("PostgreSQL only: a server that closes connections")
    import psycopg

    from tests.conftest import PG

    world.claim("alice", "L-1", at=d(1))
    pid = world.store._local.con.info.backend_pid
    with psycopg.connect(PG, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])
    assert world.owner("L-1")["owner"] == "alice"  # the read goes through on a new connection
    assert world.claim("alice", "L-2", at=d(2))["owner"] == "alice"
    assert world.store._local.con.info.backend_pid != pid
