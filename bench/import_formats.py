"""Reading an import file, by format: the same rows as CSV in UTF-8, as CSV in GB18030 (what
Excel writes on a Chinese Windows machine) and as an Excel workbook, read by
`ledger.importing.read_rows` to the last row (no store involved). Beside them: the workbook
parsed by calamine alone (no row read), Python's csv module reading the UTF-8 file with
no checks at all, and each CSV file's text decoded alone (what its encoding costs).

Each reading runs in a fresh process (the formats take turns), so its peak RSS is its own; "growth" is the peak less
the process's size once the modules are loaded. Targets: the workbook in at most 2x the time
of the UTF-8 CSV; GB18030 no slower than UTF-8 beyond decoding.

    python bench/import_formats.py [--rows 100000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime

HEADER = ["编号", "客户名称", "联系人", "手机", "邮箱", "省份", "所属行业", "线索来源", "负责人", "领取时间", "备注"]
CITIES = ["上海", "北京", "广州", "深圳", "杭州", "成都", "武汉", "南京"]


def row(i: int) -> list:
    city = CITIES[i % len(CITIES)]
    return [f"L-{i:07d}", f"{city}第{i}贸易有限公司", f"联系人{i % 997}", 13800000000 + i, f"buyer{i}@example.cn",
            city, "制造业", "展会", f"rep{i % 50}", datetime(2026, 1 + i % 12, 1 + i % 28, 9, i % 60), "老客户"]


def as_text(value: object) -> str:
    return value.strftime("%Y/%m/%d %H:%M") if isinstance(value, datetime) else str(value)


def make_files(folder: str, rows: int) -> dict[str, str]:
    import xlsxwriter

    paths = {"csv-utf8": os.path.join(folder, "leads-utf8.csv"), "csv-gb18030": os.path.join(folder, "leads-gb.csv"),
             "xlsx": os.path.join(folder, "leads.xlsx")}
    for name, encoding in (("csv-utf8", "utf-8-sig"), ("csv-gb18030", "gb18030")):
        with open(paths[name], "w", encoding=encoding, newline="") as f:
            out = csv.writer(f)
            out.writerow(HEADER)
            out.writerows([as_text(v) for v in row(i)] for i in range(rows))
    book = xlsxwriter.Workbook(paths["xlsx"], {"constant_memory": True})
    sheet = book.add_worksheet()
    stamp = book.add_format({"num_format": "yyyy-mm-dd hh:mm"})
    sheet.write_row(0, 0, HEADER)
    for i in range(rows):
        values = row(i)
        sheet.write_row(i + 1, 0, values[:9])
        sheet.write_datetime(i + 1, 9, values[9], stamp)
        sheet.write_string(i + 1, 10, values[10])
    book.close()
    paths["xlsx-parse"] = paths["xlsx"]
    paths["baseline"] = paths["csv-utf8"]
    paths["decode-utf8"] = paths["csv-utf8"]
    paths["decode-gb18030"] = paths["csv-gb18030"]
    return paths


def child(kind: str, path: str) -> None:
    """One reading, in this process: prints seconds, rows and memory as JSON."""
    from ledger.importing import read_rows

    loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    count = rejected = 0
    if kind == "xlsx-parse":  # calamine's parse of the sheet alone: the floor of an Excel read
        from ledger.spreadsheets import open_sheet

        count = open_sheet(path).total_height - 1
    elif kind.startswith("decode-"):  # the file's text decoded, nothing else: what the encoding costs
        with open(path, encoding="utf-8-sig" if kind == "decode-utf8" else "gb18030", newline="") as f:
            for block in iter(lambda: f.read(1 << 20), ""):
                count += block.count("\n")
        count -= 1
    elif kind == "baseline":
        with open(path, encoding="utf-8-sig", newline="") as f:
            for _ in csv.reader(f):
                count += 1
        count -= 1
    else:
        for _, fields in read_rows(path, tz="Asia/Shanghai"):
            count += 1
            rejected += isinstance(fields, str)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "rows": count, "rejected": rejected, "peak_mb": peak,
                      "growth_mb": peak - loaded}))


def measure(kind: str, path: str) -> dict:
    here = os.path.dirname(os.path.abspath(__file__))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.path.dirname(here), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, __file__, "--child", kind, path], capture_output=True, text=True,
                          env=env, check=True)
    return json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--child", nargs=2, metavar=("KIND", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    with tempfile.TemporaryDirectory() as folder:
        paths = make_files(folder, args.rows)
        results: dict[str, list[dict]] = {kind: [] for kind in paths}
        for _ in range(args.repeat):  # interleaved, so a busy spell on the machine hits every format
            for kind, path in paths.items():
                results[kind].append(measure(kind, path))
        sizes = {kind: os.path.getsize(path) / 2**20 for kind, path in paths.items()}
    print(f"{args.rows:,} rows, {args.repeat} runs each; medians\n")
    print("| format | file | read | rows/s | rejected | peak RSS | growth |")
    print("|---|---|---|---|---|---|---|")
    medians = {}
    for kind, runs in results.items():
        seconds = statistics.median(r["seconds"] for r in runs)
        medians[kind] = seconds
        print(f"| {kind} | {sizes[kind]:.1f} MB | {seconds:.3f} s | {runs[0]['rows'] / seconds:,.0f} | "
              f"{runs[0]['rejected']} | {statistics.median(r['peak_mb'] for r in runs):.0f} MB | "
              f"{statistics.median(r['growth_mb'] for r in runs):.0f} MB |")
    extra = medians["csv-gb18030"] - medians["csv-utf8"]
    decoding = 2 * (medians["decode-gb18030"] - medians["decode-utf8"])  # read_rows decodes twice: check, read
    print(f"\nxlsx / csv-utf8: {medians['xlsx'] / medians['csv-utf8']:.2f}x (target <= 2x); "
          f"csv-gb18030 / csv-utf8: {medians['csv-gb18030'] / medians['csv-utf8']:.2f}x; GB18030 costs "
          f"{extra:+.3f} s more than UTF-8 to read; decoding it alone, twice (checked whole, then read), "
          f"{decoding:+.3f} s more "
          f"(target: no more than decoding)")


if __name__ == "__main__":
    main()
