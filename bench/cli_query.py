"""Wall time of CLI commands, each a process of its own (`leadledger --json owner L`,
`history L`, `holdings REP`, `--help`), against the interpreter starting and doing nothing
(`python -c pass`), measured in turns in the same run.

Targets: on SQLite, a query within 6x `python -c pass` and `--help` within 4x. On PostgreSQL
a query may take what the same query takes on SQLite (measured in the same run, on a SQLite
store of the same world) plus what a bare client pays to reach the server: `python -c
"import psycopg; psycopg.connect(URL).execute('SELECT 1')"` less `python -c pass`.
Every process may write its bytecode cache (the first, unmeasured, turn does), as an
installed package runs: PYTHONDONTWRITEBYTECODE would measure compiling instead.

    python bench/cli_query.py [--store URL] [--quick]
"""

from __future__ import annotations

import json
import subprocess
import sys
from contextlib import ExitStack
from typing import Any

from common import (
    POOL, T0, Result, Target, cli_env, fresh_target, import_leads, leadledger, make_world, median, run_main,
    server_version, wall,
)

from ledger.application import Ledger

PASS = "interpreter start (python -c pass)"
CLIENT = "import psycopg, sys; psycopg.connect(sys.argv[1]).execute('SELECT 1').fetchone()"
TARGETS = {"owner": 6, "history": 6, "holdings": 6, "--help": 4}


def queries(target: Target) -> dict[str, list[str]]:
    """A small world (one rep holding L-3), and the command line of each measured command."""
    with Ledger(target.url, clock=lambda: T0) as led:
        reps = make_world(led, 1)
        import_leads(led, 10)
        led.claim(reps[0], "L-3")
    base = [*leadledger(), "--store", target.url]
    return {"owner": [*base, "--json", "owner", "L-3"], "history": [*base, "--json", "history", "L-3"],
            "holdings": [*base, "--json", "holdings", reps[0]], "--help": [*base, "--help"]}


def check(argv: list[str], env: dict[str, str]) -> None:
    answer = json.loads(subprocess.run(argv, env=env, capture_output=True, check=True).stdout)
    if answer.get("owner") != "r0" or answer.get("pool") != POOL:
        raise RuntimeError(f"unexpected answer {answer}")


def measure(args: Any) -> Result:
    runs = 7 if args.quick else 21
    env = cli_env()
    with ExitStack() as stack:
        target = stack.enter_context(fresh_target(args.store))
        backend = server_version(target)
        pg = target.kind == "postgresql"
        commands = {("here", name): argv for name, argv in queries(target).items()}
        if pg:  # the same world on SQLite, and a bare client, measured in the same turns
            lite = stack.enter_context(fresh_target(None))
            commands |= {("sqlite", name): argv for name, argv in queries(lite).items()}
            commands["client", "psycopg"] = [sys.executable, "-c", CLIENT, target.conninfo]
        commands["bare", "pass"] = [sys.executable, "-c", "pass"]
        check(commands["here", "owner"], env)
        times: dict[tuple[str, str], list[float]] = {key: [] for key in commands}
        for key, argv in commands.items():  # warm the file cache
            wall(argv, env)
        for _ in range(runs):
            for key, argv in commands.items():
                times[key].append(wall(argv, env))
    m = {key: median(values) for key, values in times.items()}
    bare = m["bare", "pass"]
    result = Result("CLI start-up", backend, {"runs": runs})
    for name, times_pass in TARGETS.items():
        ours = m["here", name]
        label = f"leadledger --json {name} L" if name != "--help" else "leadledger --help"
        if pg and name != "--help":
            allowed = m["sqlite", name] + m["client", "psycopg"] - bare
            result.add(f"{label}, wall", "s", ours, bare, f"≤ SQLite + client ({allowed:.3f} s)",
                       ours <= allowed, bound=PASS,
                       note=f"SQLite {m['sqlite', name]:.3f} s; bare client {m['client', 'psycopg']:.3f} s")
        else:
            result.add(f"{label}, wall", "s", ours, bare, f"≤ {times_pass}× python -c pass",
                       ours <= times_pass * bare, bound=PASS)
    if pg:
        result.add("python: import psycopg, connect, SELECT 1", "s", m["client", "psycopg"], bare,
                   bound=PASS, note="what any PostgreSQL client process pays")
    return result


if __name__ == "__main__":
    run_main(__doc__.splitlines()[0], measure)
