"""Tree heads and receipts on a large log: `digest`, `receipt` and `verify-receipt` times
(targets, stated for 1,000,000 events: digest and receipt <= 20 ms, verify-receipt <= 5 ms
plus the interpreter's start), and the import that builds the log (its tree included).

The log is leads imported in bulk (one event per lead). `verify-receipt` is timed in process
(the check alone) and as the command (a new interpreter each time), beside the interpreter
starting and importing the CLI without doing anything.

    python bench/receipts.py [--store URL] [--quick] [--events N]
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import T0, Result, fresh_target, import_leads, make_world, median, run_main, server_version

from ledger.application import Ledger
from ledger.receipt_check import check_receipt

ROOT = Path(__file__).resolve().parent.parent


def _times(fn, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def _command(args: list[str], repeat: int) -> float:
    return median(_times(lambda: subprocess.run([sys.executable, *args], cwd=ROOT, check=True,
                                                capture_output=True), repeat))


def measure(args) -> Result:
    events = 20_000 if args.quick else args.events
    with fresh_target(args.store) as target, Ledger(target.url, clock=lambda: T0) as led:
        result = Result("receipts", server_version(target), {"events": events})
        make_world(led, reps=2)
        start = time.perf_counter()
        import_leads(led, events)
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
    result.add("verify-receipt (the check, in process)", "s", median(_times(lambda: check_receipt(receipt), 200)),
               target="<= 5 ms")
    with tempfile.TemporaryDirectory() as folder:
        file = Path(folder) / "r.json"
        file.write_text(json.dumps(receipt))
        repeat = max(args.repeat, 5)
        result.add("verify-receipt (the command)", "s", _command(["cli.py", "verify-receipt", str(file)], repeat))
        result.add("interpreter start + CLI import", "s", _command(["-c", "import cli"], repeat))
    return result


if __name__ == "__main__":
    run_main(__doc__.splitlines()[0], measure, events=100_000)
