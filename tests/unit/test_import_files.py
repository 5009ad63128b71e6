"""The file layer of `lead import`, on files each test makes: encodings,
separators, workbooks known by content, Chinese headers, --map, --tz, per-row checks, the
rejects file and the Excel export. No store is involved."""

from __future__ import annotations

import csv
import json
import zipfile
from datetime import UTC, datetime, timedelta

import pytest
import python_calamine as pc
import xlsxwriter

from ledger.errors import InvalidInput
from ledger.importing import read_rows
from ledger.spreadsheets import write_export, write_rejects, write_xlsx

CHINESE_HEADER = "编号,客户名称,联系人,手机,邮箱,省份,所属行业,线索来源,负责人,领取时间,最近跟进时间,备注\n"


def rows_of(path, **kw):
    return list(read_rows(str(path), **kw))


def fields_at(rows, line):
    found = dict(rows)[line]
    assert isinstance(found, dict), found
    return found


def error_at(rows, line):
    found = dict(rows)[line]
    assert isinstance(found, str), found
    return found


def refused(path, match, **kw):
    with pytest.raises(InvalidInput, match=match) as e:
        read_rows(str(path), **kw)
    assert (e.value.code, e.value.exit_code) == ("invalid_input", 2)
    assert "\n" not in e.value.message


def make_xlsx(path, rows, first_row=0, date_cells=None):
    """A workbook whose first sheet holds `rows` from `first_row` (0-based); date_cells maps
    (row, col) to a datetime written as an Excel date cell."""
    book = xlsxwriter.Workbook(str(path))
    sheet = book.add_worksheet("线索")
    stamp = book.add_format({"num_format": "yyyy-mm-dd hh:mm"})
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            if value is not None:
                sheet.write(first_row + r, c, value)
    for (r, c), value in (date_cells or {}).items():
        sheet.write_datetime(first_row + r, c, value, stamp)
    book.add_worksheet("other").write(0, 0, "not read")
    book.close()


# --- encodings and separators ----------------------------------------------------------------

@pytest.mark.parametrize("encoding", ["gbk", "gb18030"])
def test_chinese_csv_from_windows(tmp_path, encoding):
    path = tmp_path / "客户.csv"
    company = "上海𠮷野家贸易" if encoding == "gb18030" else "上海贸易有限公司"  # 𠮷 is outside GBK
    path.write_bytes((CHINESE_HEADER + f"C-1,{company},王伟,138 0013 8000,w@x.cn,上海,制造,展会,alice,"
                      "2026/3/2 9:00,2026年3月5日 14:30,老客户\n").encode(encoding))
    source = read_rows(str(path))
    assert source.encoding == "gb18030"
    assert source.ignored_columns == ["备注"]
    row = fields_at(list(source), 2)
    assert row == {"id": "C-1", "company": company, "contact": "王伟", "phone": "138 0013 8000",
                   "email": "w@x.cn", "region": "上海", "industry": "制造", "source": "展会", "owner": "alice",
                   "owner_since": datetime(2026, 3, 2, 9, tzinfo=UTC),
                   "last_follow_up": datetime(2026, 3, 5, 14, 30, tzinfo=UTC)}


@pytest.mark.parametrize("prefix, sep", [(b"\xef\xbb\xbf", ";"), (b"", "\t"), (b"\xef\xbb\xbf", ","), (b"", ";")])
def test_bom_and_separators(tmp_path, prefix, sep):
    path = tmp_path / "leads.csv"
    path.write_bytes(prefix + sep.join(["ID", "Company", "手机号"]).encode() + b"\n"
                     + sep.join(["N-1", '"Acme, Ltd"', "13900000001"]).encode() + b"\n")
    rows = rows_of(path)
    assert rows == [(2, {"id": "N-1", "company": "Acme, Ltd", "phone": "13900000001"})]


def test_blank_lines_above_the_header(tmp_path):
    path = tmp_path / "leads.csv"
    path.write_text("\n\nid;company\nN-1;Acme, Ltd\n", encoding="utf-8")
    assert rows_of(path) == [(4, {"id": "N-1", "company": "Acme, Ltd"})]


@pytest.mark.parametrize("sep", [";", "\t", "|"])
def test_excel_sep_line(tmp_path, sep):
    path = tmp_path / "leads.csv"
    path.write_text(f"sep={sep}\r\nid{sep}company\r\nN-1{sep}Acme, Ltd\r\n", encoding="utf-8")
    assert rows_of(path) == [(3, {"id": "N-1", "company": "Acme, Ltd"})]


def test_forced_encoding(tmp_path):
    path = tmp_path / "big5.csv"
    path.write_bytes("id,company\nT-1,臺灣貿易\n".encode("big5"))
    assert fields_at(rows_of(path, encoding="big5"), 2)["company"] == "臺灣貿易"
    refused(path, "unknown text encoding", encoding="no-such-codec")
    refused(path, "unknown text encoding", encoding="base64")
    refused(path, "not utf-8 text", encoding="utf-8")


def test_excel_unicode_text_utf16(tmp_path):
    path = tmp_path / "leads.txt"
    path.write_bytes("id\tcompany\nU-1\t深圳公司\n".encode("utf-16"))
    assert rows_of(path) == [(2, {"id": "U-1", "company": "深圳公司"})]


# --- workbooks --------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["leads.xlsx", "leads.csv", "leads"])
def test_xlsx_known_by_content(tmp_path, name):
    path = tmp_path / name
    make_xlsx(path, [["编号", "公司名称", "电话", "分配时间", "最后跟进时间", "等级"],
                     ["X-1", "北京公司", 13800138000, None, "2026/3/3 10:00", "A"],
                     [None] * 6,
                     [1002, "广州公司", 13900000002.0, None, None, "B"],
                     ["X-3", True, 13900000003, None, None, "C"],
                     ["X-4", "成都公司", 139.5, None, None, None]],
              first_row=2, date_cells={(1, 3): datetime(2026, 3, 2, 9, 30), (3, 3): datetime(2026, 3, 4)})
    source = read_rows(str(path), tz="Asia/Shanghai")
    assert source.ignored_columns == ["等级"]
    rows = list(source)
    assert [line for line, _ in rows] == [4, 6, 7, 8]  # the sheet's own row numbers
    assert fields_at(rows, 4) == {"id": "X-1", "company": "北京公司", "phone": "13800138000",
                                  "owner_since": datetime(2026, 3, 2, 1, 30, tzinfo=UTC),
                                  "last_follow_up": datetime(2026, 3, 3, 2, tzinfo=UTC)}
    assert fields_at(rows, 6)["id"] == "1002" and fields_at(rows, 6)["phone"] == "13900000002"
    assert fields_at(rows, 6)["owner_since"] == datetime(2026, 3, 3, 16, tzinfo=UTC)
    assert "company must be text" in error_at(rows, 7)
    assert "fraction" in error_at(rows, 8)


def test_xlsx_time_of_day_cell_is_no_time(tmp_path):
    path = tmp_path / "t.xlsx"
    book = xlsxwriter.Workbook(str(path))
    sheet = book.add_worksheet()
    sheet.write_row(0, 0, ["id", "owner_since"])
    sheet.write(1, 0, "T-1")
    sheet.write_datetime(1, 1, datetime(1899, 12, 31, 9, 30), book.add_format({"num_format": "hh:mm"}))
    book.close()
    assert error_at(rows_of(path), 2) == "owner_since must be a time, not a time of day alone"


def test_xlsx_empty_sheet_and_header_only(tmp_path):
    empty = tmp_path / "empty.xlsx"
    make_xlsx(empty, [])
    refused(empty, "first sheet is empty")
    header_only = tmp_path / "header.xlsx"
    make_xlsx(header_only, [["id", "company"]])
    assert rows_of(header_only) == []


# --- headers and --map ----------------------------------------------------------------------

def test_map_names_other_columns(tmp_path):
    path = tmp_path / "crm.csv"
    path.write_text("客户ID,名称,手机,电话,渠道\nK-1,Acme,13900000001,021-5555,web\n", encoding="utf-8")
    refused(path, "both mean phone: say which one to use with --map 电话=phone")
    refused(path, "both mean phone", mapping=["客户ID=id"])
    refused(path, "no id column", mapping=["手机=phone"])
    rows = rows_of(path, mapping=["客户ID=id", "名称 = company", "手机=phone", "渠道=SOURCE"])
    assert rows == [(2, {"id": "K-1", "company": "Acme", "phone": "13900000001", "source": "web"})]
    assert read_rows(str(path), mapping=["客户ID=id", "手机=phone"]).ignored_columns == ["名称", "电话", "渠道"]


@pytest.mark.parametrize("item, match", [("nothing", "COLUMN=FIELD"), ("=id", "COLUMN=FIELD"),
                                         ("客户ID=", "COLUMN=FIELD"), ("客户ID=favourite", "not a field"),
                                         ("不存在=id", "does not have")])
def test_bad_map(tmp_path, item, match):
    path = tmp_path / "crm.csv"
    path.write_text("客户ID,名称\nK-1,Acme\n", encoding="utf-8")
    refused(path, match, mapping=[item])


# --- times --------------------------------------------------------------------------------

@pytest.mark.parametrize("written, expected", [
    ("2026-03-02T09:00:00Z", datetime(2026, 3, 2, 9, tzinfo=UTC)),
    ("2026-03-02T09:00:00+08:00", datetime(2026, 3, 2, 1, tzinfo=UTC)),
    ("2026-03-02 09:00", datetime(2026, 3, 2, 1, tzinfo=UTC)),
    ("2026-03-02 09:00:30", datetime(2026, 3, 2, 1, 0, 30, tzinfo=UTC)),
    ("2026/3/2 9:00", datetime(2026, 3, 2, 1, tzinfo=UTC)),
    ("2026年3月2日 9:00", datetime(2026, 3, 2, 1, tzinfo=UTC)),
    ("２０２６年３月２日 ９：００", datetime(2026, 3, 2, 1, tzinfo=UTC)),
    ("2026年3月2日", datetime(2026, 3, 1, 16, tzinfo=UTC)),
    ("2026-03-02", datetime(2026, 3, 1, 16, tzinfo=UTC)),
    ("2026/3/2", datetime(2026, 3, 1, 16, tzinfo=UTC)),
])
def test_times_in_tz(tmp_path, written, expected):
    path = tmp_path / "t.csv"
    path.write_text(f"id,owner_since\nT-1,{written}\n", encoding="utf-8")
    assert fields_at(rows_of(path, tz="Asia/Shanghai"), 2)["owner_since"] == expected
    default = fields_at(rows_of(path), 2)["owner_since"]  # UTC unless the text says otherwise
    assert default == (expected if written.endswith(("Z", "+08:00")) else expected + timedelta(hours=8))


@pytest.mark.parametrize("written", ["yesterday", "2026-13-01", "2026/2/30 9:00", "3/2/2026", "2026-03-02 25:00",
                                     "1.5"])
def test_bad_time_rejects_the_row(tmp_path, written):
    path = tmp_path / "t.csv"
    path.write_text(f"id,last_follow_up\nT-0,\nT-1,{written}\nT-2,2026-03-02\n", encoding="utf-8")
    rows = rows_of(path)
    assert fields_at(rows, 2)["last_follow_up"] is None
    assert error_at(rows, 3).startswith("last_follow_up") and "not a time" in error_at(rows, 3)
    assert fields_at(rows, 4)["last_follow_up"] == datetime(2026, 3, 2, tzinfo=UTC)


def test_bad_zone_and_a_time_the_clocks_skip(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("id,owner_since\nT-1,2026-03-08 02:30\n", encoding="utf-8")
    refused(path, "unknown time zone", tz="Asia/Nowhere")
    refused(path, "unknown time zone", tz="../etc/passwd")
    assert "does not exist in America/New_York" in error_at(rows_of(path, tz="America/New_York"), 2)


# --- rows ----------------------------------------------------------------------------------

def test_repeated_id_names_the_earlier_line(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text('id,company,owner_since\nD-1,"A\nB",\nD-2,x,bad time\nD-1,y,\n D-2 ,z,\nD-3,w,\n',
                    encoding="utf-8")
    rows = rows_of(path)
    assert [line for line, _ in rows] == [2, 4, 5, 6, 7]
    assert "not a time" in error_at(rows, 4)
    assert error_at(rows, 5) == "id 'D-1' repeats line 2"
    assert error_at(rows, 6) == "id 'D-2' repeats line 4"
    assert fields_at(rows, 7)["id"] == "D-3"


def test_phone_in_scientific_notation(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("id,phone\nP-1,1.38001E+10\nP-2,13800100000\n", encoding="utf-8")
    rows = rows_of(path)
    assert "scientific notation" in error_at(rows, 2)
    assert fields_at(rows, 3)["phone"] == "13800100000"


def test_json_lines_types(tmp_path):
    path = tmp_path / "leads.jsonl"
    path.write_text('{"id": "J-1", "phone": true}\n{"id": "J-2", "phone": 13800138000}\n'
                    '{"编号": "J-3", "手机": "13800138000", "领取时间": "2026/3/2 9:00", "fax": "1"}\n'
                    '{"id": "J-1", "company": "again"}\n', encoding="utf-8")
    source = read_rows(str(path))
    rows = list(source)
    assert error_at(rows, 1) == "phone must be text, not true"
    assert error_at(rows, 2) == "phone must be text, not a number"
    assert fields_at(rows, 3) == {"id": "J-3", "phone": "13800138000",  # an unknown key: ignored and listed
                                  "owner_since": datetime(2026, 3, 2, 9, tzinfo=UTC)}
    assert source.ignored_columns == ["fax"]
    assert error_at(rows, 4) == "id 'J-1' repeats line 1"


# --- files that are refused whole ----------------------------------------------------------

@pytest.mark.parametrize("content, match", [
    (b"", "is empty"),
    (b" \n\n", "is empty"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)), "neither a text file"),
    (b"id,company\nN-1,Caf\xe9 \n", "neither UTF-8 nor GB18030"),
    (b"company,phone\nAcme,139\n", "no id column"),
    ("编号,公司,客户编号\nN-1,A,B\n".encode(), "both mean id"),
    (b"id,company,Company\nN-1,A,B\n", "twice"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600), "old Excel .xls"),
])
def test_bad_files(tmp_path, content, match):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    refused(path, match)


@pytest.mark.parametrize("content, line", [
    ('sep=;\nid;company\nA;"x\nB;y\n', 3),         # Excel's separator line counts
    ('\n\nid,company\nA,x\nB,"y', 5),               # so do blank lines above the header
    ('id,"company\nA,x\n', 1),                      # the header itself
    ('id,company\nA,"x\ny",z\nB,"w\n', 4),          # a cell over two lines that closes is no matter
])
def test_a_quote_never_closed_refuses_the_file_naming_its_row(tmp_path, content, line):
    path = tmp_path / "open.csv"
    path.write_text(content, encoding="utf-8")
    refused(path, f"a quote opened in the row on line {line} is never closed")


def test_a_zip_that_is_no_workbook(tmp_path):
    path = tmp_path / "leads.xlsx"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("word/document.xml", "<x/>")
    refused(path, "zip archive, not an Excel workbook")
    refused(tmp_path / "missing.csv", "cannot read")


# --- the rejects file ----------------------------------------------------------------------

def read_back(path):
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # Excel shows Chinese right
    return list(csv.reader(raw.decode("utf-8-sig").splitlines()))


def reject_report(rows):
    return [{"line": line, "error": f} for line, f in rows if isinstance(f, str)] + \
        [{"line": 2, "error": "invalid email 'x'"}]  # as the ledger would reject a row


def test_rejects_file_from_csv_reads_back_and_imports_again(tmp_path):
    path = tmp_path / "in.csv"
    path.write_bytes((CHINESE_HEADER + "C-1,甲,王,139,x,,,,,,,备\nC-2,乙,李,1.38E+10,,,,,,,,\n"
                      "C-3,丙,张,137,,,,,,昨天,,\nC-4,丁\n").encode("gbk"))
    source = read_rows(str(path))
    out = tmp_path / "rejects.csv"
    assert write_rejects(str(out), *source.rejects(reject_report(list(source)))) == 4
    back = read_back(out)
    assert back[0] == [*CHINESE_HEADER.strip().split(","), "line", "error"]
    assert [r[-2] for r in back[1:]] == ["2", "3", "4", "5"]
    assert back[1][:2] == ["C-1", "甲"] and back[1][-1] == "invalid email 'x'"
    assert back[4][:3] == ["C-4", "丁", ""] and "expected 12 fields" in back[4][-1]
    again = rows_of(out)  # fixed or not, it imports again: line/error are ignored columns
    assert fields_at(again, 2)["id"] == "C-1"
    assert read_rows(str(out)).ignored_columns == ["备注", "line", "error"]


def test_rejects_file_from_xlsx_and_jsonl(tmp_path):
    book = tmp_path / "in.xlsx"
    make_xlsx(book, [["编号", "手机", "领取时间"], ["X-1", 13800138000, "soon"], ["X-1", 139, None]],
              date_cells={(2, 2): datetime(2026, 3, 2, 9)})
    source = read_rows(str(book))
    out = tmp_path / "r1.csv"
    write_rejects(str(out), *source.rejects([{"line": n, "error": e} for n, e in source if isinstance(e, str)]))
    assert read_back(out)[1:] == [["X-1", "13800138000", "soon", "2", read_back(out)[1][-1]],
                                  ["X-1", "139", "2026-03-02 09:00:00", "3", "id 'X-1' repeats line 2"]]
    lines = tmp_path / "in.jsonl"
    lines.write_text('{"id": "J-1", "phone": true}\n{"id": "J-2"\n', encoding="utf-8")
    source = read_rows(str(lines))
    out = tmp_path / "r2.csv"
    write_rejects(str(out), *source.rejects([{"line": n, "error": e} for n, e in source if isinstance(e, str)]))
    assert read_back(out) == [["id", "phone", "json", "line", "error"],
                              ["J-1", "TRUE", "", "1", "phone must be text, not true"],
                              ["", "", '{"id": "J-2"', "2", read_back(out)[2][-1]]]


# --- exports ------------------------------------------------------------------------------

def sheet_of(path):
    return list(pc.CalamineWorkbook.from_path(str(path)).get_sheet_by_index(0).iter_rows())


def test_xlsx_export_reads_back(tmp_path):
    path = tmp_path / "out.xlsx"
    at = datetime(2026, 3, 2, 9, 0, 0, 120000, tzinfo=UTC)
    count = write_xlsx(str(path), ["lead", "since", "position", "active", "note"],
                       [("L-1", at, 2**62, True, "=1+1"), {"lead": "L-2", "position": 7, "note": "上海"}])
    assert count == 2
    assert sheet_of(path) == [["lead", "since", "position", "active", "note"],
                              ["L-1", "2026-03-02T09:00:00.120000Z", str(2**62), True, "=1+1"],
                              ["L-2", "", 7.0, "", "上海"]]


def test_export_formats(tmp_path):
    rows = [{"lead": "L-1", "pool": "东区"}]
    out = tmp_path / "a.csv"
    with open(out, "w", encoding="utf-8", newline="") as f:
        assert write_export(iter(rows), "csv", f, columns=["lead", "pool"], bom=True) == 1
    assert out.read_bytes() == "\ufefflead,pool\nL-1,东区\n".encode()
    with open(out, "w", encoding="utf-8", newline="") as f:
        write_export(iter(rows), "csv", f, columns=["lead", "pool"])
    assert out.read_bytes() == "lead,pool\nL-1,东区\n".encode()
    book = tmp_path / "a.xlsx"
    assert write_export(iter(rows), "xlsx", None, path=str(book)) == 1
    assert sheet_of(book) == [["lead", "pool"], ["L-1", "东区"]]
    events = [{"position": 1, "stream": "lead:L-1", "type": "LeadAdded", "occurred_at": "2026-03-02T09:00:00Z",
               "lead": "L-1", "attributes": {"company": "甲"}}]
    write_export(iter(events), "xlsx", None, path=str(book), events=True)
    header, first = sheet_of(book)
    assert header[-1] == "data" and json.loads(first[-1]) == {"lead": "L-1", "attributes": {"company": "甲"}}
    with pytest.raises(InvalidInput, match="needs --out"):
        write_export(iter(rows), "xlsx", None)
    with pytest.raises(InvalidInput, match="csv only"):
        write_export(iter(rows), "jsonl", None, bom=True)


def test_ids_seen_go_to_a_scratch_file_past_the_first_ones():
    """An import remembers the ids of a file of any size without holding them all in memory:
    past `keep` ids they go to a scratch file, and a repeat still names its first mark."""
    from ledger.scratch import ScratchIds

    seen = ScratchIds(keep=3)
    try:
        marks = [seen.setdefault(key, i) for i, key in enumerate(["a", "b", "c", "d", "a", "d", "e", "e", "c"])]
    finally:
        seen.close()
    assert marks == [0, 1, 2, 3, 0, 3, 6, 6, 2]
