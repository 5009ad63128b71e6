"""Rebuild of every read model from a long log (`leadledger project --rebuild`) and a full
verify (`leadledger verify`: every hash chain) against a raw keyset read of the same event
table (position, stream, version, payload; BATCH rows a query), each in a process of its own
so its peak memory is its own. Both must read every event once: the read bounds them.

The log is a realistic mix written straight to the store: each lead added, then claimed,
followed up and released by rotating reps (about ten events per lead, a third of them on
the reps' holdings streams).

    python bench/rebuild.py [--store URL] [--quick] [--events N]

`--events` sets the log's size (default 1,000,000; 100,000 with `--quick`).
"""

from __future__ import annotations

import multiprocessing as mp
import time
from typing import Any

from common import (
    T0, Result, Target, Writer, fresh_target, lead_history, make_world, median, peak_rss_mb,
    run_main, server_version,
)

from ledger.application import Ledger

BATCH = 5000


def timed_scan(url: str, job: str, out: Any, clock: Any = None) -> None:
    """In a process of its own: a rebuild of every read model, or a verify; puts its time and
    the process's peak RSS on `out`."""
    with Ledger(url, clock=clock) as led:
        start = time.perf_counter()
        if job == "verify":
            report = led.verify()
            if not report.get("ok", True):
                raise RuntimeError(f"verify failed: {report}")
        else:
            led.views.rebuild()
        elapsed = time.perf_counter() - start
    out.put((elapsed, peak_rss_mb()))


def _raw(target: Target, out: Any) -> None:
    """Read every row in position order, BATCH at a time (keyset pagination)."""
    p = target.param
    sql = (f"SELECT {target.position}, originator_id, originator_version, state FROM {target.events} "
           f"WHERE {target.position} > {p} ORDER BY {target.position} LIMIT {p}")
    con = target.connect()
    rows = 0
    try:
        start = time.perf_counter()
        position = 0
        while True:
            if target.kind == "postgresql":
                batch = con.execute(sql, (position, BATCH), prepare=True).fetchall()
            else:
                batch = con.execute(sql, (position, BATCH)).fetchall()
            if not batch:
                break
            rows += len(batch)
            position = batch[-1][0]
        elapsed = time.perf_counter() - start
    finally:
        con.close()
    out.put((elapsed, peak_rss_mb(), rows))


def _child(ctx: Any, fn: Any, *args: Any) -> tuple:
    out = ctx.Queue()
    proc = ctx.Process(target=fn, args=(*args, out))
    proc.start()
    result = out.get()
    proc.join()
    return result


def build_log(url: str, events: int) -> int:
    with Ledger(url, clock=lambda: T0) as led:
        reps = make_world(led, 20)
        writer = Writer(led.store, batch=5000)
        held: dict[str, int] = {}
        n = 0
        while writer.written + len(writer.pending) < events:
            lead_history(writer, f"L-{n}", reps[n % 20:] + reps[:n % 20], 10, T0, held)
            n += 1
        writer.flush()
        return led.store.max_position()


def measure(args: Any) -> Result:
    count = getattr(args, "events", 0) or (100_000 if args.quick else 1_000_000)
    ctx = mp.get_context("spawn")
    ours, raw, ours_rss, raw_rss, verify = [], [], [], [], []
    with fresh_target(args.store) as target:
        backend = server_version(target)
        total = build_log(target.url, count)
        for _ in range(args.repeat):
            elapsed, rss = _child(ctx, timed_scan, target.url, "rebuild")
            ours.append(elapsed)
            ours_rss.append(rss)
            verify.append(_child(ctx, timed_scan, target.url, "verify")[0])
            elapsed, rss, rows = _child(ctx, _raw, target)
            if rows != total:
                raise RuntimeError(f"the raw read saw {rows} rows, the log holds {total}")
            raw.append(elapsed)
            raw_rss.append(rss)
    result = Result("rebuild", backend, {"events": total, "repeat": args.repeat})
    o, r = total / median(ours), total / median(raw)
    bound = "keyset read of the events table"
    result.add(f"rebuild from {total:,} events", "events/s", o, r, "≥ 0.3× raw read", o >= 0.3 * r,
               bound=bound, note=f"{median(ours):.1f} s vs {median(raw):.2f} s")
    peak = max(ours_rss)
    result.add("rebuild peak RSS", "MB", peak, max(raw_rss), "≤ 200 MB", peak <= 200,
               bound=f"{bound} (its peak RSS)")
    v = total / median(verify)
    result.add(f"verify of {total:,} events", "events/s", v, r, "≥ 0.3× raw read", v >= 0.3 * r, bound=bound,
               note=f"{median(verify):.1f} s vs {median(raw):.2f} s")
    return result


if __name__ == "__main__":
    run_main(__doc__.splitlines()[0], measure, events=0)
