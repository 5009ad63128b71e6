"""The forms data keys and the duplicate check's hashes are stored in: raw bytes in a new
store; hex text in a store made by an earlier version, which keeps working as it did.

Every test runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import hmac

import pytest

from ledger.application import Ledger
from ledger.errors import Refused
from ledger.store.schema import keys_table_sql
from ledger.values import lead_keys
from tests.conftest import T0

PHONE, EMAIL = "+86 139 1234 5678", "wang.xm@example.cn"


def add_world(led: Ledger) -> None:
    led.add_person("root", "mgr", "Mgr", "manager", at=T0)
    led.create_pool("root", "east", "East", at=T0)
    led.grant("root", "east", ["mgr"], at=T0)


def stored_keys(led: Ledger) -> tuple[list[tuple], dict[str, object]]:
    """The key index's rows, and each lead's data key, as the store holds them."""
    personal = led.store.personal
    with led.store.reading() as cur:
        cur.execute(f"SELECT kind, value, lead FROM {personal.index} ORDER BY lead, kind")
        index = [tuple(bytes(v) if isinstance(v, memoryview) else v for v in row) for row in cur.fetchall()]
        cur.execute(f"SELECT lead, key FROM {personal.keys}")
        keys = {lead: bytes(key) if isinstance(key, memoryview) else key for lead, key in cur.fetchall()}
    return index, keys


def expected_index(led: Ledger, leads: dict[str, tuple[str | None, str | None, str | None]]) -> list[tuple]:
    """The index rows of these leads (id -> company, phone, email): HMAC-SHA-256 under the secret."""
    secret = led.store.personal.secret()
    rows = [(kind, hmac.digest(secret, f"{kind}\n{value}".encode(), "sha256"), lead)
            for lead, fields in leads.items() for kind, value in lead_keys(*fields)]
    return sorted(rows, key=lambda r: (r[2], r[0]))


def exercise(led: Ledger) -> None:
    """What the duplicate check and sealing do, on the single and the bulk path."""
    add_world(led)
    led.add_lead("mgr", "A-1", "east", company="Alpha Co", contact="Li Lei", phone=PHONE, at=T0)
    rows = [(2, {"id": "B-1", "company": "Beta Co", "email": EMAIL}), (3, {"id": "B-2", "phone": PHONE}),
            (4, {"id": "B-3", "email": EMAIL})]
    report = led.import_leads("mgr", "east", rows, at=T0)
    assert report["imported"] == 1
    assert [(d["line"], d["duplicate_of"]) for d in report["duplicates"]] == [(3, "A-1"), (4, "B-1")]
    with pytest.raises(Refused) as refused:
        led.add_lead("mgr", "C-1", "east", email=EMAIL.upper(), at=T0)
    assert refused.value.code == "duplicate_lead"
    assert led.lead_show("A-1")["attributes"]["phone"] == PHONE
    assert led.lead_show("B-1")["attributes"]["email"] == EMAIL
    assert led.erase_lead("root", "A-1", "request")["erased"] is True
    assert led.add_lead("mgr", "C-2", "east", phone=PHONE, at=T0)["duplicates"] == []
    assert led.verify()["ok"] is True


def test_a_new_store_holds_raw_keys_and_hashes(ledger):
    exercise(ledger)
    index, keys = stored_keys(ledger)
    assert index == expected_index(ledger, {"B-1": ("Beta Co", None, EMAIL), "C-2": (None, PHONE, None)})
    assert keys["A-1"] is None  # erased: a tombstone
    assert {lead: (type(key), len(key)) for lead, key in keys.items() if lead != "A-1"} == {
        "B-1": (bytes, 32), "C-2": (bytes, 32)}


def test_a_store_made_before_keeps_hex_keys_and_hashes(store_url):
    """A store whose tables an earlier version made (hex text) is read and written as before."""
    with Ledger(store_url) as led:
        led.init("root", "Root Admin", at=T0)
        personal = led.store.personal
        with led.store.writing() as cur:
            cur.execute(f"DROP TABLE {personal.keys}")
            cur.execute(f"CREATE TABLE {personal.keys} (lead TEXT PRIMARY KEY, key TEXT)")
            cur.execute(f"DROP TABLE {personal.index}")
            for statement in keys_table_sql(personal.index, "TEXT"):
                cur.execute(statement)
    with Ledger(store_url) as led:
        exercise(led)
        index, keys = stored_keys(led)
        expected = expected_index(led, {"B-1": ("Beta Co", None, EMAIL), "C-2": (None, PHONE, None)})
        assert index == [(kind, digest.hex(), lead) for kind, digest, lead in expected]
        assert keys["A-1"] is None
        assert {lead: (type(key), len(key)) for lead, key in keys.items() if lead != "A-1"} == {
            "B-1": (str, 64), "C-2": (str, 64)}
        assert bytes.fromhex(keys["B-1"]) == led.store.personal.keys_of(["B-1"])["B-1"]
        many = [(i + 2, {"id": f"M-{i}", "contact": f"Contact {i}", "phone": f"1380000{i:04d}"}) for i in range(150)]
        assert led.import_leads("mgr", "east", many, at=T0)["imported"] == 150  # COPY on PostgreSQL
        assert led.lead_show("M-149")["attributes"]["contact"] == "Contact 149"
        index, keys = stored_keys(led)
        assert {type(key) for lead, key in keys.items() if lead != "A-1"} == {str}
        assert {type(value) for _, value, _ in index} == {str}
        assert led.import_leads("mgr", "east", [(2, {"id": "M-X", "phone": "13800000149"})], at=T0)["duplicates"]


def test_every_imported_lead_gets_a_key_of_its_own(ledger):
    add_world(ledger)
    rows = [(i + 2, {"id": f"L-{i}", "contact": f"Contact {i}"}) for i in range(300)]
    assert ledger.import_leads("mgr", "east", rows, at=T0, batch=120)["imported"] == 300
    keys = ledger.store.personal.keys_of([f"L-{i}" for i in range(300)])
    assert len(keys) == 300 and len(set(keys.values())) == 300
    assert all(len(key) == 32 for key in keys.values())
    assert ledger.lead_show("L-299")["attributes"]["contact"] == "Contact 299"
