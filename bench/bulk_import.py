"""Bulk import of leads (`Ledger.import_leads` on a CSV file, as `leadledger lead import`
does) against loading the same rows raw: the same event rows and lead-key rows, with
COPY on PostgreSQL and one executemany transaction on SQLite.

Every repetition starts from a fresh store. The raw load is handed rows already encoded,
so it measures the database path alone.

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

from ledger import codec
from ledger import events as ev
from ledger.application import Ledger
from ledger.importing import FIELDS, read_rows
from ledger.values import lead_keys


def write_csv(path: str, count: int) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(FIELDS)
        for i in range(count):
            row = lead_fields(i)
            out.writerow([row[k] for k in FIELDS])


def raw_rows(count: int) -> tuple[list[tuple], list[tuple]]:
    """The rows an import of `count` leads stores: (stream, version, topic, state) and keys."""
    events, keys = [], []
    for i in range(count):
        row = lead_fields(i)
        attrs = ev.Attributes(**{k: v for k, v in row.items() if k != "id"})
        event = ev.LeadAdded(occurred_at=T0, actor="mgr", lead=row["id"], pool=POOL, attributes=attrs)
        stream = f"lead:{row['id']}"
        state, _ = codec.encode(stream, 1, codec.GENESIS, T0, event)
        events.append((stream, 1, "LeadAdded", state))
        keys.extend((k, v, row["id"]) for k, v in lead_keys(attrs.company, attrs.phone, attrs.email))
    return events, keys


def load_raw(target: Target, events: list[tuple], keys: list[tuple]) -> float:
    con = target.connect()
    try:
        start = time.perf_counter()
        if target.kind == "postgresql":
            with con.transaction(), con.cursor() as cur:
                with cur.copy(f"COPY {target.raw_events} (originator_id, originator_version, topic, state) "
                              "FROM STDIN") as copy:
                    for row in events:
                        copy.write_row(row)
                with cur.copy(f"COPY {target.raw_keys} (kind, value, lead) FROM STDIN") as copy:
                    for row in keys:
                        copy.write_row(row)
        else:
            con.execute("BEGIN")
            con.executemany(f"INSERT INTO {target.raw_events} (originator_id, originator_version, topic, "
                            "state) VALUES (?, ?, ?, ?)", events)
            con.executemany(f"INSERT INTO {target.raw_keys} (kind, value, lead) VALUES (?, ?, ?)", keys)
            con.execute("COMMIT")
        return time.perf_counter() - start
    finally:
        con.close()


def measure(args: Any) -> Result:
    count = 100_000 if args.quick else 1_000_000
    ours, raw = [], []
    with tempfile.TemporaryDirectory(prefix="leadledger-bench-") as tmp:
        path = os.path.join(tmp, "leads.csv")
        write_csv(path, count)
        events, keys = raw_rows(count)
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
                raw.append(load_raw(target, events, keys))
    result = Result("bulk import", backend, {"leads": count, "repeat": args.repeat})
    o, r = count / median(ours), count / median(raw)
    pg = backend.startswith("PostgreSQL")
    result.add(f"import of {count:,} leads", "leads/s", o, r,
               "≥ 0.25× COPY" if pg else "", o >= 0.25 * r if pg else None,
               note=f"{median(ours):.1f} s vs {median(raw):.1f} s; raw = {len(events) + len(keys):,} rows")
    return result


if __name__ == "__main__":
    run_main(__doc__.splitlines()[0], measure)
