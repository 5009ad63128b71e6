"""Wall time of a CLI query (`leadledger --json owner L`, a process of its own) against the
interpreter starting and doing nothing (`python -c pass`).

    python bench/cli_query.py [--store URL] [--quick]
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from typing import Any

from common import (
    POOL, T0, Result, fresh_target, import_leads, make_world, median, run_main, server_version,
)

from ledger.application import Ledger


def leadledger() -> list[str]:
    """The installed `leadledger` script beside this interpreter (or on PATH)."""
    beside = os.path.join(os.path.dirname(sys.executable), "leadledger")
    found = beside if os.path.exists(beside) else shutil.which("leadledger")
    if not found:
        raise SystemExit("the leadledger command is not installed (pip install -e .)")
    return [found]


def wall(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}): {done.stdout!r} {done.stderr!r}")
    return elapsed


def measure(args: Any) -> Result:
    runs = 5 if args.quick else 15
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADLEDGER_")}
    with fresh_target(args.store) as target:
        backend = server_version(target)
        with Ledger(target.url, clock=lambda: T0) as led:
            reps = make_world(led, 1)
            import_leads(led, 10)
            led.claim(reps[0], "L-3")
        query = [*leadledger(), "--store", target.url, "--json", "owner", "L-3"]
        answer = json.loads(subprocess.run(query, env=env, capture_output=True, check=True).stdout)
        if answer.get("owner") != reps[0] or answer.get("pool") != POOL:
            raise RuntimeError(f"unexpected answer {answer}")
        wall(query, env)
        ours, bare = [], []
        for _ in range(runs):
            ours.append(wall(query, env))
            bare.append(wall([sys.executable, "-c", "pass"], env))
    result = Result("CLI query", backend, {"runs": runs})
    o = median(ours)
    result.add("leadledger --json owner L, wall", "s", o, median(bare), "≤ 0.35 s", o <= 0.35,
               note="raw = python -c pass")
    return result


if __name__ == "__main__":
    run_main(__doc__.splitlines()[0], measure)
