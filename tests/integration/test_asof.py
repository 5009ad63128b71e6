"""As of any moment: --at (business time) against --upto (recorded time)."""

from __future__ import annotations

import json

import pytest

from tests.conftest import T0, event_count, run_cli
from tests.integration.asof_world import T, backdated_world

MODELS = ["pool_leads", "holdings", "ownership_intervals", "follow_ups", "disputes", "people", "pools",
          "pool_members"]


@pytest.fixture
def past(world):
    return world, backdated_world(world)


def rows(store_url: str, model: str, *args: str) -> list[dict]:
    r = run_cli(store_url, "export", model, *args, as_json=False)
    assert r.code == 0, r.stderr
    return [json.loads(line) for line in r.stdout.splitlines()]


def test_owner_at_and_upto_differ_after_a_backdated_reassignment(past, store_url):
    _, checkpoint = past
    at = run_cli(store_url, "owner", "L-3", "--at", T).json
    upto = run_cli(store_url, "owner", "L-3", "--upto", str(checkpoint)).json
    assert (at["owner"], at["event"], at["at"]) == ("alice", "LeadReassigned", T)
    assert (upto["owner"], upto["event"], upto["upto"]) == ("bob", "LeadClaimed", checkpoint)
    assert "upto" not in at


def test_lead_show_as_of_both_moments(past, store_url):
    _, checkpoint = past
    at = run_cli(store_url, "lead", "show", "L-3", "--at", T).json
    upto = run_cli(store_url, "lead", "show", "L-3", "--upto", str(checkpoint)).json
    assert (at["owner"], at["last_follow_up"], at["at"]) == ("alice", "2026-03-13T09:00:00Z", T)
    assert (upto["owner"], upto["last_follow_up"], upto["upto"]) == ("bob", None, checkpoint)
    # L-7 was added (backdated to 03-15) after the checkpoint: it did not exist then
    assert run_cli(store_url, "lead", "show", "L-7", "--at", T).json["status"] == "pooled"
    missing = run_cli(store_url, "lead", "show", "L-7", "--upto", str(checkpoint)).json
    assert (missing["status"], missing["pool"], missing["exists"]) == (None, None, False)


def test_holdings_as_of_with_the_deadlines_and_overdue_of_then(past, store_url):
    _, checkpoint = past
    at = run_cli(store_url, "holdings", "alice", "--at", T).json
    assert at["at"] == T and at["now"] == T and at["count_by_pool"] == {"east": 2}
    by_lead = {x["lead"]: x for x in at["leads"]}
    # under rules v1 (idle 10d): L-1 claimed 03-10 09:00 was due 03-20 09:00, overdue at T
    assert (by_lead["L-1"]["recycle_at"], by_lead["L-1"]["rules_version"], by_lead["L-1"]["overdue"]) == (
        "2026-03-20T09:00:00Z", 1, True)
    assert (by_lead["L-3"]["recycle_at"], by_lead["L-3"]["overdue"]) == ("2026-03-23T09:00:00Z", False)
    upto = run_cli(store_url, "holdings", "alice", "--upto", str(checkpoint)).json
    assert [x["lead"] for x in upto["leads"]] == ["L-1"] and upto["upto"] == checkpoint
    assert [x["lead"] for x in run_cli(store_url, "holdings", "bob", "--upto", str(checkpoint)).json["leads"]] == ["L-3"]
    assert run_cli(store_url, "holdings", "bob", "--at", T).json["leads"] == []
    now = {x["lead"]: x for x in run_cli(store_url, "holdings", "alice").json["leads"]}
    assert (now["L-1"]["recycle_at"], now["L-1"]["rules_version"]) == ("2026-03-30T09:00:00Z", 2)  # idle 20d now
    erin = run_cli(store_url, "holdings", "erin", "--upto", str(checkpoint)).json
    assert (erin["leads"], erin["active"]) == ([], False)  # not registered yet


def test_pool_show_as_of(past, store_url):
    _, checkpoint = past
    at = run_cli(store_url, "pool", "show", "east", "--at", T).json
    upto = run_cli(store_url, "pool", "show", "east", "--upto", str(checkpoint)).json
    assert at["pooled"] == ["L-2", "L-4", "L-5", "L-6", "L-7"] and upto["pooled"] == ["L-2", "L-4", "L-5", "L-6"]
    assert at["held_count"] == upto["held_count"] == 2
    assert "erin" in at["members"] and "erin" not in upto["members"]
    assert at["rules"]["idle_limit"] == "10d" and at["rules_version"] == 1  # the 03-25 change came later
    assert run_cli(store_url, "pool", "show", "east").json["rules"]["idle_limit"] == "20d"
    north = run_cli(store_url, "pool", "show", "north", "--upto", str(checkpoint)).json
    assert (north["name"], north["exists"], north["pooled"]) == (None, False, [])


def test_export_of_every_model_as_of_both_moments(past, store_url):
    _, checkpoint = past
    at = {m: rows(store_url, m, "--at", T) for m in MODELS}
    upto = {m: rows(store_url, m, "--upto", str(checkpoint)) for m in MODELS}
    assert [r["lead"] for r in at["pool_leads"]] == ["L-2", "L-4", "L-5", "L-6", "L-7"]
    assert [r["lead"] for r in upto["pool_leads"]] == ["L-2", "L-4", "L-5", "L-6"]
    assert sorted((r["lead"], r["rep"]) for r in at["holdings"]) == [("L-1", "alice"), ("L-3", "alice")]
    assert sorted((r["lead"], r["rep"]) for r in upto["holdings"]) == [("L-1", "alice"), ("L-3", "bob")]
    assert {r["recycle_at"] for r in at["holdings"]} == {"2026-03-20T09:00:00Z", "2026-03-23T09:00:00Z"}
    assert [(r["owner"], r["to_at"]) for r in at["ownership_intervals"]] == [
        ("alice", None), ("bob", "2026-03-12T09:00:00Z"), ("alice", None)]
    assert [(r["owner"], r["to_at"]) for r in upto["ownership_intervals"]] == [("alice", None), ("bob", None)]
    assert [r["lead"] for r in at["follow_ups"]] == ["L-3"] and upto["follow_ups"] == []
    assert [r["dispute"] for r in at["disputes"]] == ["L-1-D1"] and upto["disputes"] == []
    assert "erin" in [r["person"] for r in at["people"]] and "erin" not in [r["person"] for r in upto["people"]]
    assert [r["pool"] for r in at["pools"]] == ["east", "north", "west"]
    assert [r["pool"] for r in upto["pools"]] == ["east", "west"]
    assert ("east", "erin") in [(r["pool"], r["person"]) for r in at["pool_members"]]
    assert ("east", "erin") not in [(r["pool"], r["person"]) for r in upto["pool_members"]]


def test_as_of_the_end_of_the_log_is_what_export_says_now(past, store_url):
    world, _ = past
    top = str(world.store.max_position())
    for model in MODELS:
        assert rows(store_url, model, "--upto", top) == rows(store_url, model), model
        assert rows(store_url, model, "--at", "2030-01-01T00:00:00Z") == rows(store_url, model), model


def test_as_of_summary_with_out_names_the_moment(past, store_url, tmp_path):
    out = tmp_path / "h.jsonl"
    r = run_cli(store_url, "export", "holdings", "--at", T, "--out", str(out)).json
    assert (r["rows"], r["at"]) == (2, T)
    assert len(out.read_text().splitlines()) == 2


def test_before_the_first_event_is_empty_state_not_an_error(past, store_url):
    before = "2020-01-01T00:00:00Z"
    assert run_cli(store_url, "holdings", "alice", "--at", before).json["leads"] == []
    assert run_cli(store_url, "holdings", "alice", "--upto", "0").json["leads"] == []
    assert run_cli(store_url, "owner", "L-1", "--upto", "0").json["owner"] is None
    pool = run_cli(store_url, "pool", "show", "east", "--at", before).json
    assert (pool["exists"], pool["pooled"], pool["held_count"]) == (False, [], 0)
    for model in MODELS:
        assert rows(store_url, model, "--at", before) == [], model
        assert rows(store_url, model, "--upto", "0") == [], model


@pytest.mark.parametrize("args", [
    ["holdings", "alice", "--at", T, "--upto", "3"],
    ["owner", "L-1", "--at", T, "--upto", "3"],
    ["lead", "show", "L-1", "--at", T, "--upto", "3"],
    ["pool", "show", "east", "--at", T, "--upto", "3"],
    ["export", "holdings", "--at", T, "--upto", "3"],
    ["holdings", "alice", "--upto", "999999"],
    ["owner", "L-1", "--upto", "999999"],
    ["pool", "show", "east", "--upto", "-1"],
    ["export", "pools", "--upto", "x"],
    ["lead", "show", "L-1", "--at", "yesterday"],
    ["export", "events", "--upto", "3"],
])
def test_bad_moments_are_invalid_input_and_write_nothing(past, store_url, args):
    world, _ = past
    before = event_count(world)
    r = run_cli(store_url, *args)
    assert r.code == 2, r.stdout
    assert r.json["error"]["code"] == "invalid_input"
    assert event_count(world) == before


def test_unknown_ids_as_of_are_not_found(past, store_url):
    r = run_cli(store_url, "holdings", "nobody", "--at", T)
    assert (r.code, r.json["error"]["code"]) == (3, "unknown_person")
    r = run_cli(store_url, "lead", "show", "L-99", "--upto", "3")
    assert (r.code, r.json["error"]["code"]) == (3, "unknown_lead")


def test_holdings_at_a_fraction_of_a_second(world):
    """Interval times are texts; a fraction of a second sorts before the whole second."""
    world.claim("alice", "L-1", at="2026-03-10T09:00:00.500000Z")
    world.release("alice", "L-1", at="2026-03-10T09:00:01.250000Z")
    held = {"2026-03-10T09:00:00.400000Z": [], "2026-03-10T09:00:00.500000Z": ["L-1"],
            "2026-03-10T09:00:00.900000Z": ["L-1"], "2026-03-10T09:00:01Z": ["L-1"],
            "2026-03-10T09:00:01.250000Z": [], "2026-03-10T09:00:02Z": []}
    for at, leads in held.items():
        assert [x["lead"] for x in world.holdings("alice", at=at)["leads"]] == leads, at
    assert world.holdings("alice", at=T0)["leads"] == []
