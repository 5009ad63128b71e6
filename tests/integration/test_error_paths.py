"""The error paths, each reached by a real failure (never a mock of the store).

A write lock held by another connection, a real deadlock, a database that refuses every
append as busy, unreadable and uninitialised stores, two processes creating the read-model
tables at once, rebuilds racing each other and a swap, Ctrl-C to a real `leadledger`
process, and the CLI's handler for errors it does not expect.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import pytest

from ledger.application import Ledger
from ledger.store import EVENTS_TABLE, append_lock_key
from ledger.store.writers import LOCK_SUFFIX, WriterQueue
from tests.conftest import PG, event_count, run_cli
from tests.integration.test_projections import REPO, cli_process, dump, replayed, story
from tests.races import workers

AT = "2026-03-03T09:00:00Z"


def schema_of(url: str) -> str:
    return url.rsplit("schema=", 1)[1]


def pg_session(schema: str) -> psycopg.Connection:
    con = psycopg.connect(PG, autocommit=True)
    con.execute(f'SET search_path TO "{schema}"')
    return con


# --- a write meets another writer's lock ------------------------------------------------------

def hold_write_lock(store_url: str, seconds: float) -> subprocess.Popen:
    """Another process that takes the store's write lock, says so, and keeps it for `seconds`."""
    if store_url.startswith("sqlite:///"):
        code = ("import sqlite3, sys, time; con = sqlite3.connect(sys.argv[1], isolation_level=None); "
                "con.execute('BEGIN IMMEDIATE'); print('locked', flush=True); time.sleep(float(sys.argv[2])); "
                "con.execute('ROLLBACK')")
        args = [store_url[len("sqlite:///"):], str(seconds)]
    else:  # the advisory lock every writer of the events table takes first
        code = ("import psycopg, sys, time; con = psycopg.connect(sys.argv[1], autocommit=True); "
                "con.execute('SELECT pg_advisory_lock(%s)', [int(sys.argv[3])]); print('locked', flush=True); "
                "time.sleep(float(sys.argv[2]))")
        args = [PG, str(seconds), str(append_lock_key(schema_of(store_url)))]
    proc = subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_a_write_waits_for_another_process_holding_the_write_lock_then_lands_once(world, store_url):
    before = event_count(world)
    holder = hold_write_lock(store_url, 1.5)
    started = time.monotonic()
    claimed = run_cli(store_url, "claim", "L-1", "--at", AT, actor="alice")
    waited = time.monotonic() - started
    holder.wait(timeout=30)
    assert claimed.code == 0, claimed
    assert waited >= 1.0, "the claim did not wait for the lock"
    assert [type(s.event).__name__ for s in world.store.read_log(after=before, limit=100)] == \
        ["LeadClaimed", "HoldingsChanged"]
    assert world.verify()["ok"] is True


def hold_queue_turn(path: str) -> subprocess.Popen:
    """Another process that takes the SQLite writers' turn (`path`: the file they queue on),
    says so, and keeps it until a line comes on its stdin."""
    code = ("import fcntl, os, sys; fd = os.open(sys.argv[1], os.O_RDONLY | os.O_CREAT); "
            "fcntl.flock(fd, fcntl.LOCK_EX); print('locked', flush=True); sys.stdin.readline()")
    holder = subprocess.Popen([sys.executable, "-c", code, path], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True)
    assert holder.stdout.readline().strip() == "locked"
    return holder


def _queued_on(path: str) -> bool:
    """Whether a flock of `path` has a waiter (Linux lists them in /proc/locks, after "->")."""
    inode = os.stat(path).st_ino
    with open("/proc/locks") as f:
        return any(parts[1] == "->" and parts[2] == "FLOCK" and parts[6].rsplit(":", 1)[1] == str(inode)
                   for parts in (line.split() for line in f))


@pytest.mark.skipif(not os.path.exists("/proc/locks"), reason="waiters are seen in Linux's /proc/locks")
def test_sqlite_writers_wait_their_turn_on_the_file_beside_the_store(world, store_url, backend):
    """SQLite's own wait for its write lock sleeps between tries; appends queue in the kernel
    instead, on a flock of the file beside the store: one waits while another process holds
    the turn, writes nothing meanwhile, and lands once the turn is handed on. (PostgreSQL's
    appends queue on the advisory lock: the test above.)"""
    if backend != "sqlite":
        pytest.skip("SQLite's queue of writers")
    path = store_url[len("sqlite:///"):] + LOCK_SUFFIX
    before = event_count(world)
    holder = hold_queue_turn(path)
    result: dict = {}
    claim = threading.Thread(target=lambda: result.update(run=run_cli(store_url, "claim", "L-1", "--at", AT,
                                                                      actor="alice")))
    claim.start()
    deadline = time.monotonic() + 30
    while not _queued_on(path):
        assert time.monotonic() < deadline, "the claim never queued for its turn"
        time.sleep(0.02)
    assert event_count(world) == before
    holder.communicate("\n", timeout=30)
    claim.join(timeout=60)
    assert result["run"].code == 0, result["run"]
    assert [type(s.event).__name__ for s in world.store.read_log(after=before, limit=100)] == \
        ["LeadClaimed", "HoldingsChanged"]
    assert world.verify()["ok"] is True


def test_a_writer_that_never_lets_its_turn_go_holds_others_only_for_the_wait(world, store_url, backend,
                                                                              monkeypatch):
    """A process stopped while it holds the queue's turn (here: one that never lets it go)
    does not hang the others: after `WriterQueue.WAIT` they take SQLite's lock as SQLite makes
    them, and the claim lands."""
    if backend != "sqlite":
        pytest.skip("SQLite's queue of writers")
    monkeypatch.setattr(WriterQueue, "WAIT", 0.5)
    path = store_url[len("sqlite:///"):] + LOCK_SUFFIX
    before = event_count(world)
    holder = hold_queue_turn(path)
    try:
        started = time.monotonic()
        with Ledger(store_url) as led:
            assert led.claim("alice", "L-1", at=AT)["owner"] == "alice"
        assert time.monotonic() - started >= 0.5
        assert [type(s.event).__name__ for s in world.store.read_log(after=before, limit=100)] == \
            ["LeadClaimed", "HoldingsChanged"]
    finally:
        holder.communicate("\n", timeout=30)


def test_a_real_deadlock_is_lost_by_the_append_then_retried(world, store_url, backend):
    """Another session locks the events table, then waits for the append lock the ledger's
    append holds while that append waits for the table: PostgreSQL finds the deadlock and
    (the other session waiting longer before it looks) aborts the append, which is retried."""
    if backend != "postgresql":
        pytest.skip("PostgreSQL's deadlock detection")
    schema = schema_of(store_url)
    before = event_count(world)
    other = pg_session(schema)
    other.execute("BEGIN")
    other.execute("SET LOCAL deadlock_timeout = '30s'")
    other.execute(f"LOCK TABLE {EVENTS_TABLE} IN SHARE MODE")  # blocks inserts, not reads
    result: dict = {}
    claim = threading.Thread(target=lambda: result.update(run=run_cli(store_url, "claim", "L-1", "--at", AT,
                                                                      actor="alice")))
    claim.start()
    deadline = time.monotonic() + 30
    while not other.execute("SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = %s::regclass",
                            [f'"{schema}".{EVENTS_TABLE}']).fetchone()[0]:
        assert time.monotonic() < deadline, "the append never waited for the table"
        time.sleep(0.02)
    other.execute("SELECT pg_advisory_xact_lock(%s)", [append_lock_key(schema)])  # the deadlock
    # this session was not the victim: the append was, and nothing of it was committed
    assert other.execute(f"SELECT count(*) FROM {EVENTS_TABLE}").fetchone()[0] == before
    other.execute("COMMIT")
    other.close()
    claim.join(timeout=60)
    assert result["run"].code == 0, result["run"]
    assert [type(s.event).__name__ for s in world.store.read_log(after=before, limit=100)] == \
        ["LeadClaimed", "HoldingsChanged"]
    assert world.verify()["ok"] is True


BUSY = {
    "sqlite": [f"CREATE TRIGGER always_busy BEFORE INSERT ON {EVENTS_TABLE} "
               "BEGIN SELECT RAISE(ABORT, 'database is locked'); END"],
    "postgresql": [
        "CREATE FUNCTION always_busy() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "RAISE EXCEPTION 'deadlock detected' USING ERRCODE = '40P01'; END $$",
        f"CREATE TRIGGER always_busy BEFORE INSERT ON {EVENTS_TABLE} FOR EACH ROW EXECUTE FUNCTION always_busy()",
    ],
}
NOT_BUSY = {"sqlite": ["DROP TRIGGER always_busy"],
            "postgresql": [f"DROP TRIGGER always_busy ON {EVENTS_TABLE}", "DROP FUNCTION always_busy()"]}


def in_database(store_url: str, backend: str, statements: list[str]) -> None:
    if backend == "sqlite":
        con = sqlite3.connect(store_url[len("sqlite:///"):])
        try:
            for statement in statements:
                con.execute(statement)
            con.commit()
        finally:
            con.close()
        return
    with pg_session(schema_of(store_url)) as con:
        for statement in statements:
            con.execute(statement)


def test_every_append_busy_gives_up_with_store_unavailable_and_writes_nothing(world, store_url, backend):
    """The database refuses every append as busy (a trigger raising its busy error): the ledger
    tries again and again, then gives up with store_unavailable (exit 5)."""
    before = event_count(world)
    in_database(store_url, backend, BUSY[backend])
    try:
        run = run_cli(store_url, "claim", "L-1", "--at", AT, actor="alice")
        assert run.code == 5, run
        assert run.json["error"]["code"] == "store_unavailable"
        assert "too busy" in run.json["error"]["message"]
        assert event_count(world) == before
    finally:
        in_database(store_url, backend, NOT_BUSY[backend])
    assert run_cli(store_url, "claim", "L-1", "--at", AT, actor="alice").code == 0


# --- stores that cannot be used ---------------------------------------------------------------

def test_an_unreadable_store_file_is_store_unavailable(tmp_path):
    path = tmp_path / "ledger.db"
    path.write_bytes(b"not a database, " * 200)
    for args in (["owner", "L-1"], ["claim", "L-1"]):
        run = run_cli(f"sqlite:///{path}", *args, actor="alice")
        assert run.code == 5 and run.json["error"]["code"] == "store_unavailable", run
        assert "cannot open" in run.json["error"]["message"]
    run = run_cli(f"sqlite:///{path}", "verify", actor="alice")  # verify: its report, not ok (spec 2)
    assert run.code == 6 and run.json["ok"] is False and run.json["error"]["code"] == "integrity_violation", run
    assert path.read_bytes() == b"not a database, " * 200


def test_an_uninitialised_store_is_store_unavailable(backend, store_url, tmp_path):
    """A database that exists but holds no store: an empty SQLite file, an empty schema."""
    if backend == "sqlite":
        path = Path(store_url[len("sqlite:///"):])
        sqlite3.connect(path).close()
        assert path.exists()
    else:
        with psycopg.connect(PG, autocommit=True) as con:
            con.execute(f'CREATE SCHEMA "{schema_of(store_url)}"')
    for args in (["owner", "L-1"], ["claim", "L-1"], ["project"]):
        run = run_cli(store_url, *args, actor="alice")
        assert run.code == 5 and run.json["error"]["code"] == "store_unavailable", run
        assert "not initialised" in run.json["error"]["message"]


# --- read models under concurrency -----------------------------------------------------------

def drop_read_models(led: Ledger, store_url: str, backend: str) -> None:
    if backend == "sqlite":
        con = sqlite3.connect(store_url[len("sqlite:///"):])
        try:
            for table in [*led.views.table_names(), "leadledger_tracking"]:
                con.execute(f"DROP TABLE {table}")
            con.commit()
        finally:
            con.close()
        return
    with psycopg.connect(PG, autocommit=True) as con:
        for table in [*led.views.table_names(), "leadledger_tracking"]:
            con.execute(f'DROP TABLE "{led.store.read_schema}".{table}')


def commands_at_once(store_url: str, *commands: list[str]) -> list[dict]:
    reports = workers.race(workers.command, [{"store": store_url, "actor": "root", "args": args}
                                             for args in commands])
    for r in reports:
        assert "traceback" not in r, r["traceback"]
        assert r["exitcode"] == 0 and r["code"] == 0 and r["stderr"] == "", r
    return reports


def test_two_processes_create_the_read_model_tables_at_once(world, store_url, backend):
    story(world)
    expected = replayed(store_url)
    drop_read_models(world, store_url, backend)
    commands_at_once(store_url, ["project"], ["project"])
    with Ledger(store_url) as led:
        assert led.views.position() == led.store.max_position()
        assert dump(led) == expected


def test_a_rebuild_races_a_catch_up(world, store_url):
    """A rebuild and a plain project at once: the live models end as a full replay gives them,
    and no rebuild is left pending."""
    story(world)
    expected = replayed(store_url)
    commands_at_once(store_url, ["project", "--rebuild"], ["project"])
    with Ledger(store_url) as led:
        assert led.views.pending_rebuild() is None
        assert led.views.position() == led.store.max_position()
        assert dump(led) == expected


def two_rebuilds_at_once(world, store_url) -> None:
    story(world)
    expected = replayed(store_url)
    commands_at_once(store_url, ["project", "--rebuild"], ["project", "--rebuild"])
    with Ledger(store_url) as led:
        assert led.views.pending_rebuild() is None
        assert led.views.position() == led.store.max_position()
        assert dump(led) == expected


def test_two_rebuilds_at_once_on_sqlite(world, store_url, backend):
    """Whichever swaps in last, the live models end as a full replay gives them."""
    if backend != "sqlite":
        pytest.skip("PostgreSQL: see the test below")
    two_rebuilds_at_once(world, store_url)


def test_two_rebuilds_at_once_on_postgresql(world, store_url, backend):
    if backend != "postgresql":
        pytest.skip("PostgreSQL only")
    two_rebuilds_at_once(world, store_url)


# --- the CLI's own handlers ------------------------------------------------------------------

def test_ctrl_c_stops_a_real_command_with_130_and_no_traceback(world, store_url, tmp_path):
    """`lead import` from a pipe no one writes to waits; SIGINT stops it cleanly, writing nothing."""
    fifo = tmp_path / "leads.csv"
    os.mkfifo(fifo)
    before = event_count(world)
    proc = cli_process(store_url, "--as", "mgr", "lead", "import", str(fifo), "--pool", "east")
    writer, deadline = None, time.monotonic() + 60
    while writer is None:  # a writer can open the pipe only once the command has it open to read
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the command never opened the pipe"
        try:
            writer = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:
            time.sleep(0.02)
    try:
        time.sleep(0.2)  # reading now, and nothing comes
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        os.close(writer)
    assert proc.returncode == 130, (stdout, stderr)
    assert "Traceback" not in stderr  # with --json, the summary says nothing was imported
    assert (json.loads(stdout)["interrupted"], json.loads(stdout)["imported"]) == (True, 0)
    assert event_count(world) == before


def test_an_unexpected_failure_is_one_line_and_a_status_within_0_to_6(world, store_url):
    """stdout on a full device: the failure is said in one line (no traceback), and the exit
    status stays within 0-6 like every other failure's."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("LEADLEDGER_")}
    with open("/dev/full", "w") as full:
        proc = subprocess.run([sys.executable, "-m", "cli", "--store", store_url, "pool", "list"], cwd=REPO,
                              env=environ, stdout=full, stderr=subprocess.PIPE, text=True, timeout=60)
    assert 1 <= proc.returncode <= 6, proc.stderr
    assert proc.stderr.startswith("error: ") and len(proc.stderr.strip().splitlines()) == 1
    assert "Traceback" not in proc.stderr


def test_export_to_a_missing_folder_is_bad_input(world, store_url, tmp_path):
    run = run_cli(store_url, "export", "holdings", "--out", str(tmp_path / "no" / "such" / "holdings.jsonl"))
    assert run.code == 2 and run.json["error"]["code"] == "invalid_input", run
