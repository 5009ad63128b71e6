"""What every output shows of a lead whose personal data is erased (spec section 7): the erased
fields null with `"erased": true` in machine output, said to be erased in text and HTML, and
everything else (duplicate matches, follow-ups, receipts) as it was.

Every test runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import csv
import io
import json

import pytest

from ledger.application import Ledger
from ledger.errors import IntegrityViolation
from ledger.receipt_check import check_receipt
from tests.conftest import T0, run_cli

PHONE, PHONE_DIGITS, NOTE, DUP_NOTE = "+86 139 1234 5678", "13912345678", "asked for a quote", "met at the fair"


@pytest.fixture
def clash(world: Ledger) -> Ledger:
    """P-1 (a phone) held by alice with a note; bob disputes it, then adds X-2 with the same
    phone (a recorded duplicate match), claims it and logs a follow-up on it."""
    world.add_lead("mgr", "P-1", "east", contact="Wang", phone=PHONE, email="w@example.cn", at=T0)
    world.claim("alice", "P-1", at=T0)
    world.follow_up("alice", "P-1", NOTE, channel="call", at=T0)
    world.open_dispute("bob", "P-1", "I called them first", at=T0)
    world.add_lead("bob", "X-2", "east", phone=PHONE_DIGITS, allow_duplicate=True, at=T0)
    world.claim("bob", "X-2", at=T0)
    world.follow_up("bob", "X-2", DUP_NOTE, channel="visit", at=T0)
    return world


def evidence(led: Ledger, dispute: str) -> dict:
    e = led.dispute_show(dispute)["evidence"]
    return {"duplicates": e["duplicates"],
            "follow_ups": [(f["lead"], f["rep"], f["channel"], f["note"]) for f in e["follow_ups"]],
            "on_duplicates": {b["rep"]: b["follow_ups_on_duplicates"] for b in e["by_rep"]}}


def test_an_erasure_keeps_the_duplicate_matches_either_way_round(clash):
    before = evidence(clash, "P-1-D1")
    [dup] = before["duplicates"]
    assert (dup["lead"], dup["field"], dup["value"], dup["owner"]) == ("X-2", "phone", PHONE_DIGITS, "bob")
    assert before["on_duplicates"] == {"alice": 0, "bob": 1}
    clash.open_dispute("alice", "X-2", "that customer is mine", at=T0)
    assert [(d["lead"], d["value"]) for d in evidence(clash, "X-2-D1")["duplicates"]] == [("P-1", PHONE_DIGITS)]

    clash.erase_lead("root", "P-1", "PIPL art. 47 request")
    after = evidence(clash, "P-1-D1")
    assert after["duplicates"] == [{**dup, "value": None}]  # all but the erased value, as it was
    assert after["on_duplicates"] == before["on_duplicates"]
    assert after["follow_ups"] == [("P-1", "alice", "call", None), ("X-2", "bob", "visit", DUP_NOTE)]
    # the other way round: X-2's own record of the match names the erased lead
    [other] = clash.dispute_show("X-2-D1")["evidence"]["duplicates"]
    assert (other["lead"], other["field"], other["value"], other["erased"], other["owner"]) == (
        "P-1", "phone", None, True, "alice")
    assert [(f["lead"], f["note"], f.get("erased")) for f in clash.dispute_show("X-2-D1")["evidence"]["follow_ups"]] \
        == [("P-1", None, True), ("X-2", DUP_NOTE, None)]


def test_text_and_html_say_erased_and_never_none(clash, store_url, tmp_path):
    clash.erase_lead("root", "P-1", "PIPL art. 47 request")
    page = tmp_path / "evidence.html"
    shown = run_cli(store_url, "dispute", "show", "P-1-D1", "--html", str(page), as_json=False)
    history = run_cli(store_url, "history", "P-1", as_json=False)
    lead = run_cli(store_url, "lead", "show", "P-1", as_json=False)
    assert (shown.code, history.code, lead.code) == (0, 0, 0), (shown, history, lead)
    html = page.read_text(encoding="utf-8")
    for text in (shown.stdout, history.stdout, lead.stdout, html):
        assert "None" not in text and "(erased)" in text
    assert "contact (erased), phone (erased), email (erased)" in shown.stdout
    assert "alice by call: (erased)" in history.stdout
    assert "personal data erased: PIPL art. 47 request" in history.stdout
    assert "<dt>Personal data</dt><dd>erased:" in html
    zh = run_cli(store_url, "--lang", "zh", "history", "P-1", as_json=False).stdout
    assert "alice（电话）：（已删除）" in zh and "None" not in zh


def follow_up_exports(store_url: str, *args: str) -> tuple[list[dict], list[dict]]:
    """`export follow_ups` as JSON Lines and as CSV."""
    lines = run_cli(store_url, "export", "follow_ups", *args, as_json=False)
    table = run_cli(store_url, "export", "follow_ups", "--format", "csv", *args, as_json=False)
    assert (lines.code, table.code) == (0, 0), (lines, table)
    return [json.loads(x) for x in lines.stdout.splitlines()], list(csv.DictReader(io.StringIO(table.stdout)))


def test_exports_show_an_erased_leads_notes_as_null(clash, store_url):
    rows, _ = follow_up_exports(store_url)
    assert [(r["lead"], r["note"], "erased" in r) for r in rows] == [("P-1", NOTE, False), ("X-2", DUP_NOTE, False)]
    upto = clash.store.max_position()
    clash.erase_lead("root", "P-1", "request")
    for args in ((), ("--upto", str(upto))):
        rows, table = follow_up_exports(store_url, *args)
        assert [(r["lead"], r["channel"], r["note"], r.get("erased")) for r in rows] == [
            ("P-1", "call", None, True), ("X-2", "visit", DUP_NOTE, None)], args
        assert [(r["lead"], r["note"], "erased" in r) for r in table] == [("P-1", "", False), ("X-2", DUP_NOTE, False)]
    clash.project(rebuild=True)
    rows, _ = follow_up_exports(store_url)
    assert [(r["note"], r.get("erased")) for r in rows] == [(None, True), (DUP_NOTE, None)]


def test_a_receipt_carries_the_change_feed_object_before_and_after_erasure(clash, tmp_path, store_url):
    positions = [e["position"] for e in clash.iter_events() if e.get("lead") == "P-1"
                 and e["type"] in ("LeadAdded", "FollowUpLogged")]
    kept = {p: clash.receipt(p) for p in positions}
    feed = {e["position"]: e for e in clash.iter_events() if e["position"] in positions}
    assert [kept[p]["event"] for p in positions] == [feed[p] for p in positions]
    assert kept[positions[0]]["event"]["attributes"]["phone"] == PHONE  # shown, not bound
    clash.erase_lead("root", "P-1", "request")
    feed = {e["position"]: e for e in clash.iter_events() if e["position"] in positions}
    for p in positions:
        receipt = clash.receipt(p)
        assert receipt["event"] == feed[p] and receipt["event"]["erased"] is True
        assert check_receipt(kept[p])["ok"] is True and check_receipt(receipt)["ok"] is True
        path = tmp_path / f"{p}.json"
        path.write_text(json.dumps(receipt), encoding="utf-8")
        assert run_cli(store_url, "verify-receipt", str(path)).code == 0
    added = clash.receipt(positions[0])["event"]
    assert (added["attributes"]["phone"], added["duplicates"]) == (None, [])
    tampered = {**clash.receipt(positions[0]), "event": {**added, "pool": "west"}}
    with pytest.raises(IntegrityViolation, match="pool"):
        check_receipt(tampered)  # every field but the personal ones stays bound
