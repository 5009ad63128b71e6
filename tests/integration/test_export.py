"""`leadledger export`: the shape of every read model and of the change feed, both formats."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta

import pytest

from tests.conftest import T0, run_cli

MODEL_COLUMNS = {
    "pool_leads": ["lead", "pool", "since", "since_position"],
    "holdings": ["lead", "rep", "pool", "status", "since", "since_position", "last_follow_up",
                 "recycle_at", "recycle_rule", "deal"],
    "ownership_intervals": ["start_position", "lead", "owner", "pool", "from_at", "to_at",
                            "end_position", "started_by", "ended_by", "dispute"],
    "follow_ups": ["position", "lead", "rep", "at", "channel", "note"],
    "disputes": ["dispute", "lead", "status", "opened_by", "opened_at", "reason", "owner_at_open",
                 "open_position", "outcome", "owner_after", "resolved_by", "resolved_at", "rationale"],
}


def d(days: float) -> str:
    base = datetime.fromisoformat(T0.replace("Z", "+00:00"))
    return (base + timedelta(days=days)).isoformat().replace("+00:00", "Z")


@pytest.fixture
def acted(world):
    """Claims, a follow-up, a release, a conversion and a resolved dispute in `world`."""
    world.claim("alice", "L-1", at=d(1))
    world.claim("bob", "L-2", at=d(1))
    world.follow_up("alice", "L-1", "called", channel="call", at=d(2))
    world.release("bob", "L-2", reason="not mine", at=d(3))
    world.claim("carol", "L-3", at=d(3))
    world.convert("carol", "L-3", deal="D-7", at=d(4))
    world.open_dispute("bob", "L-1", "mine first", at=d(5))
    world.resolve_dispute("audrey", "L-1-D1", award="bob", rationale="bob's calls", at=d(6))
    return world


def jsonl(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


def test_every_model_exports_its_rows_as_json_lines(acted, store_url):
    rows = {}
    for model, columns in MODEL_COLUMNS.items():
        out = run_cli(store_url, "export", model)  # --json: the rows themselves, unwrapped
        assert out.code == 0, out
        rows[model] = jsonl(out.stdout)
        assert all(list(r) == columns for r in rows[model]), model
    assert [(r["lead"], r["pool"]) for r in rows["pool_leads"]] == \
        [("L-4", "east"), ("L-5", "east"), ("L-6", "east"), ("L-2", "east")]  # by since_position
    assert {r["lead"]: (r["rep"], r["status"], r["deal"]) for r in rows["holdings"]} == \
        {"L-1": ("bob", "held", None), "L-3": ("carol", "converted", "D-7")}
    held = {r["lead"]: r for r in rows["holdings"]}
    assert held["L-1"]["recycle_rule"] == "idle_limit" and held["L-1"]["recycle_at"] == d(16)
    assert [(r["lead"], r["owner"], r["started_by"], r["ended_by"], r["dispute"])
            for r in rows["ownership_intervals"]] == [
        ("L-1", "alice", "LeadClaimed", "LeadReassigned", None),
        ("L-2", "bob", "LeadClaimed", "LeadReleased", None),
        ("L-3", "carol", "LeadClaimed", None, None),
        ("L-1", "bob", "LeadReassigned", None, "L-1-D1"),
    ]
    assert [(r["lead"], r["rep"], r["channel"], r["note"], r["at"]) for r in rows["follow_ups"]] == \
        [("L-1", "alice", "call", "called", d(2))]
    [dispute] = rows["disputes"]
    assert (dispute["dispute"], dispute["status"], dispute["outcome"], dispute["owner_at_open"],
            dispute["owner_after"]) == ("L-1-D1", "resolved", "awarded", "alice", "bob")


def test_csv_has_a_header_even_without_rows(world, store_url):
    out = run_cli(store_url, "export", "disputes", "--format", "csv")
    assert out.code == 0, out
    assert out.stdout.splitlines() == [",".join(MODEL_COLUMNS["disputes"])]
    pooled = list(csv.DictReader(io.StringIO(run_cli(store_url, "export", "pool_leads", "--format", "csv").stdout)))
    assert [r["lead"] for r in pooled] == [f"L-{i}" for i in range(1, 7)]
    assert pooled[0]["since"] == T0


def test_events_are_the_change_feed_in_position_order(acted, store_url):
    everything = jsonl(run_cli(store_url, "export", "events").stdout)
    positions = [e["position"] for e in everything]
    assert positions == sorted(positions) and len(positions) == acted.store.max_position()
    assert {"position", "stream", "version", "type", "occurred_at", "recorded_at", "actor",
            "actor_kind", "backdated"} <= set(everything[-1])
    middle = positions[len(positions) // 2]
    after = jsonl(run_cli(store_url, "export", "events", "--since", str(middle)).stdout)
    assert after == [e for e in everything if e["position"] > middle]
    assert run_cli(store_url, "export", "events", "--since", str(positions[-1])).stdout == ""

    # a follower that has seen everything gets what came next, and only that
    claim = acted.claim("alice", "L-4", at=d(7))
    new = jsonl(run_cli(store_url, "export", "events", "--since", str(positions[-1])).stdout)
    assert [e["position"] for e in new] == list(range(positions[-1] + 1, acted.store.max_position() + 1))
    [claimed] = [e for e in new if e["position"] == claim["position"]]
    assert (claimed["type"], claimed["lead"], claimed["rep"]) == ("LeadClaimed", "L-4", "alice")


def test_events_as_csv_carry_the_rest_in_a_data_column(acted, store_url):
    out = run_cli(store_url, "export", "events", "--format", "csv", "--since", "0")
    rows = list(csv.DictReader(io.StringIO(out.stdout)))
    assert list(rows[0]) == ["position", "stream", "version", "type", "occurred_at", "recorded_at",
                             "actor", "actor_kind", "backdated", "data"]
    claim = next(r for r in rows if r["type"] == "LeadClaimed")
    assert json.loads(claim["data"])["lead"] == "L-1"
    assert [int(r["position"]) for r in rows] == list(range(1, acted.store.max_position() + 1))


def test_out_file_with_json_prints_a_summary(acted, store_url, tmp_path):
    target = tmp_path / "holdings.jsonl"
    out = run_cli(store_url, "export", "holdings", "--out", str(target))
    assert out.code == 0, out
    assert out.json == {"model": "holdings", "format": "jsonl", "out": str(target), "rows": 2}
    assert [r["lead"] for r in jsonl(target.read_text())] == ["L-3", "L-1"]  # by since_position


def test_bad_export_requests_are_refused(world, store_url, tmp_path):
    unknown = run_cli(store_url, "export", "nonsense")
    assert unknown.code == 2 and unknown.json["error"]["code"] == "invalid_input"
    since = run_cli(store_url, "export", "holdings", "--since", "3")
    assert since.code == 2 and since.json["error"]["code"] == "invalid_input"
    missing = run_cli(f"sqlite:///{tmp_path / 'nothing.db'}", "export", "events")
    assert missing.code == 5 and missing.json["error"]["code"] == "store_unavailable"
