"""Personal data: sealed in every event, erased by deleting the lead's key.

Every test runs on SQLite and PostgreSQL. "Nowhere" is checked by reading every row of every
table of the store (and on SQLite the file's and its write-ahead log's bytes too).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import pytest

from ledger import sealing
from ledger.application import Ledger
from ledger.errors import IntegrityViolation, Refused
from ledger.store import EVENTS_TABLE
from ledger.store.personal import DATA_KEYS_TABLE
from projections.follow_ups import FollowUps
from tests.conftest import PG, T0, event_count, run_cli
from tests.integration.test_fixture_store import expected, old_store  # noqa: F401 (fixtures)

REPO = Path(__file__).resolve().parents[2]
CONTACT, PHONE, EMAIL, NOTE = "Wang Xiaoming", "+86 139 1234 5678", "wang.xm@example.cn", "asked for a quote on 40 units"
PHONE_DIGITS = "13912345678"
SECRETS = [CONTACT, PHONE, PHONE_DIGITS, EMAIL, NOTE]


def rows_of(led: Ledger, tables: str = "all") -> list[str]:
    """Every row of the store's tables (or of its events table alone), each as text."""
    store = led.store
    with store.reading() as cur:
        if store.kind == "sqlite":
            names = [r[0] for r in cur.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()]
        else:
            cur.execute("SELECT quote_ident(table_schema) || '.' || quote_ident(table_name) FROM information_schema.tables "
                        "WHERE table_schema IN (%s, %s)", [store.schema, store.read_schema])
            names = [r[0] for r in cur.fetchall()]
        if tables == "events":
            names = [n for n in names if n.endswith(EVENTS_TABLE)]
        found = []
        for name in sorted(names):
            cur.execute(f"SELECT * FROM {name}")
            found += [repr(tuple(bytes(v).decode("utf-8", "replace") if isinstance(v, (bytes, memoryview)) else v
                                 for v in row)) for row in cur.fetchall()]
    return sorted(found)


def leaks(texts: list[str], secrets: list[str] = SECRETS) -> list[str]:
    return [s for s in secrets if any(s in t for t in texts)]


def file_bytes(led: Ledger) -> bytes:
    path = Path(led.store.path)
    wal = Path(str(path) + "-wal")
    return path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")


@pytest.fixture
def held(world: Ledger) -> Ledger:
    """Lead P-1 with a contact, phone and email, claimed by alice with a follow-up note."""
    world.add_lead("mgr", "P-1", "east", company="Personal Co", contact=CONTACT, phone=PHONE, email=EMAIL, at=T0)
    world.claim("alice", "P-1", at=T0)
    world.follow_up("alice", "P-1", NOTE, channel="call", at=T0)
    world.project()
    return world


def test_no_plaintext_in_the_events_table_ever(held):
    assert leaks(rows_of(held, "events")) == []
    show = held.lead_show("P-1")
    assert (show["attributes"]["contact"], show["attributes"]["phone"], "erased" in show) == (CONTACT, PHONE, False)
    notes = [e.get("note") for e in held.history("P-1")["events"] if e["type"] == "FollowUpLogged"]
    assert notes == [NOTE]


def test_import_seals_too(world, tmp_path):
    rows = [(2, {"id": "I-1", "contact": CONTACT, "phone": PHONE, "email": EMAIL})]
    assert world.import_leads("mgr", "east", rows)["imported"] == 1
    assert leaks(rows_of(world, "events")) == []
    assert world.lead_show("I-1")["attributes"]["email"] == EMAIL
    dup = world.add_lead("mgr", "I-2", "east", phone=PHONE_DIGITS, allow_duplicate=True)
    assert dup["duplicates"] == [{"lead": "I-1", "field": "phone", "value": PHONE_DIGITS}]
    assert leaks(rows_of(world, "events")) == []  # the duplicate match keeps its field and lead only


def test_erasure_leaves_plaintext_nowhere(held, store_url):
    before = held.digest()["digest"]
    count = event_count(held)
    run = run_cli(store_url, "lead", "erase", "P-1", "--reason", "PIPL art. 47 request", actor="root")
    assert run.code == 0, run
    assert run.json == {"lead": "P-1", "event": "PersonalDataErased", "position": count + 1, "erased": True,
                        "plaintext_in_log": False, "occurred_at": run.json["occurred_at"]}
    held.project()
    assert leaks(rows_of(held)) == []
    if held.store.kind == "sqlite":
        assert all(s.encode() not in file_bytes(held) for s in SECRETS)
    assert held.verify()["ok"] is True and held.verify(before)["ok"] is True
    show = held.lead_show("P-1")
    assert show["erased"] is True and show["owner"] == "alice"
    assert {k: show["attributes"][k] for k in ("contact", "phone", "email")} == dict.fromkeys(
        ("contact", "phone", "email"))
    history = held.history("P-1")
    assert history["erased"] is True and history["ownership"][0]["owner"] == "alice"
    follow = [e for e in history["events"] if e["type"] == "FollowUpLogged"]
    assert [(e["note"], e["channel"], e["erased"]) for e in follow] == [(None, "call", True)]
    feed = [e for e in held.iter_events() if e.get("lead") == "P-1"]
    assert feed[0]["attributes"]["phone"] is None and feed[0]["erased"] is True
    assert leaks([json.dumps(list(held.export(m)[1]), ensure_ascii=False)
                  for m in ("follow_ups", "pool_leads", "holdings")]) == []
    # a new lead with the same phone is no duplicate of the erased one
    assert held.add_lead("mgr", "P-2", "east", phone=PHONE)["duplicates"] == []


def test_already_erased_and_permission_denied_write_nothing(held, store_url):
    count = event_count(held)
    run = run_cli(store_url, "lead", "erase", "P-1", "--reason", "x", actor="alice")
    assert (run.code, run.json["error"]["code"]) == (4, "permission_denied")
    run = run_cli(store_url, "lead", "erase", "P-1", "--reason", "x", actor="mgr")
    assert (run.code, run.json["error"]["code"]) == (4, "permission_denied")
    assert event_count(held) == count and held.lead_show("P-1")["attributes"]["contact"] == CONTACT
    assert run_cli(store_url, "lead", "erase", "P-1", "--reason", "x", actor="root").code == 0
    rows = rows_of(held)
    run = run_cli(store_url, "lead", "erase", "P-1", "--reason", "again", actor="root")
    assert (run.code, run.json["error"]["code"]) == (1, "already_erased")
    assert event_count(held) == count + 1 and rows_of(held) == rows
    run = run_cli(store_url, "lead", "erase", "NOPE", "--reason", "x", actor="root")
    assert (run.code, run.json["error"]["code"]) == (3, "unknown_lead")


def test_an_erasure_keeps_the_time_rules_and_later_events_keep_after_it(held, store_url):
    count = event_count(held)
    for at in ("2099-01-01T00:00:00Z", "2020-01-01T00:00:00Z"):  # the future; before the lead's latest event
        run = run_cli(store_url, "lead", "erase", "P-1", "--reason", "x", "--at", at, actor="root")
        assert (run.code, run.json["error"]["code"]) == (2, "invalid_input"), run
    assert event_count(held) == count
    erased_at = run_cli(store_url, "lead", "erase", "P-1", "--reason", "x", actor="root").json["occurred_at"]
    latest = held.history("P-1")["events"][-2]["occurred_at"]
    run = run_cli(store_url, "release", "P-1", "--at", latest, actor="alice")  # after the lead's last but one
    assert (run.code, run.json["error"]["code"], run.json["error"]["latest"]) == (2, "invalid_input", erased_at), run
    assert event_count(held) == count + 1


def test_a_follow_up_after_erasure_stores_no_note_and_makes_no_key(held, store_url):
    held.erase_lead("root", "P-1", "request")
    held.follow_up("alice", "P-1", "called " + CONTACT, channel="call")
    held.project()
    assert leaks(rows_of(held), [CONTACT]) == []
    assert held.store.personal.keys_of(["P-1"])["P-1"] == b""  # still a tombstone: no key again
    assert [e["note"] for e in held.history("P-1")["events"] if e["type"] == "FollowUpLogged"] == [None, None]


def test_a_wrong_key_fails_closed(held, store_url):
    held.add_lead("mgr", "P-3", "east", contact="Other Person")
    personal = held.store.personal
    with held.store.writing() as cur:
        cur.execute(f"UPDATE {personal.keys} SET key = {held.store.param} WHERE lead = {held.store.param}",
                    [sealing.new_key(), "P-1"])
    for args in (("history", "P-1"), ("lead", "show", "P-1"), ("export", "events")):
        run = run_cli(store_url, *args)
        assert (run.code, "Traceback" in run.stderr) == (6, False), run
        if args[0] != "export":
            assert run.json["error"]["code"] == "integrity_violation"


def test_a_ciphertext_moved_to_another_event_does_not_open(held, store_url):
    from ledger import events as ev
    from ledger.store import NewEvent
    stored = held.store.read_stream("lead:P-1")
    follow = next(s for s in stored if isinstance(s.event, ev.FollowUpLogged))
    moved = ev.FollowUpLogged(occurred_at=follow.event.occurred_at, actor="alice", lead="P-1", rep="alice",
                              channel="call", sealed=follow.event.sealed)  # the same lead, a later version
    held.store.append([NewEvent("lead:P-1", stored[-1].version + 1, stored[-1].hash, moved)])
    run = run_cli(store_url, "history", "P-1")
    assert (run.code, run.json["error"]["code"]) == (6, "integrity_violation")
    with pytest.raises(IntegrityViolation):
        sealing.unseal(moved, held.store.personal.keys_of(["P-1"])["P-1"], "lead:P-1", stored[-1].version + 1)


def test_the_dispute_report_of_an_erased_lead(held, store_url, tmp_path):
    with pytest.raises(Refused):
        held.claim("bob", "P-1", at=T0)  # refused, and recorded: evidence
    dispute = held.open_dispute("bob", "P-1", "I called them first")["dispute"]
    held.erase_lead("root", "P-1", "request")
    page = tmp_path / "evidence.html"
    run = run_cli(store_url, "dispute", "show", dispute, "--html", str(page))
    assert run.code == 0, run
    assert run.json["lead_now"]["erased"] is True and run.json["lead_now"]["attributes"]["phone"] is None
    assert [f["note"] for f in run.json["evidence"]["follow_ups"]] == [None]
    assert [a["reason"] for a in run.json["evidence"]["attempts"]] == [None, "lead_owned"]
    assert leaks([page.read_text(encoding="utf-8"), run.stdout]) == []


KILLER = """
import sys, time
from ledger.application import Ledger
from ledger.store.personal import PersonalData
erase = PersonalData.erase
def slow(self, cur, lead):
    erase(self, cur, lead)
    open(sys.argv[2], "w").close()  # the key is deleted, the event not yet committed
    time.sleep(60)
PersonalData.erase = slow
with Ledger(sys.argv[1]) as led:
    led.erase_lead("root", "P-1", "killed half way")
"""


def test_erasure_is_all_or_nothing_under_sigkill(held, store_url, tmp_path):
    count, rows = event_count(held), rows_of(held)
    flag = tmp_path / "inside"
    proc = subprocess.Popen([sys.executable, "-c", KILLER, store_url, str(flag)], cwd=REPO)
    deadline = time.monotonic() + 60
    while not flag.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert flag.exists(), "the erasure never reached its transaction"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    held.store.close()
    with Ledger(store_url) as led:
        assert event_count(led) == count
        assert led.lead_show("P-1")["attributes"]["contact"] == CONTACT
        assert rows_of(led) == rows
        assert led.erase_lead("root", "P-1", "again")["erased"] is True  # the lock was let go
        assert leaks(rows_of(led)) == []


def test_an_erasure_while_a_batch_applies_the_leads_notes_leaves_none(held, store_url, monkeypatch):
    """A projector opened a new note under the lead's key, and an erasure comes before its
    batch commits: the erasure waits for the batch (it locks the tracking rows a batch holds),
    then blanks what the batch wrote, rather than committing first and leaving the batch to
    write the note after it."""
    held.follow_up("alice", "P-1", NOTE + ", again", channel="call", at=T0)  # not applied yet
    paused, release = threading.Event(), threading.Event()
    applied = FollowUps.on_FollowUpLogged

    def pausing(self, batch, position, e):
        applied(self, batch, position, e)
        if e.lead == "P-1" and not paused.is_set():
            paused.set()
            release.wait(60)

    monkeypatch.setattr(FollowUps, "on_FollowUpLogged", pausing)

    def project() -> None:
        with Ledger(store_url) as led:  # its models made now, with the pausing handler
            led.project()

    projector = threading.Thread(target=project)
    projector.start()
    assert paused.wait(60), "the batch never reached the note"
    done: dict = {}

    def erase() -> None:
        with Ledger(store_url) as led:
            done["erased"] = led.erase_lead("root", "P-1", "request")["erased"]

    eraser = threading.Thread(target=erase)
    eraser.start()
    eraser.join(1.0)
    waited = eraser.is_alive()
    release.set()
    projector.join(60)
    eraser.join(60)
    assert done == {"erased": True}
    assert leaks(rows_of(held)) == []
    assert waited, "the erasure did not wait for the batch"


def test_the_secret_and_keys_are_outside_the_log(held):
    with held.store.reading() as cur:
        table = held.store.personal.keys
        cur.execute(f"SELECT COUNT(*) FROM {table}")
        assert cur.fetchone()[0] == 7  # one per lead
    assert DATA_KEYS_TABLE in table


def test_a_seal_opens_only_under_its_key_and_event():
    from datetime import UTC, datetime

    from ledger import events as ev
    key = sealing.new_key()
    e = ev.FollowUpLogged(occurred_at=datetime.now(UTC), actor="a", lead="L", rep="a", note="n")
    s = sealing.seal(e, key, "lead:L", 3)
    assert s.note is None and sealing.unseal(s, key, "lead:L", 3).note == "n"
    with pytest.raises(IntegrityViolation):
        sealing.unseal(s, key, "lead:L", 4)
    with pytest.raises(IntegrityViolation):
        sealing.unseal(s, sealing.new_key(), "lead:L", 3)


def test_erasure_on_a_store_written_before_sealing(old_store, backend):
    """Events of an old store hold plaintext: erasure removes it from every table but the log
    (which no migration may rewrite), says so, and the store still verifies."""
    from tests.integration.test_fixture_store import v1
    if backend == "postgresql":  # the copy was made by this version's init: make it as old as the file
        schema = old_store.rsplit("schema=", 1)[1]
        with psycopg.connect(PG, autocommit=True) as con:
            con.execute(f'DROP TABLE "{schema}".leadledger_secrets, "{schema}".leadledger_data_keys')
    with Ledger(old_store, clock=lambda: v1.NOW) as led:
        led.project()
        digest = led.digest()["digest"]
        show = led.lead_show("L-1")
        phone = show["attributes"]["phone"]
        assert phone and "erased" not in show  # plaintext of old events still reads
        with pytest.raises(Refused) as refused:  # the old index, hashed on upgrade, still finds it
            led.add_lead("mgr-li", "N-1", "east", phone=phone, at=v1.NOW)
        assert (refused.value.code, refused.value.details["existing"]) == ("duplicate_lead", "L-1")
    with Ledger(old_store) as led:
        done = led.erase_lead("root", "L-1", "request")
        assert (done["erased"], done["plaintext_in_log"]) == (True, True)
        led.project()
        notes = [(r["note"], r["erased"]) for r in led.export("follow_ups")[1] if r["lead"] == "L-1"]
        assert notes and set(notes) == {(None, True)}
        assert led.lead_show("L-1")["attributes"]["phone"] is None
        assert [e["note"] for e in led.history("L-1")["events"] if e["type"] == "FollowUpLogged"] == [None] * len(notes)
        assert led.verify(digest)["ok"] is True
        non_log = [r for r in rows_of(led) if "LeadAdded" not in r and "FollowUpLogged" not in r]
        assert leaks(non_log, ["首次电话沟通"]) == []
