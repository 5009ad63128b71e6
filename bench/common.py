"""What every benchmark shares: options, a fresh store with a raw twin, timing, the report.

Each benchmark measures leadledger and a raw baseline in the same run, on the same database:
the raw side goes through sqlite3 or psycopg directly, into tables of the same shape as
ours (`raw_events`, `raw_keys`). A PostgreSQL run works in fresh schemas named after the
one in the URL and drops them afterwards; a SQLite run works in a temporary file.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import psycopg

from ledger import codec
from ledger import events as ev
from ledger.application import Ledger
from ledger.state import desk_stream, lead_stream
from ledger.store import EVENTS_TABLE, KEYS_TABLE, NewEvent, Store

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
POOL = "bench"
ADMIN = "root"
VARIANT_TURNS = 5  # turns of each variant (with and without the tree or sealing) at least


def options(description: str, argv: list[str] | None = None, **extra: Any) -> argparse.Namespace:
    """--store URL (default: a temporary SQLite file), --quick, --repeat N."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--store", metavar="URL", default=None,
                        help="postgresql://user@host:port/db?schema=NAME (a fresh schema, dropped "
                             "afterwards) or sqlite:///FILE (default: a temporary SQLite file)")
    parser.add_argument("--quick", action="store_true", help="a smaller run, about a minute")
    parser.add_argument("--repeat", type=int, default=None, help="repetitions (the median is reported)")
    for name, default in extra.items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=type(default), default=default)
    args = parser.parse_args(argv)
    if args.repeat is None:
        args.repeat = 3
    return args


# --- stores ---------------------------------------------------------------------------------

@dataclass
class Target:
    """One fresh ledger store and, beside it in the same database, the raw twin tables."""

    kind: str  # sqlite | postgresql
    url: str  # the ledger store URL
    conninfo: str = ""  # PostgreSQL: the server, without the schema
    schema: str = ""  # PostgreSQL: the ledger's schema; the raw tables live in `<schema>_raw`
    path: str = ""  # SQLite: the file

    @property
    def raw_events(self) -> str:
        return f'"{self.schema}_raw".raw_events' if self.kind == "postgresql" else "raw_events"

    def raw_table(self, name: str) -> str:
        """A table of the raw side, beside raw_events."""
        return f'"{self.schema}_raw".{name}' if self.kind == "postgresql" else name

    @property
    def raw_keys(self) -> str:
        return f'"{self.schema}_raw".raw_keys' if self.kind == "postgresql" else "raw_keys"

    @property
    def events(self) -> str:
        return f'"{self.schema}".{EVENTS_TABLE}' if self.kind == "postgresql" else EVENTS_TABLE

    @property
    def position(self) -> str:
        return "notification_id" if self.kind == "postgresql" else "rowid"

    @property
    def param(self) -> str:
        return "%s" if self.kind == "postgresql" else "?"

    def connect(self) -> Any:
        """A raw connection in autocommit mode: each statement outside BEGIN is one transaction.

        SQLite: WAL, like the ledger's own connections, and the default (full) synchronous.
        """
        if self.kind == "postgresql":
            return psycopg.connect(self.conninfo, autocommit=True)
        con = sqlite3.connect(self.path, isolation_level=None, timeout=60, check_same_thread=False)
        con.execute("PRAGMA journal_mode=WAL")
        return con

    def create_raw(self) -> None:
        """Raw tables of the same shape as the ledger's event and key tables (made by `init`)."""
        con = self.connect()
        try:
            if self.kind == "postgresql":
                con.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}_raw"')
                con.execute(f"DROP TABLE IF EXISTS {self.raw_events}, {self.raw_keys}")
                con.execute(
                    f"CREATE TABLE {self.raw_events} (originator_id text NOT NULL, "
                    "originator_version bigint NOT NULL, topic text, state bytea, "
                    "notification_id bigserial, PRIMARY KEY (originator_id, originator_version))")
                con.execute(f"CREATE UNIQUE INDEX ON {self.raw_events} (notification_id)")
                con.execute(f"CREATE TABLE {self.raw_keys} (kind text NOT NULL, value text NOT NULL, "
                            "lead text NOT NULL)")
                con.execute(f"CREATE INDEX ON {self.raw_keys} (kind, value)")
            else:
                con.execute("DROP TABLE IF EXISTS raw_events")
                con.execute("DROP TABLE IF EXISTS raw_keys")
                for name, raw in ((EVENTS_TABLE, "raw_events"), (KEYS_TABLE, "raw_keys")):
                    for (sql,) in con.execute(
                        "SELECT sql FROM sqlite_master WHERE tbl_name = ? AND sql IS NOT NULL AND type IN ('table', 'index') "
                        "ORDER BY type != 'table', type", (name,)).fetchall():
                        con.execute(sql.replace(name, raw))
        finally:
            con.close()

    def drop(self) -> None:
        if self.kind == "postgresql":
            with psycopg.connect(self.conninfo, autocommit=True) as con:
                for suffix in ("", "_read", "_raw"):
                    con.execute(f'DROP SCHEMA IF EXISTS "{self.schema}{suffix}" CASCADE')
        else:
            for suffix in ("", "-wal", "-shm"):
                if os.path.exists(self.path + suffix):
                    os.remove(self.path + suffix)


@contextmanager
def fresh_target(store: str | None, keep: bool = False) -> Iterator[Target]:
    """A new, initialised store (admin `root`) and its raw twin tables; removed afterwards
    unless `keep` (to look into it after the run)."""
    tmpdir = None
    if store and store.startswith(("postgresql://", "postgres://")):
        parts = urlsplit(store)
        query = parse_qs(parts.query)
        base = (query.pop("schema", ["bench"]) or ["bench"])[0]
        conninfo = urlunsplit(parts._replace(query=urlencode(query, doseq=True)))
        schema = f"{base}_{uuid.uuid4().hex[:8]}"
        sep = "&" if parts.query and query else "?"
        url = f"{conninfo}{sep}schema={schema}"
        target = Target("postgresql", url, conninfo=conninfo, schema=schema)
    else:
        if store:
            path = store[len("sqlite:///"):] if store.startswith("sqlite:///") else store
            path = f"{path}.{uuid.uuid4().hex[:8]}"
        else:
            tmpdir = tempfile.mkdtemp(prefix="leadledger-bench-")
            path = os.path.join(tmpdir, "bench.db")
        target = Target("sqlite", f"sqlite:///{path}", path=path)
    try:
        with Ledger(target.url, clock=lambda: T0) as led:
            led.init(ADMIN, "Bench Admin", at=T0)
        target.create_raw()
        yield target
    finally:
        if keep:
            print(f"kept the store: {target.url}", flush=True)
        else:
            target.drop()
        if tmpdir and not keep:
            shutil.rmtree(tmpdir, ignore_errors=True)


def without_tree(store: Store) -> None:
    """Patch the Merkle tree out of this process's appends (a "no tree" variant): no leaves
    hashed, no subtree rows read, hashed or written. The append passes on the tree's size and
    frontier as it was given them, and on PostgreSQL the statement that would hash the tree in
    the server carries none, its check that the tree ends where the log does always holding,
    so an append's other work stays as it is. The store's tree then lags its log: use a store
    of its own, dropped afterwards."""
    from ledger.store import base  # noqa: PLC0415

    def planned(cur: Any, first_position: int, leaves: Any, tail: Any = None, *, tail_after: bool = False) -> Any:
        return [], tail if tail_after else None

    sql = store.tree.sql
    sql.planned = planned  # every append asks the tree's SQL object for the rows it adds
    sql.server_append = lambda size, leaves: "subtrees AS (SELECT 1)"  # PostgreSQL's
    sql.size_sql = sql.top_sql  # the tree "ends where the log does", for PostgreSQL's statement
    base.leaves_of = lambda digests: [b""] * len(digests)  # a leaf for each event, unhashed


def make_world(led: Ledger, reps: int, claim_limit: int = 1_000_000) -> list[str]:
    """Pool `bench` (no practical claim limit) with reps r0..r{n-1} as members."""
    names = [f"r{i}" for i in range(reps)]
    for name in names:
        led.add_person(ADMIN, name, name.upper(), "rep", at=T0)
    led.add_person(ADMIN, "mgr", "Manager", "manager", at=T0)
    led.create_pool(ADMIN, POOL, "Bench pool", at=T0, claim_limit=claim_limit, daily_claim_limit=0)
    led.grant(ADMIN, POOL, [*names, "mgr"], at=T0)
    return names


def lead_fields(i: int, prefix: str = "L") -> dict[str, str]:
    """A realistic lead row with unique phone, email and company."""
    return {
        "id": f"{prefix}-{i}", "company": f"Company {prefix} {i} Ltd", "contact": f"Contact {i}",
        "phone": f"+86 139{i:08d}", "email": f"lead{i}@{prefix.lower()}.example.com",
        "region": ("east", "west", "north", "south")[i % 4], "industry": "retail", "source": "fair",
    }


def import_leads(led: Ledger, count: int, prefix: str = "L") -> None:
    rows = ((i + 2, lead_fields(i, prefix)) for i in range(count))
    led.import_leads("mgr", POOL, rows, at=T0)


# --- writing a synthetic history fast (for the rebuild and `owner --at`) ----------------------

class Writer:
    """Appends well-formed events (right versions, chained hashes) straight to the store, in
    large batches: a fast way to build a long history for the read-side benchmarks."""

    def __init__(self, store: Store, batch: int = 2000) -> None:
        self.store = store
        self.batch = batch
        self.heads: dict[str, tuple[int, str]] = {}
        self.pending: list[NewEvent] = []
        self.written = 0

    def add(self, stream: str, event: ev.Event) -> None:
        version, prev = self.heads.get(stream, (0, codec.GENESIS))
        self.pending.append(NewEvent(stream, version + 1, prev, event))
        self.heads[stream] = (version + 1, "")  # the hash is known once stored
        if len(self.pending) >= self.batch:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        # events of one stream chain on within the batch; remember each stream's last hash
        for stored in self.store.append(self.pending):
            self.heads[stored.stream] = (stored.version, stored.hash)
        self.written += len(self.pending)
        self.pending = []


def lead_history(w: Writer, lead: str, reps: list[str], events: int, start: datetime,
                 held: dict[str, int], cycle: int = 10) -> datetime:
    """`events` events on one lead's stream: added, then claim / follow-ups / release cycles
    by rotating reps (each claim and release also writes the rep's HoldingsChanged).
    Returns the time of the last event."""
    at = start
    stream = lead_stream(lead)
    written = 0

    def tick() -> datetime:
        nonlocal at
        at += timedelta(minutes=1)
        return at

    w.add(stream, ev.LeadAdded(occurred_at=tick(), actor="mgr", lead=lead, pool=POOL,
                               attributes=ev.Attributes(company=f"Company {lead}")))
    written += 1
    turn = 0
    while written < events:
        rep = reps[turn % len(reps)]
        turn += 1
        desk = desk_stream(rep, POOL)
        before = held.get(rep, 0)
        held[rep] = before + 1
        when = tick()
        w.add(stream, ev.LeadClaimed(occurred_at=when, actor=rep, lead=lead, pool=POOL, rep=rep,
                                     rules_version=1, claim_limit=1_000_000, held_before=before))
        w.add(desk, ev.HoldingsChanged(occurred_at=when, actor=rep, rep=rep, pool=POOL, lead=lead,
                                       held=before + 1, day=when.date().isoformat(), claims_on_day=1))
        written += 1
        for _ in range(max(cycle - 5, 0)):
            if written >= events - 1:
                break
            w.add(stream, ev.FollowUpLogged(occurred_at=tick(), actor=rep, lead=lead, rep=rep,
                                            note="called, interested in a quote", channel="call"))
            written += 1
        held[rep] -= 1
        when = tick()
        w.add(stream, ev.LeadReleased(occurred_at=when, actor=rep, lead=lead, pool=POOL, rep=rep,
                                      reason="not now"))
        w.add(desk, ev.HoldingsChanged(occurred_at=when, actor=rep, rep=rep, pool=POOL, lead=lead,
                                       held=held[rep], day=when.date().isoformat(), claims_on_day=1))
        written += 1
    return at


# --- timing and figures ---------------------------------------------------------------------

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


def cli_env() -> dict[str, str]:
    """The environment for a measured command: no LEADLEDGER_ setting, and bytecode cached as an
    installed package's is (PYTHONDONTWRITEBYTECODE would measure compiling instead)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("LEADLEDGER_") and k != "PYTHONDONTWRITEBYTECODE"}


def timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def latencies(call: Callable[..., Any], args_list: list[Any]) -> list[float]:
    """Seconds each `call(*args)` took, in order."""
    out = []
    for args in args_list:
        start = time.perf_counter()
        call(*args)
        out.append(time.perf_counter() - start)
    return out


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def peak_rss_mb() -> float:
    """This process's peak resident set size, in MB.

    On Linux it is VmHWM: getrusage's ru_maxrss survives exec, so a spawned child would
    report its parent's peak. Elsewhere, ru_maxrss (macOS reports bytes).
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


@dataclass
class Row:
    """One line of the report: our figure, the raw one, their ratio, and the target if any."""

    measure: str
    unit: str
    ours: float
    raw: float | None = None
    target: str = ""
    met: bool | None = None
    note: str = ""
    bound: str = ""  # what the raw figure is: the work no implementation of the measure can skip

    @property
    def ratio(self) -> float | None:
        if self.raw in (None, 0):
            return None
        return self.ours / self.raw


@dataclass
class Result:
    bench: str
    backend: str
    params: dict[str, Any] = field(default_factory=dict)
    rows: list[Row] = field(default_factory=list)

    def add(self, *args: Any, **kwargs: Any) -> Row:
        row = Row(*args, **kwargs)
        self.rows.append(row)
        return row

    def to_dict(self) -> dict[str, Any]:
        return {"bench": self.bench, "backend": self.backend, "params": self.params,
                "rows": [{**asdict(r), "ratio": r.ratio} for r in self.rows]}


def fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return "–"
    if unit == "ms" or unit == "s":
        return f"{value:.3g} {unit}" if value < 100 else f"{value:,.0f} {unit}"
    if unit == "MB":
        return f"{value:,.0f} MB"
    text = f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"
    return f"{text} {unit}".strip()


def print_result(result: Result, out=sys.stdout) -> None:
    print(f"\n== {result.bench} on {result.backend} "
          f"({', '.join(f'{k}={v}' for k, v in result.params.items())})", file=out)
    for r in result.rows:
        ratio = f"{r.ratio:.2f}x" if r.ratio is not None else ""
        met = {True: "met", False: "NOT met", None: ""}[r.met]
        raw = fmt(r.raw, r.unit) if r.raw is not None else ""
        print(f"  {r.measure:<42} {fmt(r.ours, r.unit):>16} {raw:>16} {ratio:>7}  "
              f"{r.target} {met}{'  ' + r.note if r.note else ''}", file=out)
    out.flush()


def run_main(description: str, measure: Callable[[argparse.Namespace], Result],
             argv: list[str] | None = None, **extra: Any) -> Result:
    args = options(description, argv, **extra)
    result = measure(args)
    print_result(result)
    if os.environ.get("BENCH_JSON"):
        with open(os.environ["BENCH_JSON"], "a", encoding="utf-8") as f:
            f.write(json.dumps(result.to_dict()) + "\n")
    return result


def machine() -> dict[str, str]:
    """What the figures were measured on."""
    info = {"python": platform.python_version(), "platform": platform.platform(),
            "cpus": str(os.cpu_count())}
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo", encoding="utf-8") as f:
            kb = int(f.readline().split()[1])
            info["memory"] = f"{kb / 1024 / 1024:.1f} GB"
    except OSError:
        pass
    from importlib.metadata import version  # noqa: PLC0415

    for package in ("eventsourcing", "psycopg", "msgspec"):
        info[package] = version(package)
    info["sqlite"] = sqlite3.sqlite_version
    return info


def server_version(target: Target) -> str:
    if target.kind != "postgresql":
        return f"SQLite {sqlite3.sqlite_version}"
    with psycopg.connect(target.conninfo) as con:
        settings = dict(con.execute(
            "SELECT name, setting FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit')"
        ).fetchall())
        version = con.execute("SHOW server_version").fetchone()[0]
    return f"PostgreSQL {version} (fsync={settings.get('fsync')}, synchronous_commit={settings.get('synchronous_commit')})"
