"""The scale run: a store of N events (default 10,000,000) built through the real paths,
with what it costs measured at checkpoints on the way (1/10, 1/2 and all of N), so that
growth can be judged: a query's cost should stay flat, a scan's cost per event too.

The store grows in blocks of about N/100 events. Each block is one `lead import` of plain
leads (`Ledger.import_leads`), among them rows with an `owner` (leads the block's new reps
hold already), then the block's new reps each claim leads of the pool one by one
(`Ledger.claim`). Every rep holds the same few leads however big the store grows, as in a
firm that hires as its lead base grows. Business time moves on an hour a block.

At each checkpoint:
- the import and claim rates of the blocks since the last checkpoint;
- `project --rebuild` and `verify` (each in a process of its own: time and peak RSS);
- `owner LEAD --at T` and `holdings REP --at T` (`Ledger.owner`, `Ledger.holdings`), p50 and
  p99 over random leads, reps and moments;
- `digest` and `receipt POSITION`, medians;
- the size on disk (the ledger's tables, their indexes and the read models) per event.

The last rows compare the last checkpoint with the first: the growth of each query's p50
(flat: about 1x however many more events) and of each scan's time per event (linear: about 1x).
It is a README run, not a CI one: at 10,000,000 events it takes hours.

    python bench/scale.py --store postgresql://USER@HOST:PORT/DB [--events 10000000]
        [--checkpoints 0.1,0.5,1] [--keep 1]

`--keep 1` leaves the store in place afterwards, to look into it.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import random
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from common import (
    ADMIN, POOL, T0, Result, Target, fresh_target, latencies, lead_fields, make_world, median, percentile,
    run_main, server_version,
)
from rebuild import timed_scan

from ledger.application import Ledger
from ledger.values import format_time

NEW_REPS = 5  # reps hired per block
HELD_IMPORTED = 20  # leads each new rep holds already when his block is imported
CLAIMS = 20  # leads each new rep then claims
CALLS = 200  # timed calls of each query per checkpoint
LATER = T0 + timedelta(days=36500)  # the ledger's clock: every business time is in its past


@dataclass
class Growth:
    """What the store has become, and the time spent making it since the last checkpoint."""

    leads: int = 0
    per_block: int = 0  # leads imported per block
    blocks: int = 0
    reps: list[tuple[str, int]] = field(default_factory=list)  # (rep, block he was hired in)
    imported: int = 0
    import_s: float = 0.0
    import_total_s: float = 0.0
    claims: int = 0
    claim_s: float = 0.0

    def moment(self, block: int) -> Any:
        return T0 + timedelta(hours=block + 1)


def grow_block(led: Ledger, g: Growth, size: int) -> None:
    """One block: about `size` events (plain leads, leads held by the new reps), then claims."""
    b = g.blocks
    at = g.moment(b)
    hired = [f"r{b}-{k}" for k in range(NEW_REPS)]
    for rep in hired:
        led.add_person(ADMIN, rep, rep.upper(), "rep", at=at)
    led.grant(ADMIN, POOL, hired, at=at)
    plain = max(size - NEW_REPS * (HELD_IMPORTED * 3 + CLAIMS * 2), NEW_REPS * CLAIMS)
    first = g.leads

    def rows() -> Any:
        for n in range(plain + NEW_REPS * HELD_IMPORTED):
            fields = lead_fields(first + n)
            if n < NEW_REPS * HELD_IMPORTED:
                fields["owner"] = hired[n % NEW_REPS]
            yield n + 2, fields

    start = time.perf_counter()
    report = led.import_leads("mgr", POOL, rows(), at=at)
    g.import_s += time.perf_counter() - start
    g.import_total_s += time.perf_counter() - start
    count = plain + NEW_REPS * HELD_IMPORTED
    if report["imported"] != count:
        raise RuntimeError(f"block {b}: imported {report['imported']} of {count}")
    g.imported += count
    g.leads += count
    g.per_block = count
    pooled = first + NEW_REPS * HELD_IMPORTED  # the block's first lead nobody holds
    start = time.perf_counter()
    for k in range(NEW_REPS * CLAIMS):
        led.claim(hired[k % NEW_REPS], f"L-{pooled + k}", at=at + timedelta(minutes=1 + k // NEW_REPS))
    g.claim_s += time.perf_counter() - start
    g.claims += NEW_REPS * CLAIMS
    g.reps += [(rep, b) for rep in hired]
    g.blocks += 1


def scan(url: str, job: str) -> tuple[float, float]:
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    proc = ctx.Process(target=timed_scan, args=(url, job, out))
    proc.start()
    result = out.get()
    proc.join()
    if proc.exitcode:
        raise RuntimeError(f"{job} ended with status {proc.exitcode}")
    return result


def size_on_disk(target: Target) -> int:
    """Bytes of the ledger's tables, with their indexes and TOAST, and of its read models."""
    if target.kind != "postgresql":
        return sum(os.path.getsize(target.path + s) for s in ("", "-wal") if os.path.exists(target.path + s))
    con = target.connect()
    try:
        return con.execute(
            "SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'm') "
            "AND n.nspname IN (%s, %s)", (target.schema, f"{target.schema}_read")).fetchone()[0]
    finally:
        con.close()


def checkpoint(target: Target, led: Ledger, g: Growth, rng: random.Random) -> dict[str, float]:
    """Every figure of one checkpoint (seconds, MB, bytes)."""
    events = led.store.max_position()
    f: dict[str, float] = {"events": events, "leads": g.leads}
    f["import_rate"] = g.imported / g.import_s if g.import_s else float("nan")
    f["import_total_s"] = g.import_total_s
    f["claim_rate"] = g.claims / g.claim_s if g.claim_s else float("nan")
    g.imported, g.import_s, g.claims, g.claim_s = 0, 0.0, 0, 0.0
    f["rebuild_s"], f["rebuild_rss"] = scan(target.url, "rebuild")
    f["verify_s"], f["verify_rss"] = scan(target.url, "verify")
    span = (g.moment(g.blocks) - T0).total_seconds()
    owner_args = []
    for _ in range(CALLS):  # a moment after the lead was added
        lead = rng.randrange(g.leads)
        added = (g.moment(lead // g.per_block) - T0).total_seconds()
        owner_args.append((f"L-{lead}", format_time(T0 + timedelta(seconds=rng.uniform(added, span)))))
    holdings_args = []
    for _ in range(CALLS):
        rep, hired = g.reps[rng.randrange(len(g.reps))]
        since = (g.moment(hired) - T0).total_seconds() + 600  # after his claims
        holdings_args.append((rep, format_time(T0 + timedelta(seconds=rng.uniform(since, span)))))
    led.views.catch_up()
    led.owner(*owner_args[0][:1]), led.holdings(holdings_args[0][0])  # warm the connection
    owner = latencies(lambda lead, at: led.owner(lead, at=at), owner_args)
    holdings = latencies(lambda rep, at: led.holdings(rep, at=at), holdings_args)
    held = [len(led.holdings(rep, at=at)["leads"]) for rep, at in holdings_args[:10]]
    if min(held) < HELD_IMPORTED:
        raise RuntimeError(f"a rep held fewer leads than he was given: {held}")
    for q in (50, 99):
        f[f"owner_p{q}"] = percentile(owner, q)
        f[f"holdings_p{q}"] = percentile(holdings, q)
    led.digest()
    f["digest_s"] = median(latencies(led.digest, [()] * 20))
    f["receipt_s"] = median(latencies(led.receipt, [(rng.randint(1, events),) for _ in range(20)]))
    f["bytes"] = size_on_disk(target)
    return f


def report(result: Result, points: list[dict[str, float]]) -> None:
    for f in points:
        n = f"@ {int(f['events']):,} events"
        result.add(f"import, the blocks up to {n}", "leads/s", f["import_rate"],
                   note=f"{f['import_total_s']:,.1f} s of import in all")
        result.add(f"claims, the blocks up to {n}", "claims/s", f["claim_rate"])
        result.add(f"project --rebuild {n}", "s", f["rebuild_s"], note=f"peak RSS {f['rebuild_rss']:.0f} MB; "
                   f"{f['events'] / f['rebuild_s']:,.0f} events/s")
        result.add(f"verify {n}", "s", f["verify_s"], note=f"{f['events'] / f['verify_s']:,.0f} events/s")
        for q in (50, 99):
            result.add(f"owner --at p{q} {n}", "ms", f[f"owner_p{q}"] * 1000)
            result.add(f"holdings --at p{q} {n}", "ms", f[f"holdings_p{q}"] * 1000)
        result.add(f"digest {n}", "ms", f["digest_s"] * 1000)
        result.add(f"receipt {n}", "ms", f["receipt_s"] * 1000)
        result.add(f"size on disk per event {n}", "bytes", f["bytes"] / f["events"],
                   note=f"{f['bytes'] / 2**20:,.0f} MB in all")
    first, last = points[0], points[-1]
    grown = last["events"] / first["events"]
    for key, what, expected in (("owner_p50", "owner --at p50", "flat (about 1x)"),
                                ("holdings_p50", "holdings --at p50", "flat (about 1x)"),
                                ("digest_s", "digest", "log n (a little over 1x)"),
                                ("receipt_s", "receipt", "log n (a little over 1x)")):
        result.add(f"{what}: growth over {grown:.1f}x the events", "x", last[key] / first[key], target=expected)
    for key, what in (("rebuild_s", "rebuild"), ("verify_s", "verify")):
        per = [p[key] / p["events"] for p in (first, last)]
        result.add(f"{what} time per event: growth over {grown:.1f}x the events", "x", per[1] / per[0],
                   target="linear (about 1x)")
    result.add(f"size per event: growth over {grown:.1f}x the events", "x",
               (last["bytes"] / last["events"]) / (first["bytes"] / first["events"]), target="about 1x")


def measure(args: Any) -> Result:
    marks = sorted(float(x) for x in args.checkpoints.split(","))
    size = max(args.events // 100, 2_000)
    rng = random.Random(17)
    points = []
    with fresh_target(args.store, keep=bool(args.keep)) as target:
        backend = server_version(target)
        with Ledger(target.url, clock=lambda: LATER) as led:
            make_world(led, 0)
            g = Growth()
            for mark in marks:
                while led.store.max_position() < mark * args.events:
                    grow_block(led, g, size)
                points.append(checkpoint(target, led, g, rng))
                print(f"checkpoint at {points[-1]['events']:,.0f} events: "  # kept should the run end early
                      + ", ".join(f"{k} {v:.6g}" for k, v in points[-1].items()), flush=True)
    result = Result("scale run", backend, {"events": args.events, "block": size, "calls": CALLS})
    report(result, points)
    return result


if __name__ == "__main__":
    run_main(__doc__.splitlines()[0], measure, events=10_000_000, checkpoints="0.1,0.5,1", keep=0)
