"""`owner --at` on a lead with 5,000 events (`Ledger.owner(lead, at=T)`), at times spread
over its history, against a raw read of the same stream's rows.

    python bench/owner_at.py [--store URL] [--quick]
"""

from __future__ import annotations

import random
import time
from datetime import timedelta
from typing import Any

from common import (
    T0, Result, Writer, fresh_target, lead_history, make_world, median, percentile, run_main,
    server_version,
)

from ledger.application import Ledger
from ledger.values import format_time

LEAD = "L-long"
EVENTS = 5000


def measure(args: Any) -> Result:
    calls = 50 if args.quick else 200
    ours, raw = [], []
    rng = random.Random(7)
    with fresh_target(args.store) as target:
        backend = server_version(target)
        with Ledger(target.url, clock=lambda: T0) as led:
            reps = make_world(led, 20)
            writer = Writer(led.store, batch=5000)
            last = lead_history(writer, LEAD, reps, EVENTS, T0, {}, cycle=50)
            writer.flush()
            span = (last - T0).total_seconds()
            times = [format_time(T0 + timedelta(seconds=rng.uniform(0, span))) for _ in range(calls)]
            stream_len = len(led.store.read_stream(f"lead:{LEAD}"))
            for at in times[:5]:
                led.owner(LEAD, at=at)  # warm the connection
            for _ in range(args.repeat):
                lat = []
                for at in times:
                    t = time.perf_counter()
                    led.owner(LEAD, at=at)
                    lat.append(time.perf_counter() - t)
                ours.append(lat)
        p = target.param
        con = target.connect()
        try:
            sql = (f"SELECT {target.position}, originator_version, state FROM {target.events} "
                   f"WHERE originator_id = {p} ORDER BY originator_version")
            for _ in range(args.repeat):
                lat = []
                for _ in times:
                    t = time.perf_counter()
                    con.execute(sql, (f"lead:{LEAD}",)).fetchall()
                    lat.append(time.perf_counter() - t)
                raw.append(lat)
        finally:
            con.close()
    result = Result("owner --at", backend, {"stream_events": stream_len, "calls": calls, "repeat": args.repeat})
    p50 = median([percentile(x, 50) * 1000 for x in ours])
    pg = backend.startswith("PostgreSQL")
    result.add(f"owner --at, lead of {stream_len:,} events, p50", "ms", p50,
               median([percentile(x, 50) * 1000 for x in raw]),
               "≤ 5 ms" if pg else "", p50 <= 5 if pg else None, bound="one read of the stream's rows")
    result.add("owner --at p99", "ms", median([percentile(x, 99) * 1000 for x in ours]),
               median([percentile(x, 99) * 1000 for x in raw]), bound="one read of the stream's rows")
    return result


if __name__ == "__main__":
    run_main(__doc__.splitlines()[0], measure)
