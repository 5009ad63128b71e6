"""Bulk import of leads (`Ledger.import_leads` on a CSV file, as `leadledger lead import`
does) against loading the same file raw: its rows, read by the csv module, into a plain
table with the file's columns (id, company, ..., source; all text, no key, no index), with
COPY on PostgreSQL and one executemany transaction on SQLite. That is the least any import
of the file does: the ratio is what checking, deduplicating, recording events, keys and
hashes costs on top.

Every repetition starts from a fresh store.

    python bench/bulk_import.py [--store URL] [--quick]
"""

from __future__ import annotations

import csv
import os
import tempfile
import time
from typing import Any

from common import (
    POOL, T0, Result, Target, fresh_target, lead_fields, make_world, median, run_main,
    server_version,
)

from ledger.application import Ledger
from ledger.importing import FIELDS, read_rows


def write_csv(path: str, count: int) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(FIELDS)
        for i in range(count):
            row = lead_fields(i)
            out.writerow([row[k] for k in FIELDS])


def load_raw(target: Target, path: str) -> tuple[float, int]:
    """The same file read by the csv module and loaded, as it is, into a plain table of its
    own columns (all text, no key, no index): COPY on PostgreSQL, one executemany
    transaction on SQLite. The table is made before the clock starts. (seconds, rows)"""
    with open(path, newline="", encoding="utf-8") as f:
        columns = [f'"{c}"' for c in next(csv.reader(f))]
    table = target.raw_table("raw_leads")
    con = target.connect()
    try:
        con.execute(f"DROP TABLE IF EXISTS {table}")
        con.execute(f"CREATE TABLE {table} ({', '.join(f'{c} text' for c in columns)})")
        start = time.perf_counter()
        with open(path, newline="", encoding="utf-8") as f:
            rows = csv.reader(f)
            next(rows)
            if target.kind == "postgresql":
                with con.transaction(), con.cursor() as cur, \
                        cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
            else:
                con.execute("BEGIN")
                con.executemany(f"INSERT INTO {table} VALUES ({', '.join('?' * len(columns))})", rows)
                con.execute("COMMIT")
        elapsed = time.perf_counter() - start
        count = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        return elapsed, count
    finally:
        con.close()


def measure(args: Any) -> Result:
    count = 100_000 if args.quick else 1_000_000
    ours, raw = [], []
    with tempfile.TemporaryDirectory(prefix="leadledger-bench-") as tmp:
        path = os.path.join(tmp, "leads.csv")
        write_csv(path, count)
        backend = ""
        for _ in range(args.repeat):
            with fresh_target(args.store) as target:
                backend = backend or server_version(target)
                with Ledger(target.url, clock=lambda: T0) as led:
                    make_world(led, 1)
                    start = time.perf_counter()
                    report = led.import_leads("mgr", POOL, read_rows(path), at=T0)
                    ours.append(time.perf_counter() - start)
                if report["imported"] != count:
                    raise RuntimeError(f"imported {report['imported']} of {count}: {report}")
                elapsed, rows = load_raw(target, path)
                if rows != count:
                    raise RuntimeError(f"the raw load stored {rows} of {count} rows")
                raw.append(elapsed)
    result = Result("bulk import", backend, {"leads": count, "repeat": args.repeat})
    o, r = count / median(ours), count / median(raw)
    pg = backend.startswith("PostgreSQL")
    result.add(f"import of {count:,} leads", "leads/s", o, r,
               "≥ 0.25× COPY" if pg else "", o >= 0.25 * r if pg else None,
               bound=f"{'COPY' if pg else 'one executemany transaction'} of the file's rows into a plain "
                     "table of its columns",
               note=f"{median(ours):.1f} s vs {median(raw):.2f} s")
    return result


if __name__ == "__main__":
    run_main(__doc__.splitlines()[0], measure)
