"""Read models on SQLite and PostgreSQL: exactly once, rebuilt, killed, followed.

Kill tests run the real `leadledger` command in its own process on a store large enough
that projecting takes a while, watch the tracking table from here, and SIGKILL the process
at several points; a later `project` must then leave the models exactly as a full replay.
"""

from __future__ import annotations

import json
import random
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from ledger import events as ev
from ledger.application import Ledger
from ledger.errors import LedgerError
from projections.runner import NAME, REBUILD, Db
from tests.conftest import PG, T0, child_environ, run_cli

REPO = Path(__file__).resolve().parents[2]
BIG = 40000  # leads in the big store: enough that projecting it takes a while


def d(days: float, hours: float = 0) -> str:
    base = datetime.fromisoformat(T0.replace("Z", "+00:00"))
    return (base + timedelta(days=days, hours=hours)).isoformat().replace("+00:00", "Z")


# --- helpers --------------------------------------------------------------------------------

def dump(led: Ledger) -> dict[str, list[tuple]]:
    """Every live read-model table, its rows sorted."""
    views = led.views
    out = {}
    with led.store.reading() as cur:
        db = Db(cur, led.store, views.names())
        for table in views.table_names():
            out[table] = sorted(tuple(r) for r in db.all(f"SELECT * FROM {{{table}}}"))
    return out


def replayed(store_url: str) -> dict[str, list[tuple]]:
    """The models as a full replay from position 0 gives them (a rebuild, in this process)."""
    with Ledger(store_url) as led:
        led.views.rebuild()
        led.views.catch_up()
        return dump(led)


def events_of(led: Ledger, *types: type) -> list:
    return [s for s in led.store.read_log(after=0, limit=10**9) if isinstance(s.event, types)]


def story(led: Ledger, between=lambda: None) -> None:
    """A history that touches every model; `between` runs after each step. Each step must
    succeed, or be refused with exactly the code given (a refusal is history too, rule 7)."""
    steps = [
        (lambda: led.claim("alice", "L-1", at=d(1)), None),
        (lambda: led.claim("bob", "L-2", at=d(1, 1)), None),
        (lambda: led.follow_up("alice", "L-1", "called", channel="call", at=d(2)), None),
        (lambda: led.claim("carol", "L-3", at=d(2, 1)), None),
        (lambda: led.release("bob", "L-2", reason="not mine", at=d(3)), None),
        (lambda: led.change_rules("root", "east", at=d(3, 1), idle_limit="5d"), None),
        (lambda: led.reassign("mgr", "L-3", "alice", "covering", at=d(4)), None),
        (lambda: led.convert("alice", "L-1", deal="D-9", at=d(5)), None),
        (lambda: led.claim("bob", "L-1", at=d(5, 0.5)), "lead_converted"),
        (lambda: led.move("mgr", "L-4", "west", at=d(5, 1)), None),
        (lambda: led.assign("mgr", "L-4", "dave", at=d(5, 2)), None),
        (lambda: led.open_dispute("bob", "L-3", "I called them first", at=d(6)), None),
        (lambda: led.resolve_dispute("audrey", "L-3-D1", award="bob", rationale="log shows bob", at=d(7)), None),
        (lambda: led.grant("root", "west", ["carol"], at=d(7, 1)), None),
        (lambda: led.revoke("root", "west", ["carol"], at=d(7, 2)), None),
        (lambda: led.claim("carol", "L-5", at=d(8)), None),
        (lambda: led.sweep("root", now=d(20)), None),
        (lambda: led.deactivate_person("root", "dave", at=d(21)), None),
    ]
    for n, (step, refusal) in enumerate(steps):
        if refusal is None:
            step()
        else:
            with pytest.raises(LedgerError) as refused:
                step()
            assert refused.value.code == refusal, f"step {n}: {refused.value.code}"
        between()


def big_store(store_url: str, leads: int = BIG) -> int:
    """A store with `leads` pooled leads (imported fast: no duplicate keys), a few claims,
    follow-ups and releases at the end; returns its last position."""
    with Ledger(store_url) as led:
        led.init("root", "Root Admin", at=T0)
        for rep in ("alice", "bob"):
            led.add_person("root", rep, rep.title(), "rep", at=T0)
        led.create_pool("root", "east", "East", at=T0, claim_limit=10**6)
        led.grant("root", "east", ["alice", "bob"], at=T0)
        led.import_leads("root", "east", ((i, {"id": f"B-{i}"}) for i in range(leads)), at=T0)
        for i in range(0, 60, 2):
            led.claim("alice" if i % 4 else "bob", f"B-{i}", at=d(1))
        for i in range(0, 30, 4):
            led.follow_up("bob", f"B-{i}", "called", at=d(2))
            led.release("bob", f"B-{i}", at=d(3))
        return led.store.max_position()


def cli_process(store_url: str, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    """The real `leadledger` command in its own process."""
    return subprocess.Popen([sys.executable, "-m", "cli", "--store", store_url, "--json", *args],
                            cwd=REPO, env=child_environ(**(env or {})), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_until(condition, what: str, limit: float = 60) -> None:
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting: {what}")
        time.sleep(0.01)


def tracked(led: Ledger, name: str = NAME) -> int | None:
    return led.views.position(name)


def kill_when(store_url: str, args: list[str], ready) -> subprocess.Popen:
    """Start `leadledger ARGS`, SIGKILL it as soon as `ready()` holds (or it exits first)."""
    proc = cli_process(store_url, *args)
    wait_until(lambda: proc.poll() is not None or ready(), "a kill point")
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    proc.communicate()
    return proc


def pool_leads_expected(led: Ledger, upto: int) -> int:
    """Pooled leads after the events up to `upto`, counted from the events themselves."""
    count = 0
    for s in led.store.read_log(after=0, limit=10**9, upto=upto):
        if isinstance(s.event, (ev.LeadAdded, ev.LeadReleased, ev.LeadReturned, ev.LeadRecycled)):
            count += 1
        elif isinstance(s.event, (ev.LeadClaimed, ev.LeadAssigned)):
            count -= 1
    return count


def count_rows(led: Ledger, table: str) -> int:
    with led.store.reading() as cur:
        return Db(cur, led.store, led.views.names()).one(f"SELECT COUNT(*) FROM {{{table}}}")[0]


# --- rebuild and incremental catch-up --------------------------------------------------------

def test_rebuild_equals_incremental_catch_up_row_for_row(world):
    story(world, between=lambda: world.views.catch_up(batch=3))
    incremental = dump(world)
    assert world.views.position() == world.store.max_position()
    world.views.rebuild(batch=7)
    assert world.views.pending_rebuild() is None
    assert dump(world) == incremental

    # and both agree with the ledger's own replay of each lead
    leads = [f"L-{i}" for i in range(1, 7)]
    shown = {lead: world.lead_show(lead) for lead in leads}
    pooled = {(r[0], r[1]) for r in incremental["pool_leads"]}
    assert pooled == {(lead, s["pool"]) for lead, s in shown.items() if s["owner"] is None}
    held = {(r[0], r[1], r[3]) for r in incremental["holdings"]}
    assert held == {(lead, s["owner"], s["status"]) for lead, s in shown.items() if s["owner"]}
    intervals = sorted((r[0], r[1], r[2], r[6]) for r in incremental["ownership_intervals"])
    expected = sorted((i["start_position"], lead, i["owner"], i["end_position"])
                      for lead in leads for i in world.history(lead)["ownership"])
    assert intervals == expected
    assert len(incremental["follow_ups"]) == len(events_of(world, ev.FollowUpLogged))
    assert [(r[0], r[2], r[8]) for r in incremental["disputes"]] == [("L-3-D1", "resolved", "awarded")]


def test_catch_up_stops_at_upto_inside_a_batch_and_goes_on_from_there(world):
    story(world)  # some steps catch the models up: start them over
    with world.store.writing() as cur:
        db = Db(cur, world.store, world.views.names())
        db.exec("UPDATE {tracking} SET position = 0 WHERE name = %s", [NAME])
        for table in world.views.table_names():
            db.exec(f"DELETE FROM {{{table}}}")
    top = world.store.max_position()
    middle = top - 7
    assert world.views.catch_up(batch=5, upto=middle) == middle == world.views.position()
    assert count_rows(world, "pool_leads") == pool_leads_expected(world, middle)
    assert world.views.catch_up(batch=5) == top
    assert dump(world) == replayed(world.store.url)


def test_rebuild_swaps_in_at_the_end_and_keeps_the_old_tables_until_then(world):
    story(world)
    world.views.catch_up()
    before = dump(world)
    world.claim("bob", "L-6", at=d(30))  # not yet in the live tables
    world.views.start_rebuild()
    world.views._run(NAME + REBUILD, REBUILD, 5, None, None)  # fill the fresh tables, no swap
    assert dump(world) == before, "readers still see the old tables"
    assert world.views.pending_rebuild() == world.store.max_position()
    world.views.finish_rebuild()
    assert world.views.pending_rebuild() is None
    assert world.views.position() == world.store.max_position()
    after = dump(world)
    assert [r for r in after["holdings"] if r[0] == "L-6"][0][1] == "bob"
    assert {k: v for k, v in after.items() if k not in ("holdings", "pool_leads", "ownership_intervals")} == \
        {k: v for k, v in before.items() if k not in ("holdings", "pool_leads", "ownership_intervals")}


class Killed(Exception):
    pass


def die_after(batches: int):
    """A progress callback that stops the run after `batches` committed batches."""
    seen = []

    def step(position: int) -> None:
        seen.append(position)
        if len(seen) >= batches:
            raise Killed

    return step


def index_names(led: Ledger) -> dict[str, list[str]]:
    """The indexes the models declare (not primary keys) on each live read-model table."""
    found: dict[str, list[str]] = {}
    with led.store.reading() as cur:
        if led.store.kind == "postgresql":
            cur.execute("SELECT tablename, indexname FROM pg_indexes WHERE schemaname = %s",
                        [led.store.read_schema])
        else:
            cur.execute("SELECT tbl_name, name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")
        for table, index in cur.fetchall():
            if table in led.views.table_names() and re.search(r"_i\d+$", index):
                found.setdefault(table, []).append(index)
    return {table: sorted(names) for table, names in found.items()}


def test_a_rebuild_leaves_every_index_in_place_even_when_resumed(world):
    story(world)
    world.views.catch_up()
    before = index_names(world)
    assert before["holdings"] == ["holdings_i0", "holdings_i1"]
    world.views.rebuild(batch=7)
    assert index_names(world) == before
    with pytest.raises(Killed):
        world.views.rebuild(batch=5, progress=die_after(1))
    assert index_names(world) == before
    world.views.finish_rebuild(batch=5)
    assert index_names(world) == before
    assert dump(world) == replayed(world.store.url)


def test_plain_project_finishes_an_interrupted_rebuild(world, store_url):
    story(world)
    world.views.catch_up()
    before, top = dump(world), world.store.max_position()
    with pytest.raises(Killed):
        world.views.rebuild(batch=10, progress=die_after(2))
    assert world.views.pending_rebuild() == 20
    assert dump(world) == before and world.views.position() == top

    out = run_cli(store_url, "project")
    assert out.code == 0, out
    assert out.json["rebuilt"] is True and out.json["resumed_rebuild"] is True
    assert out.json["position"] == top
    assert world.views.pending_rebuild() is None
    assert dump(world) == replayed(store_url)


def test_rebuild_option_starts_afresh_after_an_interrupted_rebuild(world, store_url):
    story(world)
    with pytest.raises(Killed):
        world.views.rebuild(batch=10, progress=die_after(1))
    positions = []
    with Ledger(store_url) as other:
        out = other.project(rebuild=True, progress=lambda done, total: positions.append(done))
    assert out["rebuilt"] is True and out["resumed_rebuild"] is False
    assert positions[0] <= 5000 and positions[-1] == world.store.max_position()  # from 0, not 10
    assert world.views.pending_rebuild() is None
    assert dump(world) == replayed(store_url)


def test_queries_that_list_state_catch_the_models_up_first(world, store_url):
    world.views.catch_up()
    world.claim("alice", "L-1", at=d(1))
    world.claim("bob", "L-2", at=d(1))
    assert world.views.position() < world.store.max_position()
    shown = run_cli(store_url, "pool", "show", "east")
    assert shown.code == 0, shown
    assert shown.json["pooled"] == ["L-3", "L-4", "L-5", "L-6"]
    assert world.views.position() == world.store.max_position()
    world.release("bob", "L-2", at=d(2))
    listed = run_cli(store_url, "pool", "list")
    assert {p["pool"]: p["held_count"] for p in listed.json["pools"]} == {"east": 1, "west": 0}
    world.claim("bob", "L-3", at=d(3))
    held = run_cli(store_url, "holdings", "bob")
    assert [lead["lead"] for lead in held.json["leads"]] == ["L-3"]


# --- exactly once under concurrency ----------------------------------------------------------

def writers(store_url: str, count: int, steps: int, prefix: str) -> list[threading.Thread]:
    """Threads that each add, claim, follow up and release leads of their own, and all try
    to claim the same shared leads (so some claims are refused and recorded)."""
    def work(n: int) -> None:
        rep = f"w{n}"
        with Ledger(store_url) as led:
            for i in range(steps):
                lead = f"{prefix}{n}-{i}"
                led.add_lead("root", lead, "east", at=d(1))
                led.claim(rep, lead, at=d(1))
                led.follow_up(rep, lead, f"note {i}", at=d(1))
                if i % 2:
                    led.release(rep, lead, at=d(1))
                try:  # the first claim of each shared lead wins; every later one is refused
                    led.claim(rep, f"S-{i % 3}", at=d(1))
                except LedgerError as e:
                    assert e.code == "lead_owned", e

    return [threading.Thread(target=work, args=(n,)) for n in range(count)]


def writers_world(store_url: str, count: int) -> None:
    with Ledger(store_url) as led:
        led.init("root", "Root Admin", at=T0)
        reps = [f"w{n}" for n in range(count)]
        for rep in reps:
            led.add_person("root", rep, rep, "rep", at=T0)
        led.create_pool("root", "east", "East", at=T0, claim_limit=10**6)
        led.grant("root", "east", reps, at=T0)
        for i in range(3):
            led.add_lead("root", f"S-{i}", "east", at=T0)


def test_concurrent_runners_apply_each_event_exactly_once(store_url):
    writers_world(store_url, 3)
    threads = writers(store_url, 3, 15, "C")
    done = threading.Event()
    errors: list[BaseException] = []

    def runner() -> None:
        try:
            with Ledger(store_url) as led:
                while not done.is_set():
                    led.views.catch_up(batch=4)
                led.views.catch_up(batch=4)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    runners = [threading.Thread(target=runner) for _ in range(3)]
    for t in runners + threads:
        t.start()
    for t in threads:
        t.join()
    done.set()
    for t in runners:
        t.join()
    assert not errors, errors
    with Ledger(store_url) as led:
        assert led.views.position() == led.store.max_position()
        got = dump(led)
        assert len(got["follow_ups"]) == len(events_of(led, ev.FollowUpLogged)) == 45
        assert len(got["ownership_intervals"]) == len(events_of(led, ev.LeadClaimed))
    assert got == replayed(store_url)


# --- SIGKILL at several points ----------------------------------------------------------------

def test_sigkill_during_project_then_project_equals_a_full_replay(store_url):
    top = big_store(store_url)
    with Ledger(store_url) as led:
        kills = [
            lambda: tracked(led) >= 2000,          # after the first batch
            lambda: tracked(led) >= top // 2,      # half way
            lambda: tracked(led) >= top - 4000,    # near the end
        ]
        landed = 0
        for ready in kills:
            proc = kill_when(store_url, ["project"], ready)
            assert proc.returncode in (-signal.SIGKILL, 0)
            landed += proc.returncode == -signal.SIGKILL
            reached = tracked(led)
            assert count_rows(led, "pool_leads") == pool_leads_expected(led, reached)
        assert landed >= 1, "no kill landed inside a project"
        with led.store.writing() as cur:  # start over, then kill at a random moment
            Db(cur, led.store, led.views.names()).exec("UPDATE {tracking} SET position = 0")
            for table in led.views.table_names():
                Db(cur, led.store, led.views.names()).exec(f"DELETE FROM {{{table}}}")
        limit = time.monotonic() + random.uniform(0.05, 0.5)
        proc = kill_when(store_url, ["project"], lambda: time.monotonic() > limit)
        assert proc.returncode in (-signal.SIGKILL, 0)

        out = cli_process(store_url, "project")
        stdout, _ = out.communicate()
        assert out.returncode == 0
        assert json.loads(stdout)["position"] == top == tracked(led)
        got = dump(led)
    assert got == replayed(store_url)


def test_sigkill_during_rebuild_leaves_the_old_models_then_project_finishes(store_url):
    top = big_store(store_url)
    with Ledger(store_url) as led:
        old_position = led.views.catch_up(upto=top - 3000)
        old = dump(led)

        def rebuilt_past(n: int):
            return lambda: (led.views.pending_rebuild() or 0) >= n

        def random_moment():
            limit = time.monotonic() + random.uniform(0.1, 1.0)
            return lambda: time.monotonic() > limit

        kills = [lambda: rebuilt_past(5000), lambda: rebuilt_past(top // 2),
                 lambda: rebuilt_past(top),  # at the swap
                 random_moment]
        interrupted = 0
        for kill_point in kills:
            proc = kill_when(store_url, ["project", "--rebuild"], kill_point())
            assert proc.returncode in (-signal.SIGKILL, 0)
            if led.views.position() == old_position:  # not swapped in: the old models, untouched
                assert dump(led) == old
                interrupted += proc.returncode == -signal.SIGKILL and led.views.pending_rebuild() is not None
            else:  # swapped in (then caught up): every event applied
                assert led.views.position() == top
                assert count_rows(led, "pool_leads") == pool_leads_expected(led, top)
                old_position, old = led.views.position(), dump(led)
        assert interrupted >= 1, "no kill landed inside a rebuild"

        # the last kill may have left a rebuild pending; a plain `project` finishes it
        kill_when(store_url, ["project", "--rebuild"], rebuilt_past(top // 3))
        pending = led.views.pending_rebuild()
        out = cli_process(store_url, "project")
        stdout, stderr = out.communicate()
        assert out.returncode == 0, stderr
        result = json.loads(stdout)
        assert result["resumed_rebuild"] is (pending is not None)
        assert result["position"] == top
        assert led.views.pending_rebuild() is None
        got = dump(led)
    assert got == replayed(store_url)


def test_rebuild_of_a_large_store_shows_progress_on_stderr(store_url):
    top = big_store(store_url, leads=12000)
    proc = cli_process(store_url, "project", "--rebuild")
    stdout, stderr = proc.communicate()
    assert proc.returncode == 0, stderr
    assert json.loads(stdout)["position"] == top  # stdout holds the JSON object alone
    assert "projecting" in stderr


# --- following --------------------------------------------------------------------------------

def follower(store_url: str, app_name: str = "") -> subprocess.Popen:
    # faulthandler: a follower that does not stop shows where each of its threads is (see stop)
    return cli_process(store_url, "project", "--follow",
                       env={"PYTHONFAULTHANDLER": "1", **({"PGAPPNAME": app_name} if app_name else {})})


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> dict[str, Any]:
    proc.send_signal(sig)
    try:
        stdout, stderr = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGABRT)
        raise AssertionError("the follower did not stop:\n" + proc.communicate()[1]) from None
    assert proc.returncode == 0, stderr
    return json.loads(stdout)


def test_follower_keeps_up_with_many_writers_no_missing_no_doubled_rows(store_url):
    writers_world(store_url, 4)
    proc = follower(store_url)
    try:
        with Ledger(store_url) as led:
            wait_until(lambda: tracked(led) == led.store.max_position(), "the follower's first catch-up")
            threads = writers(store_url, 4, 12, "F")
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            top = led.store.max_position()
            wait_until(lambda: tracked(led) == top, "the follower to apply every event")
            result = stop(proc)
            assert result["followed"] is True and result["position"] == top
            got = dump(led)
            assert len(got["follow_ups"]) == len(events_of(led, ev.FollowUpLogged)) == 48
            assert count_rows(led, "pool_leads") == pool_leads_expected(led, top)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert got == replayed(store_url)


def test_follower_stops_cleanly_on_ctrl_c(world, store_url):
    proc = follower(store_url)
    try:
        wait_until(lambda: tracked(world) == world.store.max_position(), "the follower's catch-up")
        world.claim("alice", "L-1", at=d(1))
        wait_until(lambda: tracked(world) == world.store.max_position(), "the follower to apply a claim")
        result = stop(proc, signal.SIGINT)
        assert result["position"] == world.store.max_position()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_follower_stopped_while_events_pour_in_ends_cleanly_every_time(store_url):
    """Stopped at any moment by a signal, the follower exits with the position it has applied.
    A second signal ends it at once (130), unless the first had already; either way, what it
    applied is what a replay gives."""
    writers_world(store_url, 3)
    rng = random.Random(7)
    for round_, signals in enumerate([(signal.SIGTERM,), (signal.SIGINT,), (signal.SIGTERM, signal.SIGTERM),
                                      (signal.SIGINT, signal.SIGINT)]):
        proc = follower(store_url)
        threads = writers(store_url, 3, 4, f"R{round_}-")
        try:
            with Ledger(store_url) as led:
                while "following from" not in (line := proc.stderr.readline()):  # caught up
                    assert line, "the follower ended before following"
                for t in threads:
                    t.start()
                time.sleep(rng.uniform(0, 0.5))
                if len(signals) == 1:
                    result = stop(proc, signals[0])
                    assert result["followed"] is True and result["position"] == tracked(led)
                else:
                    for sig in signals:
                        proc.send_signal(sig)
                    stdout, stderr = proc.communicate(timeout=60)
                    assert proc.returncode in (0, 130), stderr
                    if proc.returncode == 130:
                        assert "interrupted: stopped at once" in stderr and not stdout
        finally:
            for t in threads:
                t.join()
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    with Ledger(store_url) as led:
        led.views.catch_up()
        got = dump(led)
    assert got == replayed(store_url)


def test_follower_on_postgresql_survives_a_terminated_connection(world, store_url, backend):
    if backend != "postgresql":
        pytest.skip("LISTEN/NOTIFY and its connection are PostgreSQL's")
    app_name = "ll_follow_" + uuid.uuid4().hex[:8]
    proc = follower(store_url, app_name)

    def backends(only_listen: bool = False) -> list[int]:
        sql = "SELECT pid FROM pg_stat_activity WHERE application_name = %s"
        if only_listen:
            sql += " AND query LIKE 'LISTEN%%'"
        with psycopg.connect(PG, autocommit=True) as con:
            return [r[0] for r in con.execute(sql, [app_name]).fetchall()]

    try:
        wait_until(lambda: tracked(world) == world.store.max_position(), "the follower's catch-up")
        wait_until(lambda: backends(only_listen=True), "the follower to LISTEN")
        for round_ in range(2):
            with psycopg.connect(PG, autocommit=True) as con:
                killed = con.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                     "WHERE application_name = %s", [app_name]).fetchall()
            assert killed
            world.claim("alice" if round_ == 0 else "bob", f"L-{round_ + 1}", at=d(1))
            top = world.store.max_position()
            wait_until(lambda: tracked(world) == top, "the follower to apply events after losing its connection")
            wait_until(lambda: backends(only_listen=True), "the follower to LISTEN again")
        result = stop(proc)
        assert result["position"] == world.store.max_position()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_follow_in_process_stops_when_told(world):
    stop_event = threading.Event()
    reached: list[int] = []
    world.claim("alice", "L-1", at=d(1))

    def on_batch(position: int) -> None:
        reached.append(position)
        stop_event.set()

    thread = threading.Thread(target=world.follow, kwargs={"stop": stop_event, "on_batch": on_batch, "poll": 0.05})
    thread.start()
    thread.join(timeout=120)
    assert not thread.is_alive()
    assert reached == [world.store.max_position()]


def test_while_following_a_first_signal_asks_to_stop_and_a_second_ends_the_process():
    script = (
        "import os, signal, sys, time\n"
        "from commands.readmodels import stopping_on_signals\n"
        "with stopping_on_signals() as stop:\n"
        "    os.kill(os.getpid(), signal.SIGTERM)\n"
        "    print('asked to stop', stop.wait(30), flush=True)\n"
        "    os.kill(os.getpid(), signal.SIGINT)\n"
        "    time.sleep(30)\n"
        "print('not ended')\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60,
                          env=child_environ())
    assert done.returncode == 130, done.stderr
    assert done.stdout == "asked to stop True\n"
    assert done.stderr == "interrupted: stopped at once\n"


def test_a_stop_during_a_long_catch_up_ends_it_after_the_batch_being_applied(world):
    """A follower told to stop while a large backlog is applied does not apply the rest first."""
    world.views.catch_up()
    start = tracked(world)
    for i in range(30):
        world.add_lead("root", f"B-{i}", "east", at=d(1))
    stop_event = threading.Event()
    seen: list[int] = []

    def one_batch(position: int) -> None:
        seen.append(position)
        stop_event.set()

    reached = world.views.catch_up(batch=4, progress=one_batch, stop=stop_event)
    assert seen == [reached] and start < reached < world.store.max_position()
    assert tracked(world) == reached
    assert world.views.catch_up() == world.store.max_position()  # the rest, when asked again


# --- PostgreSQL grants survive a rebuild --------------------------------------------------------

def test_a_rebuild_keeps_the_grants_of_the_tables_it_replaces(world, store_url, backend):
    if backend != "postgresql":
        pytest.skip("roles and grants are PostgreSQL's")
    role = "ll_reader_" + uuid.uuid4().hex[:8]
    schema = world.store.read_schema
    with psycopg.connect(PG, autocommit=True) as con:
        con.execute(f"CREATE ROLE {role} NOLOGIN")
        con.execute(f'GRANT USAGE ON SCHEMA "{schema}" TO {role}')
        con.execute(f'GRANT SELECT ON ALL TABLES IN SCHEMA "{schema}" TO {role}')  # no default privileges
    try:
        story(world)
        world.views.rebuild()
        with psycopg.connect(PG) as con:
            con.execute(f"SET ROLE {role}")
            rows = con.execute(f'SELECT COUNT(*) FROM "{schema}".holdings').fetchone()[0]
            assert rows == len(dump(world)["holdings"]) > 0
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                con.execute(f'DELETE FROM "{schema}".holdings')
    finally:
        with psycopg.connect(PG, autocommit=True) as con:
            con.execute(f'REVOKE ALL ON ALL TABLES IN SCHEMA "{schema}" FROM {role}')
            con.execute(f'REVOKE ALL ON SCHEMA "{schema}" FROM {role}')
            con.execute(f"DROP ROLE {role}")
