"""owner --at, history, holdings and explain, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest

from ledger.errors import Refused
from ledger.state import Head, Lead, lead_stream, replay
from ledger.values import format_time, parse_time
from tests.conftest import event_count, run_cli

MICRO = timedelta(microseconds=1)


def t(day: int, hour: int = 9, minute: int = 0) -> str:
    return f"2026-03-{day:02d}T{hour:02d}:{minute:02d}:00Z"


def busy_lead(world):
    """L-1 through claim, follow-up, release, claim, refusal, convert after a reassignment."""
    world.claim("alice", "L-1", at=t(3))
    world.follow_up("alice", "L-1", "called", channel="call", at=t(3, 10))
    world.release("alice", "L-1", at=t(4))
    world.claim("bob", "L-1", at=t(4))  # same instant as the release
    with pytest.raises(Refused) as refused:
        world.claim("carol", "L-1", at=t(4, 12))
    assert (refused.value.code, refused.value.details["owner"]) == ("lead_owned", "bob")
    world.reassign("mgr", "L-1", "carol", "territory change", at=t(5))
    world.convert("carol", "L-1", deal="D-9", at=t(6))
    d = world.open_dispute("alice", "L-1", "carol took over my customer", at=t(7))
    world.resolve_dispute("audrey", d["dispute"], award="alice", rationale="alice's deal work", at=t(7))
    world.follow_up("alice", "L-1", "handover call", at=t(8))


def full_replay_owner(ledger, lead_id, when):
    """The oracle: replay every event done by `when` (an event at `when` counts)."""
    stream = lead_stream(lead_id)
    done = [s for s in ledger.store.read_stream(stream) if s.event.occurred_at <= when]
    lead = replay(Lead(Head(stream), lead_id), done)
    return {"owner": lead.owner, "pool": lead.pool or None, "status": lead.status if lead.exists else None,
            "since": format_time(lead.placed_at), "position": lead.placed_position, "event": lead.placed_by}


def test_owner_at_every_boundary_matches_a_full_replay(world):
    busy_lead(world)
    stored = world.store.read_stream(lead_stream("L-1"))
    probes = set()
    for s in stored:
        at = s.event.occurred_at
        probes |= {at - MICRO, at, at + MICRO}
    for when in sorted(probes):
        got = world.owner("L-1", when)
        assert got["at"] == format_time(when)
        assert {k: got[k] for k in ("owner", "pool", "status", "since", "position", "event")} \
            == full_replay_owner(world, "L-1", when), when


def test_owner_at_boundaries_by_hand(world, store_url):
    busy_lead(world)

    def owner(at):
        r = run_cli(store_url, "owner", "L-1", "--at", at)
        assert r.code == 0, r
        return r.json

    before = owner("2026-03-03T08:59:59.999999Z")
    assert (before["owner"], before["status"], before["event"]) == (None, "pooled", "LeadAdded")
    at_claim = owner(t(3))
    assert (at_claim["owner"], at_claim["status"], at_claim["since"]) == ("alice", "held", t(3))
    # release and bob's claim share one instant: both count as done at that instant
    at_swap = owner(t(4))
    assert (at_swap["owner"], at_swap["event"]) == ("bob", "LeadClaimed")
    assert owner("2026-03-04T08:59:59.999999Z")["owner"] == "alice"
    assert owner(t(4, 12))["owner"] == "bob"  # a refused claim changes nothing
    assert owner(t(5))["owner"] == "carol"
    converted = owner(t(6))
    assert (converted["owner"], converted["status"], converted["event"]) == ("carol", "converted", "LeadReassigned")
    after = owner(t(7))  # a converted lead reassigned stays converted
    assert (after["owner"], after["status"], after["event"]) == ("alice", "converted", "LeadReassigned")
    assert after["position"] == world.history("L-1")["ownership"][-1]["start_position"]
    nothing = owner("2026-03-01T00:00:00Z")
    assert (nothing["owner"], nothing["pool"], nothing["status"]) == (None, None, None)


def test_owner_refusals(world, store_url):
    bad = run_cli(store_url, "owner", "L-1", "--at", "yesterday")
    assert bad.code == 2 and bad.json["error"]["code"] == "invalid_input"
    missing = run_cli(store_url, "owner", "L-404")
    assert missing.code == 3 and missing.json["error"]["code"] == "unknown_lead"


def test_history_shape_and_timeline(world, store_url):
    busy_lead(world)
    r = run_cli(store_url, "history", "L-1")
    assert r.code == 0
    h = r.json
    types = [e["type"] for e in h["events"]]
    assert types == ["LeadAdded", "LeadClaimed", "FollowUpLogged", "LeadReleased", "LeadClaimed", "ClaimRefused",
                     "LeadReassigned", "LeadConverted", "DisputeOpened", "DisputeResolved", "LeadReassigned",
                     "FollowUpLogged"]
    assert [e["version"] for e in h["events"]] == list(range(1, len(types) + 1))
    positions = [e["position"] for e in h["events"]]
    assert positions == sorted(positions)
    for e in h["events"]:
        assert {"position", "version", "type", "occurred_at", "recorded_at", "actor", "actor_kind",
                "backdated"} <= e.keys()
        assert e["backdated"] is True  # every event here was written for March 2026, long before now
    assert [(i["owner"], i["ended_by"]) for i in h["ownership"]] == [
        ("alice", "LeadReleased"), ("bob", "LeadReassigned"), ("carol", "LeadReassigned"), ("alice", None)]
    assert h["ownership"][0]["end_position"] == positions[3]
    assert h["ownership"][1]["start_position"] == positions[4]
    assert h["ownership"][-1]["to"] is None and h["ownership"][-1]["end_position"] is None
    [refused] = h["refused"]
    assert (refused["position"], refused["reason"], refused["actor"]) == (positions[5], "lead_owned", "carol")
    text = run_cli(store_url, "history", "L-1", as_json=False)
    assert text.code == 0 and "ownership:" in text.stdout and "refused attempts:" in text.stdout
    assert "{" not in text.stdout


def test_history_marks_backdated_only_when_more_than_five_minutes_off(ledger):
    # An --at more than 5 minutes ahead of the store's clock is refused now, so
    # the backdated event is the one more than 5 minutes behind it.
    now = ledger.clock()
    ledger.add_person("root", "alice", "A", "rep", at=now - timedelta(minutes=20))
    ledger.create_pool("root", "p", "P", at=now - timedelta(minutes=20))
    ledger.grant("root", "p", ["alice"], at=now - timedelta(minutes=20))
    ledger.add_lead("root", "L-1", "p", at=now - timedelta(minutes=6))
    ledger.claim("alice", "L-1", at=now - timedelta(minutes=4))
    ledger.follow_up("alice", "L-1", "ahead", at=now + timedelta(minutes=4))
    flags = [e["backdated"] for e in ledger.history("L-1")["events"]]
    assert flags == [True, False, False]


def test_holdings_deadlines_and_the_rule_that_sets_them(world, store_url):
    world.claim("alice", "L-1", at=t(3))
    world.claim("alice", "L-2", at=t(3))
    world.follow_up("alice", "L-2", "visit", at=t(10))
    # rules v2: hold limit 12d makes L-2's hold deadline come before its idle deadline
    world.change_rules("root", "east", at=t(12), hold_limit="12d")
    r = run_cli(store_url, "holdings", "alice")
    assert r.code == 0, r
    rows = {x["lead"]: x for x in r.json["leads"]}
    assert rows["L-1"]["since"] == t(3) and rows["L-1"]["last_follow_up"] is None
    assert (rows["L-1"]["recycle_at"], rows["L-1"]["recycle_rule"]) == (t(13), "idle_limit")
    assert (rows["L-2"]["last_follow_up"], rows["L-2"]["recycle_at"], rows["L-2"]["recycle_rule"]) \
        == (t(10), t(15), "hold_limit")
    assert rows["L-2"]["rules_version"] == 2
    assert r.json["count_by_pool"] == {"east": 2}
    text = run_cli(store_url, "holdings", "alice", as_json=False)
    assert "hold_limit (rules v2)" in text.stdout and "L-2" in text.stdout
    unknown = run_cli(store_url, "holdings", "zed")
    assert unknown.code == 3 and unknown.json["error"]["code"] == "unknown_person"


def test_explain_a_held_lead_names_claim_rules_and_deadlines(world, store_url):
    world.claim("alice", "L-1", at=t(3))
    world.follow_up("alice", "L-1", "call", at=t(5))
    e = world.explain("L-1", at=t(6))
    assert (e["status"], e["owner"]) == ("held", "alice")
    assert e["because"]["type"] == "LeadClaimed" and e["because"]["actor"] == "alice"
    assert e["decided_under"]["version"] == 1 and e["decided_under"]["claim_limit"] == 2
    assert e["facts"]["claimed_at"] == t(3) and e["facts"]["last_follow_up"] == t(5)
    assert e["facts"]["claim_limit"] == 2 and e["facts"]["held_before_claim"] == 0
    deadlines = {d["rule"]: d for d in e["deadlines"]}
    assert deadlines["idle_limit"]["at"] == t(15) and deadlines["idle_limit"]["governs"]
    assert deadlines["hold_limit"]["at"] == "2026-04-02T09:00:00Z" and not deadlines["hold_limit"]["governs"]
    assert e["facts"]["warn_at"] == t(13)
    assert "claimed it" in e["summary"] and "idle_limit" in e["summary"]
    text = run_cli(store_url, "explain", "L-1", as_json=False)
    assert text.code == 0 and "facts checked:" in text.stdout and "deadlines:" in text.stdout


def test_explain_after_a_recycle(world):
    world.claim("alice", "L-1", at=t(3))
    world.sweep("mgr", now=t(14))
    e = world.explain("L-1", at=t(15))
    assert (e["status"], e["owner"]) == ("pooled", None)
    assert e["because"]["type"] == "LeadRecycled" and e["because"]["actor_kind"] == "rule"
    assert e["facts"]["recycle_rule"] == "idle_limit" and e["facts"]["recycle_limit"] == "10d"
    assert e["facts"]["recycle_deadline"] == t(13) and e["facts"]["held_since"] == t(3)
    assert e["decided_under"]["version"] == 1
    [cool] = e["cooldowns"]
    assert (cool["rep"], cool["until"], cool["active"]) == ("alice", t(21), True)
    assert "recycled from alice" in e["summary"] and "idle_limit" in e["summary"]
    assert "alice may not claim it again until " + t(21) in e["summary"]


def test_explain_after_a_reassignment(world):
    world.claim("alice", "L-1", at=t(3))
    world.reassign("mgr", "L-1", "bob", "alice moved to north", at=t(4))
    e = world.explain("L-1", at=t(4))
    assert (e["owner"], e["because"]["type"], e["because"]["actor"]) == ("bob", "LeadReassigned", "mgr")
    assert e["dispute"] is None
    assert "reassigned from alice because: alice moved to north" in e["summary"]
    assert {c["rep"]: c["active"] for c in e["cooldowns"]} == {"alice": True}


def test_explain_after_a_dispute_award(world):
    world.claim("alice", "L-1", at=t(3))
    d = world.open_dispute("bob", "L-1", "I met them at the fair first", at=t(4))
    world.resolve_dispute("audrey", d["dispute"], award="bob", rationale="bob's visit came first", at=t(5))
    e = world.explain("L-1", at=t(5))
    assert (e["owner"], e["because"]["dispute"]) == ("bob", d["dispute"])
    assert e["dispute"]["dispute"] == d["dispute"] and e["dispute"]["outcome"] == "awarded"
    assert e["dispute"]["rationale"] == "bob's visit came first"
    assert f"ruling on dispute {d['dispute']}" in e["summary"] and "bob's visit came first" in e["summary"]


def test_explain_after_a_deactivation(world):
    world.claim("alice", "L-1", at=t(3))
    world.claim("alice", "L-2", at=t(3))
    world.deactivate_person("root", "alice", at=t(4))
    e = world.explain("L-1", at=t(4))
    assert (e["status"], e["because"]["type"], e["because"]["actor"]) == ("pooled", "LeadReturned", "root")
    assert "owner alice deactivated" in e["summary"]
    world.claim("bob", "L-2", at=t(5))
    world.deactivate_person("root", "bob", reassign_to="carol", at=t(6))
    e2 = world.explain("L-2", at=t(6))
    assert (e2["owner"], e2["because"]["type"]) == ("carol", "LeadReassigned")
    assert "owner bob deactivated" in e2["summary"]


def test_convert_records_who_held_it_for_commission(world, store_url):
    world.claim("alice", "L-1", at=t(3))
    done = run_cli(store_url, "convert", "L-1", "--deal", "D-2026-017", "--at", t(4), actor="alice")
    assert done.code == 0 and (done.json["owner"], done.json["deal"]) == ("alice", "D-2026-017")
    d = world.open_dispute("bob", "L-1", "mine", at=t(5))
    world.resolve_dispute("audrey", d["dispute"], award="bob", rationale="later ruling", at=t(6))
    h = world.history("L-1")
    [conv] = [e for e in h["events"] if e["type"] == "LeadConverted"]
    assert (conv["rep"], conv["deal"], conv["position"]) == ("alice", "D-2026-017", done.json["position"])
    assert world.owner("L-1", t(4))["owner"] == "alice"  # who held it when the deal was made
    e = world.explain("L-1", at=t(6))
    assert (e["owner"], e["facts"]["converted_by"], e["facts"]["deal"]) == ("bob", "alice", "D-2026-017")


def test_read_commands_with_an_inactive_reader_write_nothing(world, store_url):
    world.deactivate_person("root", "dave", at=t(3))
    before = event_count(world)
    for args in (["owner", "L-1"], ["history", "L-1"], ["explain", "L-1"], ["holdings", "alice"]):
        r = run_cli(store_url, *args, actor="dave")
        assert r.code == 1 and r.json["error"]["code"] == "actor_inactive", args
    assert event_count(world) == before


def test_owner_at_is_the_time_given_in_any_zone(world):
    world.claim("alice", "L-1", at=t(3))
    assert world.owner("L-1", "2026-03-03T17:00:00+08:00")["owner"] == "alice"
    assert world.owner("L-1", "2026-03-03T16:59:59+08:00")["owner"] is None
    assert parse_time(world.owner("L-1", t(3))["at"]) == parse_time(t(3))
