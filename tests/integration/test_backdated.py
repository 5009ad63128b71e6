"""A command dated in the past (`--at`) is judged by the facts of its own time, on both backends:
it may not go behind the latest change of the holdings it changes (their count and the day's
claims are known as of then), a pool's membership is the one of that time, and nobody is given
a lead before he was registered. Each refusal records nothing but what the spec records."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from ledger.errors import InvalidInput
from tests.conftest import event_count, run_cli

DAY1, DAY2, DAY3 = "2026-03-03T10:00:00Z", "2026-03-04T10:00:00Z", "2026-03-05T10:00:00Z"


def test_a_claim_dated_before_the_reps_last_claim_is_refused_and_records_nothing(world, store_url):
    world.change_rules("root", "east", at=DAY1, claim_limit=10, daily_claim_limit=1)
    world.claim("alice", "L-1", at=DAY2)
    before = event_count(world)
    out = run_cli(store_url, "claim", "L-2", "--at", DAY1, actor="alice")  # a day whose count is not known
    assert out.code == 2 and out.json["error"]["code"] == "invalid_input", out
    assert "holdings" in out.json["error"]["message"]
    assert event_count(world) == before
    refused = run_cli(store_url, "claim", "L-2", "--at", "2026-03-04T11:00:00Z", actor="alice")
    assert refused.code == 1 and refused.json["error"]["code"] == "daily_limit_reached", refused


def test_a_claim_dated_before_a_release_cannot_lift_the_claim_limit_of_its_time(world, store_url):
    world.claim("alice", "L-1", at=DAY1)
    world.claim("alice", "L-2", at=DAY1)  # at the limit of 2
    world.release("alice", "L-1", at=DAY3)
    before = event_count(world)
    out = run_cli(store_url, "claim", "L-3", "--at", DAY2, actor="alice")
    assert out.code == 2 and out.json["error"]["code"] == "invalid_input", out
    assert event_count(world) == before
    assert world.holdings("alice", at=DAY2)["count_by_pool"] == {"east": 2}


def test_a_member_granted_later_may_not_claim_before_his_grant(world, store_url):
    world.add_person("root", "erin", "Erin", "rep", at=DAY1)
    world.grant("root", "east", ["erin"], at=DAY3)
    before = event_count(world)
    out = run_cli(store_url, "claim", "L-1", "--at", DAY2, actor="erin")
    assert out.code == 1 and out.json["error"]["code"] == "not_pool_member", out
    assert event_count(world) == before + 1  # the refusal's record alone
    assert run_cli(store_url, "claim", "L-1", "--at", DAY3, actor="erin").code == 0


@pytest.mark.parametrize("command", [["assign", "L-1"], ["reassign", "L-2", "--reason", "cover"]])
def test_nobody_is_given_a_lead_before_he_was_registered(world, store_url, command):
    world.claim("alice", "L-2", at=DAY1)
    world.add_person("root", "fred", "Fred", "rep", at=DAY3)
    world.grant("root", "east", ["fred"], at=DAY3)
    before = event_count(world)
    out = run_cli(store_url, *command, "--to", "fred", "--at", DAY2, actor="mgr")
    assert out.code == 2 and out.json["error"]["code"] == "invalid_input", out
    assert "fred" in out.json["error"]["message"]
    assert event_count(world) == before


def test_a_command_with_no_time_moves_past_holdings_dated_a_little_ahead(world):
    ahead = datetime.now(UTC) + timedelta(minutes=3)  # the store's clock allows a few minutes
    world.claim("alice", "L-1", at=ahead.isoformat())
    result = world.claim("alice", "L-2")
    assert result["owner"] == "alice"
    with pytest.raises(InvalidInput):  # a time given is checked, not moved
        world.claim("alice", "L-3", at=DAY1)


def test_a_dry_run_sweep_at_the_calendars_last_second_answers(world, store_url):
    out = run_cli(store_url, "sweep", "--now", "9999-12-31T23:59:59Z", "--dry-run", actor="root")
    assert out.code == 0 and out.json["dry_run"] is True, out


def test_a_converted_lead_awarded_to_another_rep_is_his_from_the_award_in_the_read_model(world, store_url):
    """The holdings table agrees with `holdings`: the award starts the new holder's ownership."""
    world.claim("carol", "L-1", at=DAY1)
    world.follow_up("carol", "L-1", "called", at=DAY1)
    world.convert("carol", "L-1", "DEAL-9", at=DAY1)
    world.open_dispute("bob", "L-1", "mine", at=DAY2)
    world.resolve_dispute("audrey", "L-1-D1", award="bob", rationale="bob called first", at=DAY3)
    held = next(h for h in world.holdings("bob")["leads"] if h["lead"] == "L-1")
    world.views.catch_up()
    rows = [json.loads(line) for line in run_cli(store_url, "export", "holdings", as_json=False).stdout.splitlines()]
    row = next(r for r in rows if r["lead"] == "L-1")
    assert (row["rep"], row["since"], row["last_follow_up"]) == ("bob", DAY3, None)
    awarded = world.history("L-1")["ownership"][-1]  # the interval the award started
    assert row["since"] == held["since"] and row["since_position"] == awarded["start_position"]
