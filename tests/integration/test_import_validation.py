"""`lead import` checks each row as `lead add` checks its input, on SQLite and PostgreSQL: ids
and text (no control characters ever reach the store), the row's own times (not after the
import, not before the pool or a person existed), a CSV quote that is never closed (the file
is refused whole), and a stable code for every rejected row, whatever the language."""

from __future__ import annotations

import json

import pytest

from ledger.errors import InvalidInput
from tests.cli.test_cli import error, ok
from tests.conftest import T0, event_count, run_cli

AT = "2026-04-01T00:00:00Z"  # the import's time: a month after the world began (T0)


def write_jsonl(path, rows) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return str(path)


def import_file(store_url, path, *options: str, actor: str = "mgr") -> dict:
    return ok(run_cli(store_url, "lead", "import", str(path), "--pool", "east", "--at", AT, *options, actor=actor))


def rejected(report) -> list[tuple[int, str]]:
    return [(x["line"], x["code"]) for x in report["rejected"]]


def absent(store_url, *leads: str) -> None:
    for lead in leads:
        error(run_cli(store_url, "lead", "show", lead), "unknown_lead", 3)


def test_ids_and_text_are_checked_as_lead_add_checks_them(world, store_url, tmp_path):
    bad = ["N\x003", "A" * 129, "R\u202e1", "C\x011", "S\ud800", "a:b"]
    path = write_jsonl(tmp_path / "leads.jsonl", [
        *({"id": lead} for lead in bad),                                   # lines 1-6
        {"id": "K-1", "owner": "ali\x00ce"},                                # 7
        {"id": "K-2", "company": "x\x00y"},                                 # 8
        {"id": "K-3", "phone": "139\x1b0000"},                              # 9
        {"id": "K-4", "contact": "\ud800"},                                 # 10
        {"id": "K-5", "company": "Two\nLines Co", "region": "上海\t浦东"},  # 11 imported: a cell of two lines
        {"id": "  K-6  ", "company": "Six Co"},                             # 12 imported: the cell is trimmed
        {"id": "", "company": "No Id Co"}, {"company": "Nameless Co"},      # 13, 14
    ])
    before = event_count(world)
    report = import_file(store_url, path)
    assert (report["imported"], report["rows"]) == (2, 14)
    assert rejected(report) == [(1, "invalid_id"), (2, "invalid_id"), (3, "invalid_id"), (4, "invalid_id"),
                                (5, "invalid_id"), (6, "invalid_id"), (7, "invalid_owner"), (8, "invalid_value"),
                                (9, "invalid_value"), (10, "invalid_value"), (13, "invalid_id"), (14, "invalid_id")]
    messages = [x["error"] for x in report["rejected"]]
    assert "at most 128" in messages[1] and "control or formatting" in messages[2]
    assert "\x00" not in json.dumps(report, ensure_ascii=False)  # quoted escaped, never as it is
    assert event_count(world) == before + 2
    assert ok(run_cli(store_url, "lead", "show", "K-5"))["attributes"]["company"] == "Two\nLines Co"
    assert ok(run_cli(store_url, "lead", "show", "K-6"))["attributes"]["company"] == "Six Co"
    absent(store_url, "K-1", "K-2", "K-3", "K-4", "A" * 128)


def test_a_csv_cell_with_a_control_character_rejects_its_row(world, store_url, tmp_path):
    path = tmp_path / "leads.csv"
    path.write_text("id,company,负责人\nC-1,Good Co,\nC-2,Bad\x01Co,\nC-3,Third Co,b\x7fob\nC-4,Four Co,\n"
                    + "D" * 129 + ",Long Co,\n", encoding="utf-8")
    before = event_count(world)
    report = import_file(store_url, path)
    assert report["imported"] == 2
    assert rejected(report) == [(3, "invalid_value"), (4, "invalid_owner"), (6, "invalid_id")]
    assert event_count(world) == before + 2
    absent(store_url, "C-2", "C-3")


def test_lead_add_refuses_a_control_character_in_a_field(world, store_url):
    before = event_count(world)
    for fields in ({"company": "a\x00b"}, {"email": "x\x00@y.cn"}, {"source": "\ud800"}):
        with pytest.raises(InvalidInput) as e:
            world.add_lead("mgr", "Z-1", "east", at=AT, **fields)
        assert (e.value.code, e.value.exit_code) == ("invalid_input", 2)
        assert "control character" in e.value.message
    assert event_count(world) == before
    absent(store_url, "Z-1")


def test_row_times_are_not_before_the_pool_or_the_owner_existed(world, store_url, tmp_path):
    world.add_person("root", "newbie", "Newbie", "rep", at="2026-03-20T00:00:00Z")
    world.grant("root", "east", ["newbie"], at="2026-03-20T00:00:00Z")
    path = tmp_path / "held.csv"
    path.write_text(
        "id,owner,owner_since,last_follow_up\n"
        "T-1,alice,2026-03-10,2026-03-12\n"     # 2 imported
        "T-2,alice,2025-06-01,\n"               # 3 before the pool was created (T0)
        "T-3,alice,1900-01-01,\n"               # 4 likewise
        "T-4,newbie,2026-03-10,\n"              # 5 before newbie was registered
        "T-5,newbie,,2026-03-15\n"              # 6 likewise, by his follow-up
        "T-6,newbie,2026-03-25,\n"              # 7 imported
        "T-7,alice,2026-04-01T00:06:00Z,\n"     # 8 after the import's time
        "T-8,alice,2026/3/5,2026-03-04\n",      # 9 a follow-up before he took it
        encoding="utf-8")
    before = event_count(world)
    report = import_file(store_url, path)
    assert (report["imported"], report["assigned"]) == (2, 2)
    assert rejected(report) == [(3, "time_out_of_range"), (4, "time_out_of_range"), (5, "time_out_of_range"),
                                (6, "time_out_of_range"), (8, "time_out_of_range"), (9, "invalid_time")]
    errors = {x["line"]: x["error"] for x in report["rejected"]}
    assert "earlier than the creation of pool east" in errors[3] and "1900-01-01" in errors[4]
    assert "earlier than the registration of newbie" in errors[5]
    assert errors[6].startswith("last_follow_up") and "registration of newbie" in errors[6]
    assert "later than the import's time" in errors[8]
    assert event_count(world) == before + 4 + 3  # added, assigned, holdings (+ the follow-up of T-1)
    assert ok(run_cli(store_url, "owner", "T-6"))["owner"] == "newbie"
    absent(store_url, "T-2", "T-3", "T-4", "T-5", "T-7", "T-8")


def test_an_import_at_a_time_before_the_owner_existed_rejects_his_rows(world, store_url, tmp_path):
    world.add_person("root", "newbie", "Newbie", "rep", at="2026-03-20T00:00:00Z")
    world.grant("root", "east", ["newbie"], at="2026-03-20T00:00:00Z")
    path = tmp_path / "held.csv"
    path.write_text("id,owner\nW-1,newbie\nW-2,alice\n", encoding="utf-8")
    before = event_count(world)
    report = ok(run_cli(store_url, "lead", "import", str(path), "--pool", "east", "--at", "2026-03-10T00:00:00Z",
                        actor="mgr"))
    assert report["imported"] == 1 and rejected(report) == [(2, "time_out_of_range")]
    assert "--at 2026-03-10T00:00:00Z is earlier than the registration of newbie" in report["rejected"][0]["error"]
    assert event_count(world) == before + 3
    absent(store_url, "W-1")


QUOTED = ('id,company,phone\nQ-1,a,13900000001\nQ-2,"b\nsecond line",13900000002\n'
          'Q-3,"上海公司,13900000003\nQ-4,d,13900000004\nQ-5,e,13900000005\n')


@pytest.mark.parametrize("content, line", [
    (QUOTED, 5),                                                   # a quote open to the end of the file
    (QUOTED.rstrip("\n"), 5),                                      # without a last line break
    # a quote that runs on past the csv module's cell limit (128 KiB): closed or not, the rows are lost
    ("id,company\n" + "".join(f'B-{i},"Co {i}\n' if i == 3 else f"B-{i},Co {i}\n" for i in range(20000)), 5),
    ('id,company\nE-1,"a ""quoted"" name\nE-2,b\n', 2),            # quotes inside a cell written twice
])
def test_a_quote_never_closed_refuses_the_file_whole(world, store_url, tmp_path, content, line):
    path = tmp_path / "leads.csv"
    path.write_text(content, encoding="utf-8")
    before = event_count(world)
    for dry in ([], ["--dry-run"]):
        err = error(run_cli(store_url, "lead", "import", str(path), "--pool", "east", *dry, actor="mgr"),
                    "invalid_input", 2)
        assert f"a quote opened in the row on line {line} is never closed" in err["message"]
    assert event_count(world) == before


def test_quotes_that_close_still_import(world, store_url, tmp_path):
    path = tmp_path / "leads.csv"
    path.write_text(QUOTED.replace('"上海公司,', '"上海公司",'), encoding="utf-8")
    before = event_count(world)
    report = import_file(store_url, path)
    assert (report["imported"], report["rows"], report["rejected"]) == (5, 5, [])
    assert ok(run_cli(store_url, "lead", "show", "Q-2"))["attributes"]["company"] == "b\nsecond line"
    assert event_count(world) == before + 5


def test_rejected_rows_carry_a_code_that_no_language_changes(world, store_url, tmp_path):
    path = write_jsonl(tmp_path / "leads.jsonl", [
        {"id": "J-1", "company": "Jay Co", "fax": "123", "等级": "A"},  # imported: unknown keys listed
        {"id": "J-2", "phone": True},
        {"id": "J-3", "owner": "ghost"},
        {"id": "J-4", "owner": "dave"},
        {"id": "J-5", "owner_since": "soon", "owner": "alice"},
        {"id": "J-1", "company": "again", "fax": None},
    ])
    (tmp_path / "bad.jsonl").write_text('{"id": "J-9"\n["J-9"]\n', encoding="utf-8")
    english = ok(run_cli(store_url, "lead", "import", path, "--pool", "east", "--at", AT, "--dry-run", actor="mgr"))
    before = event_count(world)
    chinese = ok(run_cli(store_url, "--lang", "zh", "lead", "import", path, "--pool", "east", "--at", AT,
                         actor="mgr"))
    expected = [(2, "invalid_value"), (3, "unknown_person"), (4, "not_pool_member"), (5, "invalid_time"),
                (6, "repeated_id")]
    assert rejected(english) == rejected(chinese) == expected
    assert all(e["error"] != z["error"] for e, z in zip(english["rejected"], chinese["rejected"], strict=True))
    assert english["ignored_columns"] == chinese["ignored_columns"] == ["fax", "等级"]
    assert chinese["imported"] == 1 and event_count(world) == before + 1
    assert "fax" not in json.dumps(ok(run_cli(store_url, "lead", "show", "J-1")))
    broken = import_file(store_url, tmp_path / "bad.jsonl")
    assert rejected(broken) == [(1, "malformed_row"), (2, "malformed_row")]


def test_codes_of_owners_who_may_not_hold(world, store_url, tmp_path):
    world.deactivate_person("root", "carol", at=T0)
    path = tmp_path / "held.csv"
    path.write_text("id,owner\nH-1,carol\nH-2,audrey\nH-3,bob\n", encoding="utf-8")
    report = import_file(store_url, path)
    assert report["imported"] == 1
    assert rejected(report) == [(2, "owner_inactive"), (3, "invalid_owner")]
