"""`lead import` of an old CRM's export through the command line, on SQLite and PostgreSQL:
Chinese GBK CSV and Excel files with owners and times, --tz, --dry-run, the rejects file read
back and imported again, and Ctrl-C to a real process."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import xlsxwriter

from tests.cli.test_cli import error, ok
from tests.conftest import event_count, run_cli

SHANGHAI = ZoneInfo("Asia/Shanghai")
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def ago(days: int) -> datetime:
    return (datetime.now(UTC) - timedelta(days=days)).replace(second=0, microsecond=0)


def utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def slashed(moment: datetime) -> str:
    """A time as a Chinese Excel writes it, in Shanghai: 2026/3/2 9:00."""
    local = moment.astimezone(SHANGHAI)
    return f"{local.year}/{local.month}/{local.day} {local.hour}:{local.minute:02d}"


def test_gbk_csv_with_chinese_owner_columns_and_tz(world, store_url, tmp_path):
    since, follow = ago(12), ago(4)
    path = tmp_path / "客户导出.csv"
    lines = ["编号,客户名称,手机,负责人,领取时间,最后跟进时间,客户级别",
             f"C-1,上海贸易,13900000001,alice,{slashed(since)},{slashed(follow)},A",
             "C-2,北京科技,13900000002,,,,B",
             f"C-3,广州实业,13900000003,无此人,{slashed(since)},,C"]
    path.write_bytes("\r\n".join(lines).encode("gbk"))
    before = event_count(world)
    out = ok(run_cli(store_url, "lead", "import", str(path), "--pool", "east", "--tz", "Asia/Shanghai",
                     actor="mgr"))
    assert (out["imported"], out["assigned"], out["ignored_columns"], out["dry_run"]) == (2, 1, ["客户级别"], False)
    assert [x["line"] for x in out["rejected"]] == [4] and "unknown" in out["rejected"][0]["error"]
    assert event_count(world) == before + 5  # C-1: added, assigned, holdings, follow-up; C-2: added
    shown = ok(run_cli(store_url, "lead", "show", "C-1"))
    assert (shown["owner"], shown["since"], shown["last_follow_up"]) == ("alice", utc(since), utc(follow))
    assert shown["recycle_at"] == utc(follow + timedelta(days=10))  # east: idle_limit 10d
    assert shown["attributes"]["company"] == "上海贸易"
    held = ok(run_cli(store_url, "holdings", "alice"))
    assert [x["lead"] for x in held["leads"]] == ["C-1"]
    # the same wall-clock times read as UTC are 8 hours later: past the import's time for the newest
    again = tmp_path / "utc.csv"
    again.write_bytes("\r\n".join(["编号,负责人,领取时间", f"C-9,bob,{slashed(datetime.now(UTC))}"]).encode("gbk"))
    late = ok(run_cli(store_url, "lead", "import", str(again), "--pool", "east", actor="mgr"))
    assert late["imported"] == 0 and "later than the import's time" in late["rejected"][0]["error"]


def test_a_workbook_with_date_cells_under_a_misleading_name(world, store_url, tmp_path):
    path = tmp_path / "leads.csv"  # a workbook, whatever its name says
    book = xlsxwriter.Workbook(str(path))
    sheet = book.add_worksheet()
    stamp = book.add_format({"num_format": "yyyy-mm-dd hh:mm"})
    since, follow = ago(9).replace(tzinfo=None), ago(2).replace(tzinfo=None)
    sheet.write_row(0, 0, ["线索编号", "公司名称", "跟进人", "接手日", "最近跟进时间", "备注"])
    sheet.write_row(1, 0, ["W-1", "深圳电子", "bob"])
    sheet.write_datetime(1, 3, since, stamp)
    sheet.write_datetime(1, 4, follow, stamp)
    sheet.write(1, 5, "老客户")
    sheet.write_row(2, 0, ["W-2", "杭州网络", "dave"])
    book.close()
    args = ["lead", "import", str(path), "--pool", "east", "--map", "接手日=owner_since"]
    out = ok(run_cli(store_url, *args, actor="mgr"))
    assert (out["imported"], out["assigned"], out["ignored_columns"]) == (1, 1, ["备注"])
    assert "not a member of pool east" in out["rejected"][0]["error"]
    shown = ok(run_cli(store_url, "lead", "show", "W-1"))
    assert (shown["owner"], shown["since"], shown["last_follow_up"]) == (
        "bob", utc(since.replace(tzinfo=UTC)), utc(follow.replace(tzinfo=UTC)))
    tz = ok(run_cli(store_url, *args, "--tz", "Asia/Shanghai", "--dry-run", actor="mgr"))
    assert (tz["imported"], tz["skipped_existing"], tz["dry_run"]) == (0, 1, True)


def test_dry_run_then_rejects_fixed_and_imported_again(world, store_url, tmp_path):
    path = tmp_path / "crm.csv"
    path.write_text("id,company,owner,owner_since,last_follow_up\n"
                    f"F-1,Good Co,alice,{utc(ago(3))},\n"
                    "F-2,Ghost Co,ghost,,\n"
                    f"F-3,Early Co,bob,{utc(ago(2))},{utc(ago(5))}\n"
                    "F-4,Plain Co,,,\n"
                    "F-5,Bad Time Co,carol,someday,\n", encoding="utf-8")
    rejects = tmp_path / "rejects.csv"
    before = event_count(world)
    dry = ok(run_cli(store_url, "lead", "import", str(path), "--pool", "east", "--dry-run",
                     "--rejects", str(rejects), actor="mgr"))
    assert event_count(world) == before
    assert (dry["dry_run"], dry["imported"], dry["assigned"]) == (True, 2, 1)
    assert [x["line"] for x in dry["rejected"]] == [3, 4, 6]
    back = list(csv.DictReader(rejects.read_text(encoding="utf-8-sig").splitlines()))
    assert [(r["id"], r["line"]) for r in back] == [("F-2", "3"), ("F-3", "4"), ("F-5", "6")]
    real = ok(run_cli(store_url, "lead", "import", str(path), "--pool", "east", "--rejects", str(rejects),
                      actor="mgr"))
    assert {k: v for k, v in real.items() if k not in ("dry_run",)} == \
        {k: v for k, v in dry.items() if k not in ("dry_run",)}
    for r in back:  # fixed, as one would in Excel
        r["owner"] = "carol" if r["id"] == "F-2" else r["owner"]
        r["last_follow_up"] = "" if r["id"] == "F-3" else r["last_follow_up"]
        r["owner_since"] = utc(ago(1)) if r["id"] == "F-5" else r["owner_since"]
    fixed = tmp_path / "fixed.csv"
    with open(fixed, "w", encoding="utf-8-sig", newline="") as f:
        out = csv.DictWriter(f, fieldnames=list(back[0]))
        out.writeheader()
        out.writerows(back)
    last = ok(run_cli(store_url, "lead", "import", str(fixed), "--pool", "east", actor="mgr"))
    assert (last["imported"], last["assigned"], last["rejected"]) == (3, 3, [])
    assert sorted(last["ignored_columns"]) == ["error", "line"]
    assert ok(run_cli(store_url, "owner", "F-2"))["owner"] == "carol"


def test_a_rep_importing_owners_is_refused_and_nothing_written(world, store_url, tmp_path):
    path = tmp_path / "mine.csv"
    path.write_text("id,owner\nR-1,alice\n", encoding="utf-8")
    before = event_count(world)
    for extra in ([], ["--dry-run"]):
        error(run_cli(store_url, "lead", "import", str(path), "--pool", "east", *extra, actor="alice"),
              "permission_denied", 4)
    assert event_count(world) == before


def test_text_summary_names_over_limit_reps(world, store_url, tmp_path):
    path = tmp_path / "many.csv"
    path.write_text("id,owner\n" + "".join(f"V-{i},bob\n" for i in range(3)), encoding="utf-8")
    run = run_cli(store_url, "lead", "import", str(path), "--pool", "east", actor="mgr", as_json=False)
    assert run.code == 0, run
    assert "imported 3 (3 held by their owners)" in run.stdout
    assert "bob holds 3 leads of pool east, over its claim_limit 2" in run.stdout


def leads_in(world) -> int:
    """Leads added so far: this test's import writes one event per lead and nothing else does."""
    return world.store.max_position()


def test_ctrl_c_says_what_was_committed_and_a_rerun_finishes(world, store_url, tmp_path):
    count = 100_000
    path = tmp_path / "big.csv"
    with open(path, "w", encoding="utf-8") as f:
        f.write("id,company\n")
        f.writelines(f"K-{i},Bulk company {i}\n" for i in range(count))
    start = leads_in(world)
    environ = {k: v for k, v in os.environ.items() if not k.startswith("LEADLEDGER_")}
    proc = subprocess.Popen([sys.executable, "-m", "cli", "--store", store_url, "--json", "--as", "mgr",
                             "lead", "import", str(path), "--pool", "east"], cwd=REPO, env=environ,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while leads_in(world) == start:  # the first batch is in
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no batch was committed"
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, (stdout, stderr)
    assert "Traceback" not in stderr and "interrupted" in stderr
    summary = json.loads(stdout)
    committed = leads_in(world) - start
    assert summary["interrupted"] is True and summary["imported"] == committed
    assert 0 < committed < count and committed % 10_000 == 0  # whole batches
    assert f"{committed} leads were imported" in stderr
    rest = ok(run_cli(store_url, "lead", "import", str(path), "--pool", "east", actor="mgr"))
    assert (rest["imported"], rest["skipped_existing"]) == (count - committed, committed)
    assert leads_in(world) - start == count
