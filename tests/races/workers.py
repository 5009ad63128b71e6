"""Run ledger commands in real OS processes that start together, so that they collide.

`race(work, jobs)` starts one "spawn" process per job (`race_all` takes (work, job) pairs); each opens its own store, gets
ready (imports, connections), then waits at a shared barrier so that all of them issue
their commands at the same moment. With `forced=True` each process also waits at a second
barrier just before its first append, after it has read the state and decided: every
process then appends against the same stream versions, so all but one of the writers to
a stream must lose, re-read and decide again — the race is certain, not merely likely.

Each process reports what it saw (results, refusals, conflicts it lost, or its traceback);
`race` returns these reports in job order. `race_rounds` runs a race several times in the
same processes, each round on fresh leads, so that one lucky interleaving cannot pass alone.
"""

from __future__ import annotations

import contextlib
import io
import json
import multiprocessing
import random
import time
import traceback
from collections.abc import Callable
from typing import Any

from ledger.errors import LedgerError

START_TIMEOUT = 60  # seconds a process waits for the others at a barrier


def race(work: Callable[..., dict[str, Any]], jobs: list[dict[str, Any]], *,
         forced: bool = False, timeout: float = 120) -> list[dict[str, Any]]:
    """Run `work(**job)` in one new process per job, all released at once."""
    return race_all([(work, job) for job in jobs], forced=forced, timeout=timeout)


def race_all(jobs: list[tuple[Callable[..., dict[str, Any]], dict[str, Any]]], *,
             forced: bool = False, timeout: float = 120) -> list[dict[str, Any]]:
    """Run each `work(**job)` in a new process of its own, all released at once."""
    got: list[list[dict[str, Any]]] = []
    race_rounds(1, lambda _: jobs, lambda _, reports: got.append(reports), forced=forced, timeout=timeout)
    return got[0]


def race_rounds(rounds: int, jobs_of: Callable[[int], list[tuple[Callable[..., dict[str, Any]], dict[str, Any]]]],
                check: Callable[[int, list[dict[str, Any]]], None], *,
                forced: bool = False, timeout: float = 120) -> None:
    """Run a race `rounds` times in the same processes (spawning them is the slow part).

    Before round r, `jobs_of(r)` (here, in this process) sets up what the round needs and
    returns one (work, job) pair per process; after it, `check(r, reports)` gets the reports
    in job order. A report's `exitcode` is the process's exit code after the last round, and 0
    before that for a process that is still alive (it has reported without a traceback).
    """
    ctx = multiprocessing.get_context("spawn")
    first = jobs_of(0)
    start = ctx.Barrier(len(first))
    gate = ctx.Barrier(len(first)) if forced else None
    queue = ctx.Queue()
    inboxes = [ctx.Queue() for _ in first]
    procs = [ctx.Process(target=_child, args=(inbox, i, start, gate, queue)) for i, inbox in enumerate(inboxes)]
    for p in procs:
        p.start()
    try:
        for r in range(rounds):
            jobs = first if r == 0 else jobs_of(r)
            assert len(jobs) == len(procs), "every round has one job per process"
            for inbox, job in zip(inboxes, jobs, strict=True):
                inbox.put(job)
            reports: dict[int, dict[str, Any]] = {}
            for _ in procs:
                index, report = queue.get(timeout=timeout)
                reports[index] = report
            if r == rounds - 1:
                for inbox in inboxes:
                    inbox.put(None)
                for p in procs:
                    p.join(timeout=10)
            for i, p in enumerate(procs):
                reports[i]["exitcode"] = (0 if p.is_alive() else None) if r < rounds - 1 else p.exitcode
            check(r, [reports[i] for i in range(len(procs))])
    finally:
        for inbox in inboxes:
            inbox.put(None)
        for p in procs:
            p.join(timeout=10)
            if p.is_alive():
                p.kill()
                p.join()


def _child(inbox, index, start, gate, queue) -> None:
    try:
        conflicts = _count_conflicts()
        waited = _gate_first_commit(gate) if gate is not None else None
    except BaseException:  # the test fails on any traceback; it must see it whole
        queue.put((index, {"traceback": traceback.format_exc()}))
        return
    while (task := inbox.get()) is not None:
        work, job = task
        conflicts["lost"] = 0
        if waited is not None:
            waited.clear()  # each round's first append waits for the others again
        try:
            report = work(start=start, **job)
            report["conflicts"] = conflicts["lost"]
        except BaseException:  # the test fails on any traceback; it must see it whole
            report = {"traceback": traceback.format_exc()}
        queue.put((index, report))


def _count_conflicts() -> dict[str, int]:
    """Count, in this process only, the appends that lost a race to another writer."""
    from ledger.store import Conflict, Store

    counts = {"lost": 0}

    def counting(append):
        def appending(self, *args, **kwargs):
            try:
                return append(self, *args, **kwargs)
            except Conflict:
                counts["lost"] += 1
                raise

        return appending

    Store.append = counting(Store.append)
    Store.append_bulk = counting(Store.append_bulk)  # an import's batches
    return counts


def _gate_first_commit(gate) -> list[bool]:
    """Hold this process's first append until every process has decided on what it read;
    returns the flag to clear for the next round."""
    from ledger.application import Ledger
    from ledger.store import Store

    waited = []

    def gated(commit):
        def committing(self, *args, **kwargs):
            if not waited:
                waited.append(True)
                gate.wait(timeout=START_TIMEOUT)
            return commit(self, *args, **kwargs)

        return committing

    Ledger._commit = gated(Ledger._commit)
    Store.append_bulk = gated(Store.append_bulk)  # an import's batches skip Ledger._commit
    return waited


# --- work run in the processes ----------------------------------------------------------------

def command(start, store: str, actor: str, args: list[str]) -> dict[str, Any]:
    """Run the real `leadledger` entry point once, with --json; report exit code and output."""
    import cli as entry

    argv = ["--store", store, "--as", actor, "--json", *args]
    out, err = io.StringIO(), io.StringIO()
    start.wait(timeout=START_TIMEOUT)
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            entry.main(argv)
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
    return {"code": code, "stdout": out.getvalue(), "stderr": err.getvalue()}


def api(start, store: str, calls: list[tuple[str, list[Any], dict[str, Any]]],
        pause: float = 0) -> dict[str, Any]:
    """Call `Ledger` methods in turn on a ledger of this process's own; report each outcome.

    `pause` seconds after the start lets other processes get going first.
    """
    from ledger.application import Ledger

    with Ledger(store) as led:
        led.store.ensure_ready()
        led.store.max_position()  # connect before the start, so that the commands collide
        start.wait(timeout=START_TIMEOUT)
        time.sleep(pause)
        outcomes = [_call(led, name, args, kwargs) for name, args, kwargs in calls]
    return {"outcomes": outcomes}


def storm(start, store: str, actor: str, role: str, leads: list[str], reps: list[str],
          seconds: float, seed: int) -> dict[str, Any]:
    """For `seconds`, do random ownership commands on a few leads, as a rep or a manager."""
    from ledger.application import Ledger

    rnd = random.Random(seed)
    outcomes = []
    with Ledger(store) as led:
        led.store.ensure_ready()
        led.store.max_position()
        start.wait(timeout=START_TIMEOUT)
        until = time.monotonic() + seconds
        while time.monotonic() < until:
            lead = rnd.choice(leads)
            if role == "rep":
                name = "claim" if rnd.random() < 0.6 else "release"
                args, kwargs = [actor, lead], {}
            else:
                name = rnd.choice(["assign", "reassign"])
                args, kwargs = [actor, lead], {"to": rnd.choice(reps), "reason": "storm"}
            outcomes.append(_call(led, name, args, kwargs))
    return {"outcomes": outcomes}


def _call(led, name: str, args: list[Any], kwargs: dict[str, Any]) -> dict[str, Any]:
    outcome: dict[str, Any] = {"call": name, "args": args, "kwargs": kwargs}
    try:
        outcome["result"] = json.loads(json.dumps(getattr(led, name)(*args, **kwargs), default=str))
    except LedgerError as e:
        outcome["error"] = json.loads(json.dumps(e.to_dict(), default=str))
        outcome["exit"] = e.exit_code
    return outcome
