"""`lead import` of Excel and Chinese CSV files and `export --format xlsx|csv --bom` through
the command line, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import json

import python_calamine as pc
import xlsxwriter

from tests.cli.test_cli import error, ok
from tests.conftest import event_count, run_cli


def test_import_a_workbook_named_csv_with_rejects(world, store_url, tmp_path):
    path = tmp_path / "客户.csv"  # a workbook, whatever its name says
    book = xlsxwriter.Workbook(str(path))
    sheet = book.add_worksheet()
    for r, row in enumerate([["编号", "客户名称", "手机", "等级"], ["X-1", "北京公司", 13800138000, "A"],
                             ["X-2", "广州公司", "1.38001E+10", "B"], ["X-1", "重复", 139, "C"],
                             ["L-1", "已有", 137, "D"]]):
        sheet.write_row(r, 0, row)
    book.close()
    rejects = tmp_path / "rejects.csv"
    before = event_count(world)
    out = ok(run_cli(store_url, "lead", "import", str(path), "--pool", "east", "--rejects", str(rejects),
                     actor="mgr"))
    assert (out["imported"], out["skipped_existing"], out["ignored_columns"]) == (1, 1, ["等级"])
    assert [(x["line"], x["error"]) for x in out["rejected"]] == [
        (3, out["rejected"][0]["error"]), (4, "id 'X-1' repeats line 2")]
    assert "scientific notation" in out["rejected"][0]["error"]
    assert event_count(world) == before + 1
    assert ok(run_cli(store_url, "lead", "show", "X-1"))["attributes"]["phone"] == "13800138000"
    back = list(csv.reader(rejects.read_text(encoding="utf-8-sig").splitlines()))
    assert back == [["编号", "客户名称", "手机", "等级", "line", "error"],
                    ["X-2", "广州公司", "1.38001E+10", "B", "3", out["rejected"][0]["error"]],
                    ["X-1", "重复", "139", "C", "4", "id 'X-1' repeats line 2"]]


def test_import_gbk_csv_and_file_refusals_write_nothing(world, store_url, tmp_path):
    path = tmp_path / "leads.csv"
    path.write_bytes("编号;公司;联系电话\nG-1;上海贸易;021 5555 0001\n".encode("gbk"))
    out = ok(run_cli(store_url, "lead", "import", str(path), "--pool", "east", actor="mgr"))
    assert (out["imported"], out["rejected"], out["ignored_columns"]) == (1, [], [])
    assert ok(run_cli(store_url, "lead", "show", "G-1"))["attributes"]["company"] == "上海贸易"
    before = event_count(world)
    for args in (["--tz", "Mars/Olympus"], ["--map", "公司"], ["--map", "公司=fax"], ["--encoding", "nope"]):
        error(run_cli(store_url, "lead", "import", str(path), "--pool", "east", *args, actor="mgr"), "invalid_input", 2)
    binary = tmp_path / "leads.bin"
    binary.write_bytes(bytes(range(256)) * 4)
    err = error(run_cli(store_url, "lead", "import", str(binary), "--pool", "east", actor="mgr"), "invalid_input", 2)
    assert "neither a text file" in err["message"]
    nowhere = tmp_path / "no-such-folder" / "rejects.csv"
    error(run_cli(store_url, "lead", "import", str(path), "--pool", "east", "--rejects", str(nowhere), actor="mgr"),
          "invalid_input", 2)
    assert not nowhere.parent.exists()
    dry = ok(run_cli(store_url, "lead", "import", str(path), "--pool", "east", "--dry-run", actor="mgr"))
    assert dry["dry_run"] is True and dry["rows"] == 1
    assert event_count(world) == before


def test_export_xlsx_and_bom(world, store_url, tmp_path):
    ok(run_cli(store_url, "lead", "add", "Z-1", "--pool", "east", "--company", "上海", actor="mgr"))
    book = tmp_path / "pool.xlsx"
    out = ok(run_cli(store_url, "export", "pool_leads", "--out", str(book)))  # the extension chooses
    rows = list(pc.CalamineWorkbook.from_path(str(book)).get_sheet_by_index(0).iter_rows())
    lines = run_cli(store_url, "export", "pool_leads").stdout.splitlines()
    assert (out["format"], out["rows"]) == ("xlsx", len(lines))
    assert rows[0][:3] == ["lead", "pool", "since"]
    assert [r[0] for r in rows[1:]] == [json.loads(line)["lead"] for line in lines]
    assert "Z-1" in [r[0] for r in rows[1:]]
    assert all(isinstance(r[2], str) and r[2].endswith("Z") for r in rows[1:])  # times as text
    error(run_cli(store_url, "export", "pool_leads", "--format", "xlsx"), "invalid_input", 2)
    error(run_cli(store_url, "export", "pool_leads", "--format", "jsonl", "--bom"), "invalid_input", 2)
    plain = tmp_path / "pool.csv"
    ok(run_cli(store_url, "export", "pool_leads", "--out", str(plain)))
    assert plain.read_bytes().startswith(b"lead,pool")
    ok(run_cli(store_url, "export", "events", "--format", "csv", "--bom", "--out", str(plain)))
    assert plain.read_bytes().startswith(b"\xef\xbb\xbfposition,stream")
    events = tmp_path / "events.xlsx"
    ok(run_cli(store_url, "export", "events", "--format", "xlsx", "--out", str(events)))
    header = next(iter(pc.CalamineWorkbook.from_path(str(events)).get_sheet_by_index(0).iter_rows()))
    assert header[0] == "position" and header[-1] == "data"
