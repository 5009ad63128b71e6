"""`Ledger.import_leads` of leads reps already hold, and its dry run, on SQLite and PostgreSQL.
See tests/conftest.py for the `world` fixture."""

from __future__ import annotations

import tracemalloc
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ledger.application import Ledger
from ledger.errors import LedgerError
from ledger.values import format_time
from tests.conftest import T0, event_count


def ago(days: float) -> datetime:
    return (datetime.now(UTC) - timedelta(days=days)).replace(microsecond=0)


@pytest.fixture
def north(world: Ledger) -> Ledger:
    """Pool `north`: idle_limit 30d, hold_limit 90d, claim_limit 50; members mgr, alice, bob."""
    world.create_pool("root", "north", "North", at=T0, idle_limit="30d", hold_limit="90d")
    world.grant("root", "north", ["mgr", "alice", "bob"], at=T0)
    return world


def rows(*items: dict[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    return [(i + 2, item) for i, item in enumerate(items)]


def test_held_rows_are_assigned_with_their_deadlines_and_swept(north):
    t = {n: ago(n) for n in (5, 20, 25, 40, 45)}
    report = north.import_leads("mgr", "north", rows(
        {"id": "H-1", "company": "Held One", "owner": "alice", "owner_since": t[25], "last_follow_up": t[20]},
        {"id": "H-2", "company": "Held Two", "owner": "alice", "owner_since": t[45], "last_follow_up": t[40]},
        {"id": "H-3", "company": "Held Three", "owner": "bob", "last_follow_up": t[5]},  # no owner_since
        {"id": "P-1", "company": "Pooled"},
    ))
    assert (report["imported"], report["assigned"], report["rejected"], report["over_limit"]) == (4, 3, [], [])
    mine = {x["lead"]: x for x in north.holdings("alice")["leads"]}
    assert set(mine) == {"H-1", "H-2"}
    assert mine["H-1"]["recycle_at"] == format_time(t[20] + timedelta(days=30))  # 10 days from now
    assert (mine["H-1"]["recycle_rule"], mine["H-1"]["overdue"], mine["H-2"]["overdue"]) == ("idle_limit", False, True)
    assert mine["H-1"]["since"] == format_time(t[25])
    history = north.history("H-1")["events"]
    assert [(e["type"], e["occurred_at"]) for e in history] == [
        ("LeadAdded", format_time(t[25])), ("LeadAssigned", format_time(t[25])),
        ("FollowUpLogged", format_time(t[20]))]
    assert (history[1]["reason"], history[2]["channel"], history[2]["note"]) == ("import", "other", "imported")
    governing = [x for x in north.explain("H-1")["deadlines"] if x["governs"]]
    assert [(x["rule"], x["at"]) for x in governing] == [("idle_limit", mine["H-1"]["recycle_at"])]
    bob = north.holdings("bob")["leads"][0]  # he took it by his last follow-up at the latest
    assert (bob["since"], bob["last_follow_up"]) == (format_time(t[5]), format_time(t[5]))
    assert north.lead_show("P-1")["status"] == "pooled"
    assert north.holdings("alice")["count_by_pool"] == {"north": 2}
    swept = north.sweep("mgr")
    assert [(r["lead"], r["rule"], r["deadline"]) for r in swept["recycled"]] == \
        [("H-2", "idle_limit", format_time(t[40] + timedelta(days=30)))]
    assert north.owner("H-2")["owner"] is None and north.owner("H-1")["owner"] == "alice"
    assert north.release("alice", "H-1")["status"] == "pooled"  # his holdings stream moved on as a claim's does


def test_owner_must_be_an_active_holder_in_the_pool(north):
    north.deactivate_person("root", "carol", at=T0)
    before = event_count(north)
    report = north.import_leads("mgr", "east", rows(
        {"id": "R-1", "owner": "nobody"},
        {"id": "R-2", "owner": "carol"},
        {"id": "R-3", "owner": "dave"},
        {"id": "R-4", "owner": "audrey"},
        {"id": "R-5", "owner": "alice", "owner_since": datetime.now(UTC) + timedelta(days=2)},
        {"id": "R-6", "owner": "alice", "owner_since": ago(3), "last_follow_up": ago(4)},
        {"id": "R-7", "owner": "alice", "last_follow_up": "not a time"},
        {"id": "R-8", "owner": "alice"},
    ))
    errors = {x["line"] - 2: x["error"] for x in report["rejected"]}
    assert sorted(errors) == [0, 1, 2, 3, 4, 5, 6]
    assert "unknown" in errors[0] and "deactivated" in errors[1]
    assert "not a member of pool east" in errors[2] and "only reps and managers" in errors[3]
    assert "later than the import's time" in errors[4] and "earlier than owner_since" in errors[5]
    assert "last_follow_up" in errors[6]
    assert (report["imported"], report["assigned"]) == (1, 1)
    assert event_count(north) == before + 3  # added, assigned, his holdings
    with pytest.raises(LedgerError) as e:
        north.lead_show("R-1")
    assert e.value.code == "unknown_lead"


def test_over_limit_is_listed_not_refused(world):
    world.claim("alice", "L-1")
    report = world.import_leads("mgr", "east", rows(*({"id": f"O-{i}", "owner": "alice"} for i in range(3))))
    assert report["assigned"] == 3
    assert report["over_limit"] == [{"rep": "alice", "pool": "east", "held": 4, "claim_limit": 2}]
    assert world.holdings("alice")["count_by_pool"] == {"east": 4}
    with pytest.raises(LedgerError) as e:
        world.claim("alice", "L-2")
    assert e.value.code == "claim_limit_reached" and e.value.details["held"] == 4


def test_a_rep_may_not_import_nor_anyone_into_a_pool_he_is_not_in(world):
    for actor, code in (("alice", "permission_denied"), ("audrey", "permission_denied")):
        before = event_count(world)
        with pytest.raises(LedgerError) as e:
            world.import_leads(actor, "east", rows({"id": "X-1", "owner": "alice"}), dry_run=True)
        assert e.value.code == code and event_count(world) == before
        with pytest.raises(LedgerError) as e:
            world.import_leads(actor, "east", rows({"id": "X-1", "owner": "alice"}))
        assert e.value.code == code and event_count(world) == before
    with pytest.raises(LedgerError) as e:
        world.import_leads("mgr", "east", rows({"id": "X-1"}), at="2099-01-01T00:00:00Z")
    assert e.value.code == "invalid_input"


def mixed_rows() -> list[tuple[int, dict[str, Any] | str]]:
    return [
        (2, {"id": "M-1", "company": "Em One", "owner": "alice", "owner_since": ago(3)}),
        (3, {"id": "M-2", "phone": "13800000001"}),                # duplicate of L-1 in the store
        (4, "broken CSV: a quote"),                                # a file-level rejection
        (5, {"id": "M-3", "company": "Shared Co", "owner": "bob"}),
        (6, {"id": "M-4", "company": "shared co"}),                # duplicate of M-3, an earlier batch
        (7, {"id": "L-2", "company": "Exists"}),                   # skipped: in the store
        (8, {"id": "M-5", "owner": "ghost"}),                      # rejected: unknown owner
        (9, {"id": "M-6", "owner": "alice"}),
        (10, {"id": "M-7", "owner": "alice", "last_follow_up": ago(1)}),
    ]


def test_dry_run_checks_everything_writes_nothing_and_says_the_same(world):
    before = event_count(world)
    dry = world.import_leads("mgr", "east", mixed_rows(), batch=2, dry_run=True)
    assert event_count(world) == before
    real = world.import_leads("mgr", "east", mixed_rows(), batch=2)
    assert dry.pop("dry_run") is True and real.pop("dry_run") is False
    assert dry == real
    assert (real["imported"], real["assigned"], real["skipped_existing"]) == (4, 4, 1)
    assert [(x["line"], x["duplicate_of"]) for x in real["duplicates"]] == [(3, "L-1"), (6, "M-3")]
    assert [x["line"] for x in real["rejected"]] == [4, 8]
    assert real["over_limit"] == [{"rep": "alice", "pool": "east", "held": 3, "claim_limit": 2}]
    again = world.import_leads("mgr", "east", mixed_rows(), batch=2, dry_run=True)
    assert (again["imported"], again["skipped_existing"], again["assigned"]) == (0, 5, 0)
    assert [x["line"] for x in again["duplicates"]] == [3, 6]


def plain_rows(count: int):
    return ((i + 2, {"id": f"B-{i}", "company": f"Bulk {i}", "phone": f"139{i:08d}"}) for i in range(count))


def test_a_dry_run_holds_no_more_memory_than_the_import(world):
    tracemalloc.start()
    try:
        world.import_leads("mgr", "east", plain_rows(20_000), batch=2_000, dry_run=True)
        dry = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        world.import_leads("mgr", "east", plain_rows(20_000), batch=2_000)
        real = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert dry <= real, (dry, real)


def test_claims_racing_an_import_of_held_rows_keep_the_holdings_right(north, store_url):
    """alice claims while an import gives her leads: each batch takes her holdings stream's
    next versions, so a claim landing meanwhile makes it clash and be decided again."""
    import threading

    for i in range(60):
        north.add_lead("mgr", f"Q-{i}", "north")
    stop, started = threading.Event(), threading.Event()
    claimed: list[str] = []

    def churn() -> None:
        with Ledger(store_url) as other:
            for i in range(60):
                if stop.is_set():
                    return
                try:
                    other.claim("alice", f"Q-{i}")
                    claimed.append(f"Q-{i}")
                    started.set()
                except LedgerError as e:  # over the limit: recorded, after her holdings were read
                    assert e.code == "claim_limit_reached", e.to_dict()

    worker = threading.Thread(target=churn)
    worker.start()
    assert started.wait(60)
    try:
        report = north.import_leads("mgr", "north", rows(*({"id": f"S-{i}", "owner": "alice"} for i in range(120))),
                                    batch=20)
    finally:
        stop.set()
        worker.join(60)
    assert report["assigned"] == 120
    held = north.holdings("alice")["count_by_pool"]["north"]
    assert held == 120 + len(claimed) == north.repo.holdings("alice", "north").held
    assert north.verify()["ok"]
