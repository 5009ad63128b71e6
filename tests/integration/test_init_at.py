"""`init --at`: the first admin is registered at the business time given, like any other write."""

from __future__ import annotations

from ledger.application import Ledger
from tests.conftest import run_cli

AT = "2026-01-05T08:30:00Z"


def test_init_at_dates_the_first_admin(store_url):
    run = run_cli(store_url, "init", "--admin", "root", "--name", "Root", "--at", AT)
    assert run.code == 0, run
    assert run.json["created"] is True
    with Ledger(store_url) as led:
        log = led.store.read_log(after=0, limit=10)
        assert [type(s.event).__name__ for s in log] == ["PersonRegistered"]
        assert log[0].event.occurred_at.isoformat().replace("+00:00", "Z") == AT
        people = {p["person"]: p for p in led.person_list()["people"]}
        assert people["root"]["registered_at"] == AT


def test_init_at_through_the_api(store_url):
    with Ledger(store_url) as led:
        assert led.init("root", "Root", at=AT)["created"] is True
        assert led.store.read_log(after=0, limit=10)[0].event.occurred_at.isoformat() == "2026-01-05T08:30:00+00:00"


def test_init_with_a_malformed_at_is_invalid_input_and_writes_nothing(store_url):
    run = run_cli(store_url, "init", "--admin", "root", "--name", "Root", "--at", "last tuesday")
    assert run.code == 2, run
    assert run.json["error"]["code"] == "invalid_input"
    again = run_cli(store_url, "init", "--admin", "root", "--name", "Root", "--at", AT)
    assert again.code == 0 and again.json["created"] is True
    with Ledger(store_url) as led:
        assert len(led.store.read_log(after=0, limit=10)) == 1
