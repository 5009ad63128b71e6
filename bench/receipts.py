"""Tree heads and receipts on a large log: `digest`, `receipt` and `verify-receipt` times
(targets, stated for 1,000,000 events: digest and receipt <= 20 ms, verify-receipt <= 5 ms
plus the interpreter's start), `verify --digest` of an old head (by the stored tree's proofs,
not rehashing the log), and the import that builds the log (its tree included).

The log is leads imported in bulk (one event per lead, 100,000 an import). `verify-receipt` is
timed in process (the check alone) and as the command (a new interpreter each time), beside the
interpreter starting and importing the CLI without doing anything. `verify --digest` of the
head at half the log is set beside a keyset read of those events' rows (the least a check that
rehashes them must read), and beside `verify` of the whole log (every chain), run once.

    python bench/receipts.py [--store URL] [--quick] [--events N] [--repeat R]
"""

from __future__ import annotations

import json
import random
import sys
import tempfile
import time
from pathlib import Path

from common import (
    POOL, T0, Result, Target, cli_env, fresh_target, lead_fields, leadledger, make_world, median, run_main,
    server_version, wall,
)

from ledger import checkpoint
from ledger.application import Ledger
from ledger.receipt_check import check_receipt

PASS = "interpreter start (python -c pass)"
CRYPTO = "from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey"
CHUNK = 100_000  # leads an import
BATCH = 5000


def _import(led: Ledger, count: int) -> None:
    for start in range(0, count, CHUNK):
        rows = ((i + 2, lead_fields(i)) for i in range(start, min(count, start + CHUNK)))
        led.import_leads("mgr", POOL, rows, at=T0)


def _raw_read(target: Target, upto: int) -> float:
    """Every row of positions 1..upto, BATCH at a time (keyset pagination)."""
    p = target.param
    sql = (f"SELECT {target.position}, originator_id, originator_version, state FROM {target.events} "
           f"WHERE {target.position} > {p} AND {target.position} <= {p} ORDER BY {target.position} LIMIT {p}")
    con = target.connect()
    try:
        start, position = time.perf_counter(), 0
        while batch := con.execute(sql, (position, upto, BATCH)).fetchall():
            position = batch[-1][0]
        return time.perf_counter() - start
    finally:
        con.close()


def _times(fn, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def _command_times(result: Result, receipts: dict[str, dict], public_key: str, runs: int) -> None:
    """`leadledger verify-receipt FILE` of an unsigned and of a signed receipt, each a process
    of its own, in turns with `python -c pass` and with the bare import of the signature's
    library (which a signed receipt needs and an unsigned one does not)."""
    env = cli_env()
    with tempfile.TemporaryDirectory() as folder:
        commands = {"pass": [sys.executable, "-c", "pass"], "crypto": [sys.executable, "-c", CRYPTO]}
        for kind, receipt in receipts.items():
            file = Path(folder) / f"{kind}.json"
            file.write_text(json.dumps(receipt))
            commands[kind] = [*leadledger(), "verify-receipt", str(file)]
        commands["signed, key given"] = [*commands["signed"], "--public-key", public_key]
        times: dict[str, list[float]] = {name: [] for name in commands}
        for name, argv in commands.items():  # warm the file and bytecode caches
            wall(argv, env)
        for _ in range(runs):
            for name, argv in commands.items():
                times[name].append(wall(argv, env))
    m = {name: median(values) for name, values in times.items()}
    bare = m["pass"]
    for name in ("unsigned", "signed", "signed, key given"):
        result.add(f"verify-receipt, {name} receipt (the command), wall", "s", m[name], bare,
                   "≤ python -c pass + 5 ms", m[name] <= bare + 0.005, bound=PASS,
                   note=f"{(m[name] - bare) * 1000:.1f} ms beyond the interpreter's start")
    result.add("python: import the Ed25519 check of the cryptography library", "s", m["crypto"], bare, bound=PASS,
               note=f"{(m['crypto'] - bare) * 1000:.1f} ms beyond the interpreter's start")


def measure(args) -> Result:
    events = 20_000 if args.quick else args.events
    with fresh_target(args.store) as target, Ledger(target.url, clock=lambda: T0) as led:
        result = Result("receipts", server_version(target), {"events": events})
        make_world(led, reps=2)
        start = time.perf_counter()
        _import(led, events)
        result.add("import (tree included)", "s", time.perf_counter() - start)
        size = led.store.max_position()
        result.params["log_size"] = size
        assert led.store.tree.size() == size
        led.digest()  # warm
        result.add("digest", "s", median(_times(led.digest, 50)), target="<= 20 ms at 1M")
        picks = [random.Random(7).randint(1, size) for _ in range(50)]
        it = iter(picks * 2)
        result.add("receipt", "s", median(_times(lambda: led.receipt(next(it)), 50)), target="<= 20 ms at 1M")
        receipt = led.receipt(size // 2)
        key_file = Path(tempfile.mkdtemp()) / "signing.pem"
        key = checkpoint.b64(checkpoint.public_key_of(checkpoint.write_new_key(key_file)))
        receipts = {"unsigned": receipt, "signed": led.receipt(size // 2, signing_key=str(key_file))}
        _verify_digest(led, target, result, args.repeat)
    result.add("verify-receipt (the check, in process)", "s", median(_times(lambda: check_receipt(receipt), 200)),
               target="<= 5 ms")
    _command_times(result, receipts, key, 11 if args.quick else 21)
    return result


def _verify_digest(led: Ledger, target: Target, result: Result, repeat: int) -> None:
    """`verify --digest` of an old head (half the log) and of today's, against a raw read of the
    old head's rows; `verify` of the whole log once."""
    size = led.store.max_position()
    old = led.digest(size // 2)["digest"]
    raw = median([_raw_read(target, size // 2) for _ in range(repeat)])
    took = median(_times(lambda: led.verify(old), repeat))
    result.add(f"verify --digest, head at {size // 2:,}", "s", took, raw, bound="keyset read of those events' rows",
               target="no rehash of the log")
    now = led.digest()["digest"]
    result.add(f"verify --digest, head at {size:,}", "s", median(_times(lambda: led.verify(now), repeat)))
    result.add(f"verify (every chain), {size:,} events", "s", median(_times(led.verify, 1)),
               median([_raw_read(target, size) for _ in range(repeat)]), bound="keyset read of the events table")


if __name__ == "__main__":
    run_main(__doc__.splitlines()[0], measure, events=100_000)
