"""As-of reads: `holdings REP --at T` and `--upto N` against `holdings REP`
now, and `export holdings --at T` (a replay of the log up to T) against `project --rebuild`.

The log: leads claimed, followed up and released by rotating reps one after another over
time (about ten events each), and besides them `--held` leads per rep claimed early and held
ever since, so a rep holds about as many leads at any moment as he does now.

    python bench/asof.py [--store URL] [--events 200000] [--quick]
"""

from __future__ import annotations

import random
import time
from datetime import timedelta
from typing import Any

from common import (
    T0, Result, Writer, fresh_target, latencies, lead_history, make_world, median, percentile, run_main,
    server_version,
)

from ledger import events as ev
from ledger.application import Ledger
from ledger.state import desk_stream, lead_stream
from ledger.values import format_time

REPS = 20


def build(led: Ledger, events: int, held_each: int) -> tuple[Any, Any]:
    """Write the log; return the time span it covers."""
    reps = make_world(led, REPS)
    writer = Writer(led.store, batch=5000)
    held: dict[str, int] = {}
    for i in range(held_each * REPS):  # held from the start, never released
        rep, lead, at = reps[i % REPS], f"H-{i}", T0 + timedelta(seconds=i)
        writer.add(lead_stream(lead), ev.LeadAdded(occurred_at=at, actor="mgr", lead=lead, pool="bench",
                                                   attributes=ev.Attributes(company=f"Company {lead}")))
        held[rep] = held.get(rep, 0) + 1
        writer.add(lead_stream(lead), ev.LeadClaimed(occurred_at=at, actor=rep, lead=lead, pool="bench", rep=rep,
                                                     rules_version=1, claim_limit=1_000_000,
                                                     held_before=held[rep] - 1))
        writer.add(desk_stream(rep, "bench"), ev.HoldingsChanged(
            occurred_at=at, actor=rep, rep=rep, pool="bench", lead=lead, held=held[rep],
            day=at.date().isoformat(), claims_on_day=1))
    start = T0 + timedelta(hours=1)
    n, last = 0, start
    while writer.written + len(writer.pending) < events:
        last = lead_history(writer, f"L-{n}", reps[n % REPS:] + reps[:n % REPS], 10,
                            start + timedelta(minutes=12 * n), held)
        n += 1
    writer.flush()
    return start, last


def measure(args: Any) -> Result:
    events = 50_000 if args.quick else args.events
    calls = 30 if args.quick else 100
    rng = random.Random(11)
    with fresh_target(args.store) as target:
        backend = server_version(target)
        with Ledger(target.url, clock=lambda: T0 + timedelta(days=3650)) as led:
            start, last = build(led, events, args.held)
            led.project()
            top = led.store.max_position()
            span = (last - start).total_seconds()
            moments = [format_time(start + timedelta(seconds=rng.uniform(span / 2, span))) for _ in range(calls)]
            positions = [rng.randint(top // 2, top) for _ in range(calls)]
            reps = [f"r{rng.randrange(REPS)}" for _ in range(calls)]
            led.holdings("r0"), led.holdings("r0", at=moments[0])  # warm up
            now, at, upto = [], [], []
            for _ in range(args.repeat):
                now.append(latencies(led.holdings, [(r,) for r in reps]))
                at.append(latencies(lambda r, m: led.holdings(r, at=m), list(zip(reps, moments, strict=True))))
                upto.append(latencies(lambda r, p: led.holdings(r, upto=p), list(zip(reps, positions, strict=True))))
            held = len(led.holdings("r0", at=moments[0])["leads"])
            export_at, rebuild = [], []
            for _ in range(args.repeat):
                t = time.perf_counter()
                _, rows = led.export("holdings", at=moments[0])
                sum(1 for _ in rows)
                export_at.append(time.perf_counter() - t)
                t = time.perf_counter()
                led.views.rebuild()
                rebuild.append(time.perf_counter() - t)
    result = Result("as-of reads", backend, {"events": top, "held_per_rep": held, "calls": calls,
                                             "repeat": args.repeat})

    def p(runs: list[list[float]], q: float) -> float:
        return median([percentile(x, q) * 1000 for x in runs])

    for q in (50, 99):
        ratio_ok = p(at, q) <= 1.5 * p(now, q)
        result.add(f"holdings --at p{q} (raw: holdings now)", "ms", p(at, q), p(now, q),
                   "≤ 1.5× now" if q == 50 else "", ratio_ok if q == 50 else None)
        result.add(f"holdings --upto p{q} (raw: holdings now)", "ms", p(upto, q), p(now, q))
    result.add("export holdings --at (raw: project --rebuild)", "s", median(export_at), median(rebuild),
               "≤ 1× rebuild", median(export_at) <= median(rebuild) * 1.1)
    return result


if __name__ == "__main__":
    run_main(__doc__.splitlines()[0], measure, events=200_000, held=25)
