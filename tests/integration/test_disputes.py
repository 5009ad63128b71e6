"""Disputes from open to award and to uphold, their evidence, and who may do what."""

from __future__ import annotations

import pytest

from ledger.errors import Refused
from tests.conftest import event_count, run_cli


def t(day: int, hour: int = 9, minute: int = 0) -> str:
    return f"2026-03-{day:02d}T{hour:02d}:{minute:02d}:00Z"


def clash(world):
    """撞单: bob works Company 1 under a duplicate lead, alice claims L-1, bob's claim is refused."""
    world.add_lead("bob", "L-1B", "east", company="company 1", allow_duplicate=True, at=t(2, 10))
    world.claim("bob", "L-1B", at=t(2, 11))
    world.follow_up("bob", "L-1B", "met the buyer at the fair", channel="visit", at=t(2, 12))
    world.claim("alice", "L-1", at=t(3))
    refused = world.store.max_position() + 1
    with pytest.raises(Refused) as caught:  # the refusal is recorded: the evidence shows it
        world.claim("bob", "L-1", at=t(3, 9, 1))
    assert caught.value.code == "lead_owned" and caught.value.details["refusal_position"] == refused
    world.follow_up("alice", "L-1", "sent a quote", channel="email", at=t(3, 15))
    return refused


def test_open_then_award_moves_ownership_with_a_reassignment_naming_the_dispute(world, store_url):
    clash(world)
    opened = run_cli(store_url, "dispute", "open", "L-1", "--reason", "I met them first", "--at", t(4), actor="bob")
    assert opened.code == 0, opened
    assert opened.json["dispute"] == "L-1-D1" and opened.json["lead"] == "L-1"
    listed = run_cli(store_url, "dispute", "list", "--open").json["disputes"]
    assert [(d["dispute"], d["status"], d["owner_at_open"]) for d in listed] == [("L-1-D1", "open", "alice")]

    done = run_cli(store_url, "dispute", "resolve", "L-1-D1", "--award", "bob",
                   "--rationale", "bob's visit on L-1B predates alice's claim", "--at", t(5), actor="audrey")
    assert done.code == 0, done
    assert (done.json["dispute"], done.json["outcome"], done.json["owner"]) == ("L-1-D1", "awarded", "bob")
    moved = [e for e in world.history("L-1")["events"] if e["position"] == done.json["reassignment_position"]]
    assert [(e["type"], e["from_rep"], e["rep"], e["dispute"]) for e in moved] == [
        ("LeadReassigned", "alice", "bob", "L-1-D1")]
    assert "L-1-D1" in moved[0]["reason"]
    assert world.owner("L-1", t(5))["owner"] == "bob"
    assert world.owner("L-1", "2026-03-05T08:59:59Z")["owner"] == "alice"
    assert run_cli(store_url, "dispute", "list", "--open").json["disputes"] == []
    [row] = run_cli(store_url, "dispute", "list").json["disputes"]
    assert (row["status"], row["outcome"], row["owner_after"], row["resolved_by"]) == \
        ("resolved", "awarded", "bob", "audrey")


def test_uphold_keeps_the_owner_and_writes_only_the_ruling(world, store_url):
    clash(world)
    world.open_dispute("bob", "L-1", "mine", at=t(4))
    before = event_count(world)
    done = run_cli(store_url, "dispute", "resolve", "L-1-D1", "--uphold", "--rationale", "alice claimed first",
                   "--at", t(5), actor="root")
    assert done.code == 0, done
    assert (done.json["outcome"], done.json["owner"], done.json["reassignment_position"]) == ("upheld", "alice", None)
    assert event_count(world) == before + 1
    shown = run_cli(store_url, "dispute", "show", "L-1-D1").json
    assert (shown["status"], shown["outcome"], shown["rationale"]) == ("resolved", "upheld", "alice claimed first")
    assert world.owner("L-1")["owner"] == "alice"


def test_a_resolved_dispute_cannot_be_resolved_again(world, store_url):
    clash(world)
    world.open_dispute("bob", "L-1", "mine", at=t(4))
    world.resolve_dispute("audrey", "L-1-D1", uphold=True, rationale="first come", at=t(5))
    before = event_count(world)
    again = run_cli(store_url, "dispute", "resolve", "L-1-D1", "--award", "bob", "--rationale", "changed my mind",
                    "--at", t(6), actor="audrey")
    assert again.code == 1 and again.json["error"]["code"] == "dispute_closed"
    assert event_count(world) == before


def test_who_may_open_and_resolve(world, store_url):
    clash(world)
    start = event_count(world)
    # the role is checked before the ids: a rep is refused even for a dispute that does not exist
    early = run_cli(store_url, "dispute", "resolve", "L-1-D1", "--uphold", "--rationale", "x", actor="bob")
    assert early.code == 4 and early.json["error"]["code"] == "permission_denied"
    missing = run_cli(store_url, "dispute", "resolve", "L-1-D1", "--uphold", "--rationale", "x", actor="audrey")
    assert missing.code == 3 and missing.json["error"]["code"] == "unknown_dispute"
    assert event_count(world) == start
    world.open_dispute("bob", "L-1", "mine", at=t(4))
    before = event_count(world)
    for actor in ("bob", "mgr", "alice"):
        r = run_cli(store_url, "dispute", "resolve", "L-1-D1", "--award", "bob", "--rationale", "x", actor=actor)
        assert r.code == 4 and r.json["error"]["code"] == "permission_denied", actor
    no_actor = run_cli(store_url, "dispute", "resolve", "L-1-D1", "--uphold", "--rationale", "x")
    assert no_actor.code == 2 and no_actor.json["error"]["code"] == "invalid_input"
    assert event_count(world) == before
    world.deactivate_person("root", "carol", at=t(4))
    before = event_count(world)
    inactive = run_cli(store_url, "dispute", "open", "L-1", "--reason", "x", actor="carol")
    assert inactive.code == 1 and inactive.json["error"]["code"] == "actor_inactive"
    both = run_cli(store_url, "dispute", "resolve", "L-1-D1", "--award", "bob", "--uphold", "--rationale", "x",
                   actor="audrey")
    assert both.code == 2 and both.json["error"]["code"] == "invalid_input"
    stranger = run_cli(store_url, "dispute", "resolve", "L-1-D1", "--award", "zed", "--rationale", "x",
                       actor="audrey")
    assert stranger.code == 3 and stranger.json["error"]["code"] == "unknown_person"
    outsider = run_cli(store_url, "dispute", "resolve", "L-1-D1", "--award", "dave", "--rationale", "x",
                       "--at", t(5), actor="audrey")
    assert outsider.code == 1 and outsider.json["error"]["code"] == "not_pool_member"
    unknown = run_cli(store_url, "dispute", "show", "L-1-D9")
    assert unknown.code == 3 and unknown.json["error"]["code"] == "unknown_dispute"
    assert event_count(world) == before
    by_auditor = run_cli(store_url, "dispute", "open", "L-1", "--reason", "audit sample", "--at", t(5), actor="audrey")
    assert by_auditor.code == 0 and by_auditor.json["dispute"] == "L-1-D2"


def test_evidence_holds_everything_an_auditor_needs(world, store_url):
    refused_at = clash(world)
    world.change_rules("root", "east", at=t(3, 12), idle_limit="5d")
    world.open_dispute("bob", "L-1", "I met them at the fair the day before", at=t(4))
    r = run_cli(store_url, "dispute", "show", "L-1-D1")
    assert r.code == 0, r
    d = r.json
    assert (d["dispute"], d["status"], d["opened_by"], d["owner_at_open"]) == ("L-1-D1", "open", "bob", "alice")
    e = d["evidence"]
    assert [(i["owner"], i["to"]) for i in e["ownership"]] == [("alice", None)]
    attempts = [(a["rep"], a["accepted"], a["reason"]) for a in e["attempts"]]
    assert attempts == [("alice", True, None), ("bob", False, "lead_owned")]
    refusal = e["attempts"][1]
    assert refusal["owner_then"] == "alice" and refusal["owner_since_position"] == e["attempts"][0]["position"]
    assert refusal["position"] >= refused_at
    follow = [(f["lead"], f["rep"], f["note"]) for f in e["follow_ups"]]
    assert follow == [("L-1B", "bob", "met the buyer at the fair"), ("L-1", "alice", "sent a quote")]
    assert [(x["version"], x["idle_limit"], x["used"]) for x in e["rules"]] == [(1, "10d", True), (2, "5d", False)]
    assert e["rules"][0]["until"] == t(3, 12)
    [dup] = e["duplicates"]
    assert (dup["lead"], dup["field"], dup["owner"]) == ("L-1B", "company", "bob")
    assert [i["owner"] for i in dup["ownership"]] == ["bob"]
    assert e["involved"] == ["alice", "bob"]
    bob = next(x for x in e["by_rep"] if x["rep"] == "bob")
    assert (bob["refused"], bob["times_held"], bob["follow_ups_on_duplicates"]) == (1, 0, 1)
    assert bob["first_follow_up"].startswith(t(2, 12))
    text = run_cli(store_url, "dispute", "show", "L-1-D1", as_json=False)
    assert text.code == 0
    for heading in ("by rep:", "ownership:", "claim and assignment attempts:", "follow-ups", "rule versions",
                    "duplicate matches:"):
        assert heading in text.stdout
    assert "REFUSED lead_owned" in text.stdout and "{" not in text.stdout


def test_award_of_a_pooled_lead_assigns_it_naming_the_dispute(world):
    world.claim("alice", "L-2", at=t(3))
    world.release("alice", "L-2", at=t(4))
    world.open_dispute("bob", "L-2", "alice released it to dodge me", at=t(5))
    done = world.resolve_dispute("audrey", "L-2-D1", award="bob", rationale="bob had the meeting", at=t(6))
    assert done["owner"] == "bob" and done["previous_owner"] is None
    last = world.history("L-2")["events"][-1]
    assert (last["type"], last["rep"], last["dispute"]) == ("LeadAssigned", "bob", "L-2-D1")
