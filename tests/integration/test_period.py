"""`report --from --to`: a period's counts checked by hand, and its HTML page in a real browser."""

from __future__ import annotations

import pytest

from ledger.errors import LedgerError
from tests.conftest import event_count, run_cli
from tests.integration.test_report import chromium, needs_browser, probed

FROM, TO = "2026-03-05T00:00:00Z", "2026-03-20T00:00:00Z"
ZERO = {"held_at_start": 0, "held_at_end": 0, "claims": 0, "refused": {}, "assigned_in": 0, "reassigned_in": 0,
        "reassigned_out": 0, "released": 0, "recycled": {"idle_limit": 0, "hold_limit": 0}, "converted": 0,
        "follow_ups": 0, "backdated": 0}


@pytest.fixture
def month(world):
    """Before the period alice claims L-1 and carol L-4; in it, the events counted below; after
    it, alice claims L-5. Every event is recorded now, long after its time: all are backdated."""
    world.claim("alice", "L-1", at="2026-03-03T09:00:00Z")
    world.claim("carol", "L-4", at="2026-03-03T09:00:00Z")
    world.claim("alice", "L-2", at="2026-03-06T09:00:00Z")
    with pytest.raises(LedgerError):
        world.claim("bob", "L-2", at="2026-03-07T09:00:00Z")  # lead_owned, recorded
    world.release("alice", "L-2", at="2026-03-08T09:00:00Z")
    world.claim("bob", "L-2", at="2026-03-09T09:00:00Z")
    world.reassign("mgr", "L-1", "bob", "alice left the account", at="2026-03-10T09:00:00Z")
    world.follow_up("bob", "L-1", "visited", "visit", at="2026-03-11T09:00:00Z")
    world.convert("bob", "L-1", deal="D-1", at="2026-03-12T09:00:00Z")
    world.assign("mgr", "L-3", "carol", at="2026-03-13T09:00:00Z")
    world.sweep("mgr", now="2026-03-14T09:00:00Z")  # recycles carol's L-4 (idle 10d since 03-03)
    world.add_lead("mgr", "L-7", "east", company="Company 7", at="2026-03-15T09:00:00Z")
    world.claim("alice", "L-5", at="2026-03-25T09:00:00Z")
    return world


def test_report_counts_by_hand(month, store_url):
    r = run_cli(store_url, "report", "--from", FROM, "--to", TO).json
    assert (r["from"], r["to"]) == (FROM, TO)
    reps = {x["rep"]: {k: x[k] for k in ZERO} for x in r["reps"]}
    assert set(reps) == {"alice", "bob", "carol", "mgr"}
    assert reps["alice"] == {**ZERO, "held_at_start": 1, "claims": 1, "reassigned_out": 1, "released": 1,
                             "backdated": 2}
    assert reps["bob"] == {**ZERO, "held_at_end": 2, "claims": 1, "refused": {"lead_owned": 1},
                           "reassigned_in": 1, "follow_ups": 1, "converted": 1, "backdated": 4}
    assert reps["carol"] == {**ZERO, "held_at_start": 1, "held_at_end": 1, "assigned_in": 1,
                             "recycled": {"idle_limit": 1, "hold_limit": 0}}
    assert reps["mgr"] == {**ZERO, "backdated": 3}
    pools = {p["pool"]: p for p in r["pools"]}
    east = {k: pools["east"][k] for k in ("pooled_at_start", "pooled_at_end", "added", "claimed", "returned")}
    assert east == {"pooled_at_start": 4, "pooled_at_end": 4, "added": 1, "claimed": 2, "returned": 2}
    assert [s["size"] for s in pools["east"]["sizes"]] == [4, 3, 4, 3, 2, 3, 4]
    assert pools["west"]["pooled_at_start"] == pools["west"]["added"] == 0


def test_report_for_one_rep_and_one_pool(month, store_url):
    bob = run_cli(store_url, "report", "--from", FROM, "--to", TO, "--rep", "bob").json
    assert [x["rep"] for x in bob["reps"]] == ["bob"]
    west = run_cli(store_url, "report", "--from", FROM, "--to", TO, "--pool", "west").json
    assert west["reps"] == [] and [p["pool"] for p in west["pools"]] == ["west"]
    east = run_cli(store_url, "report", "--from", FROM, "--to", TO, "--pool", "east").json
    assert {x["rep"] for x in east["reps"]} == {"alice", "bob", "carol", "mgr"}


@pytest.mark.parametrize("args, code, error", [
    (["--from", TO, "--to", FROM], 2, "invalid_input"),
    (["--from", "soon", "--to", TO], 2, "invalid_input"),
    (["--from", FROM, "--to", TO, "--pool", "nowhere"], 3, "unknown_pool"),
    (["--from", FROM, "--to", TO, "--rep", "nobody"], 3, "unknown_person"),
])
def test_report_refusals(month, store_url, args, code, error):
    before = event_count(month)
    r = run_cli(store_url, "report", *args)
    assert (r.code, r.json["error"]["code"]) == (code, error)
    assert event_count(month) == before


@pytest.fixture
def page(month, store_url, tmp_path):
    path = tmp_path / "period.html"
    r = run_cli(store_url, "report", "--from", FROM, "--to", TO, "--html", str(path))
    assert r.code == 0, r.stdout
    return path


def test_page_is_self_contained(page):
    html = page.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and "Noto Sans CJK SC" in html
    for fetch in ("<script", "<link", "<img", "<iframe", "src=", "href=", "url(", "@import", "http:", "https:"):
        assert fetch not in html, fetch


# Injected into a copy of the page only: counts what the browser drew, and what it fetched.
PROBE = """<script>
addEventListener('load', () => {
  const charts = [...document.querySelectorAll('section')].map(s => ({
    title: s.querySelector('h3').textContent, kind: s.className,
    points: s.querySelectorAll('svg circle.point').length, bars: s.querySelectorAll('svg rect.bar').length,
    width: s.querySelector('svg').getBoundingClientRect().width}));
  const pre = document.createElement('pre');
  pre.id = 'probe';
  pre.textContent = JSON.stringify({charts, fetched: performance.getEntriesByType('resource').length});
  document.body.appendChild(pre);
});
</script>"""


@needs_browser
def test_page_charts_in_a_browser(page, tmp_path):
    laid = probed(page, PROBE, tmp_path)
    assert laid["fetched"] == 0
    charts = {c["title"]: c for c in laid["charts"]}
    assert charts["Pool east"]["points"] == 7 and charts["Pool west"]["points"] == 1
    assert [c["bars"] for c in laid["charts"] if c["kind"] == "rep"] == [8, 8, 8, 8]
    assert all(c["width"] > 300 for c in laid["charts"])


@needs_browser
def test_page_screenshot_is_drawn(page, tmp_path):
    png = tmp_path / "period.png"
    done = chromium(tmp_path, f"--screenshot={png}", "--window-size=1100,1400", page.as_uri())
    assert done.returncode == 0, done.stderr
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000


def test_a_period_before_the_pools_existed_lists_none(month, store_url):
    r = run_cli(store_url, "report", "--from", "2026-01-01T00:00:00Z", "--to", "2026-02-01T00:00:00Z").json
    assert r["pools"] == []
    listed = run_cli(store_url, "report", "--from", "2026-01-01T00:00:00Z", "--to", TO).json
    assert {p["pool"] for p in listed["pools"]} == {"east", "west"}
