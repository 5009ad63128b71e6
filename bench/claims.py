"""Claims through the Python API (read state, decide, append; one transaction each) against
raw single-row autocommit INSERTs, with one client and with 4 concurrent clients; and one
client's claims with the log's Merkle tree against the same claims with the tree patched out
(in that client's process only), each on a store of its own, the two taking turns.

Each client is a process of its own, claiming leads nobody else touches (so no claim is
refused and no retry is measured), as a rep of a pool without a practical claim limit.
The raw clients run one single-row autocommit INSERT of an event-sized row into `raw_events`
per claim: the one durable write any claim needs, with nothing read or decided first.

    python bench/claims.py [--store URL] [--quick] [--variant-repeat N]
"""

from __future__ import annotations

import multiprocessing as mp
import queue
import time
from typing import Any

from common import (
    POOL, T0, VARIANT_TURNS, Result, Target, fresh_target, import_leads, make_world, median, percentile,
    run_main, server_version, without_tree,
)

from ledger import codec
from ledger import events as ev
from ledger.application import Ledger

WARMUP = 20
TREE_VARIANTS = ("with the tree", "no tree")


def _ours(url: str, rep: str, leads: list[str], warmup: list[str], tree: bool, barrier: Any, out: Any) -> None:
    with Ledger(url, clock=lambda: T0) as led:
        if not tree:
            without_tree(led.store)
        for lead in warmup:
            led.claim(rep, lead)
        barrier.wait()
        latencies = []
        start = time.perf_counter()
        for lead in leads:
            t = time.perf_counter()
            led.claim(rep, lead)
            latencies.append(time.perf_counter() - t)
        end = time.perf_counter()
    out.put((start, end, latencies))


def _raw(target: Target, client: str, count: int, barrier: Any, out: Any) -> None:
    event = ev.LeadClaimed(occurred_at=T0, actor=client, lead="L-1", pool=POOL, rep=client,
                           rules_version=1, claim_limit=50, held_before=3)
    state, _ = codec.encode("lead:L-1", 2, codec.GENESIS, T0, event)
    p = target.param
    sql = (f"INSERT INTO {target.raw_events} (originator_id, originator_version, topic, state) "
           f"VALUES ({p}, {p}, {p}, {p})")
    con = target.connect()
    try:
        def insert(i: int) -> None:  # autocommit: the statement is its own transaction
            if target.kind == "postgresql":
                con.execute(sql, (f"raw:{client}:{i}", 1, "LeadClaimed", state), prepare=True)
            else:
                con.execute(sql, (f"raw:{client}:{i}", 1, "LeadClaimed", state))

        for i in range(WARMUP):
            insert(-1 - i)
        barrier.wait()
        latencies = []
        start = time.perf_counter()
        for i in range(count):
            t = time.perf_counter()
            insert(i)
            latencies.append(time.perf_counter() - t)
        end = time.perf_counter()
    finally:
        con.close()
    out.put((start, end, latencies))


def _run(ctx: Any, jobs: list[tuple[Any, tuple]]) -> tuple[float, list[float]]:
    """Start the clients together; return (operations per second, every latency)."""
    barrier = ctx.Barrier(len(jobs))
    out = ctx.Queue()
    procs = [ctx.Process(target=fn, args=(*args, barrier, out)) for fn, args in jobs]
    for proc in procs:
        proc.start()
    results = []
    while len(results) < len(procs):
        try:
            results.append(out.get(timeout=1))
        except queue.Empty:
            if any(p.exitcode not in (None, 0) for p in procs):
                for p in procs:
                    p.kill()
                raise RuntimeError("a client failed") from None
    for proc in procs:
        proc.join()
        if proc.exitcode:
            raise RuntimeError(f"a client failed (exit {proc.exitcode})")
    start = min(r[0] for r in results)
    end = max(r[1] for r in results)
    latencies = [x for r in results for x in r[2]]
    return len(latencies) / (end - start), latencies


def tree_variants(ctx: Any, store: str | None, count: int, repeat: int) -> dict[str, list[float]]:
    """Claims/s of one client with the tree and without it, each run on a fresh store, taking
    turns (a busy spell on the machine hits each alike)."""
    rates: dict[str, list[float]] = {v: [] for v in TREE_VARIANTS}
    leads = [f"L-{i}" for i in range(count + WARMUP)]
    for _ in range(repeat):
        for variant in TREE_VARIANTS:
            with fresh_target(store) as target:
                with Ledger(target.url, clock=lambda: T0) as led:
                    rep = make_world(led, 1)[0]
                    import_leads(led, count + WARMUP)
                tree = variant == TREE_VARIANTS[0]
                rate, _ = _run(ctx, [(_ours, (target.url, rep, leads[WARMUP:], leads[:WARMUP], tree))])
                rates[variant].append(rate)
    return rates


def measure(args: Any) -> Result:
    single = 300 if args.quick else 2000
    each = 150 if args.quick else 1000
    clients = 4
    # at least five turns each: the target is a 10% band, and single runs here scatter as widely
    variant_repeat = getattr(args, "variant_repeat", 0) or max(args.repeat, VARIANT_TURNS)
    ctx = mp.get_context("spawn")
    with fresh_target(args.store) as target:
        result = Result("claims", server_version(target),
                        {"claims_1_client": single, "claims_per_client_of_4": each, "repeat": args.repeat,
                         "variant_repeat": variant_repeat})
        with Ledger(target.url, clock=lambda: T0) as led:
            reps = make_world(led, clients + 1)
            per_round = single + clients * each + (clients + 1) * WARMUP
            import_leads(led, per_round * args.repeat)
        counter = iter(range(10**9))

        def take(n: int) -> list[str]:
            return [f"L-{next(counter)}" for _ in range(n)]

        figures: dict[str, list] = {k: [] for k in ("o1", "r1", "o4", "r4", "o1lat", "r1lat", "o4lat")}
        for _ in range(args.repeat):
            rate, lat = _run(ctx, [(_ours, (target.url, reps[0], take(single), take(WARMUP), True))])
            figures["o1"].append(rate)
            figures["o1lat"].append(lat)
            rate, lat = _run(ctx, [(_raw, (target, "c0", single))])
            figures["r1"].append(rate)
            figures["r1lat"].append(lat)
            rate, lat = _run(ctx, [(_ours, (target.url, reps[1 + c], take(each), take(WARMUP), True))
                                   for c in range(clients)])
            figures["o4"].append(rate)
            figures["o4lat"].append(lat)
            rate, _ = _run(ctx, [(_raw, (target, f"c{c + 1}", each)) for c in range(clients)])
            figures["r4"].append(rate)
            target.create_raw()  # an empty raw table again for the next round
    variants = tree_variants(ctx, args.store, single, variant_repeat)

    def pct(key: str, p: float) -> float:
        return median([percentile(lat, p) * 1000 for lat in figures[key]])

    o1, r1, o4, r4 = (median(figures[k]) for k in ("o1", "r1", "o4", "r4"))
    bound = "one single-row autocommit INSERT per claim"
    result.add("claims/s, 1 client", "ops/s", o1, r1, "≥ 0.6× raw", o1 >= 0.6 * r1, bound=bound)
    result.add("claim p50, 1 client", "ms", pct("o1lat", 50), pct("r1lat", 50), bound=bound)
    result.add("claim p99, 1 client", "ms", pct("o1lat", 99), pct("r1lat", 99), "≤ 5 ms",
               pct("o1lat", 99) <= 5, bound=bound)
    result.add(f"claims/s, {clients} clients", "ops/s", o4, r4, "≥ 0.5× raw", o4 >= 0.5 * r4,
               bound=f"{bound}, {clients} clients")
    result.add(f"claim p50, {clients} clients", "ms", pct("o4lat", 50))
    result.add(f"claim p99, {clients} clients", "ms", pct("o4lat", 99))
    with_tree, no_tree = (median(variants[v]) for v in TREE_VARIANTS)
    result.add("claims/s, 1 client, with the Merkle tree ÷ without", "ops/s", with_tree, no_tree,
               "≥ 0.91× (within 10%)", with_tree >= no_tree / 1.1, bound="the same claims without the Merkle tree",
               note="a fresh store and process each run")
    return result


if __name__ == "__main__":
    run_main(__doc__.splitlines()[0], measure, variant_repeat=0)
