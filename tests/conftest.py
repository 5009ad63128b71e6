"""Shared fixtures: every behaviour runs on SQLite and on PostgreSQL.

PostgreSQL tests take their server from LEADLEDGER_TEST_PG (e.g.
postgresql://root@127.0.0.1:5432/test). They are skipped only when it is unset; when it is
set and the server cannot be reached, the run fails. Each PostgreSQL test gets a schema of
its own (dropped afterwards), so tests share one database without seeing each other.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner

import cli
from commands import root as commands_root
from ledger import i18n
from ledger.application import Ledger

# Tests read English unless they choose a language (the CLI reads it on every run): a
# developer's zh_CN locale must not change what they see.
os.environ["LEADLEDGER_LANG"] = "en"

PG = os.environ.get("LEADLEDGER_TEST_PG", "").strip()
BACKENDS = ["sqlite", "postgresql"]
T0 = "2026-03-02T09:00:00Z"


def pytest_sessionstart(session: pytest.Session) -> None:
    if PG:
        try:
            psycopg.connect(PG, connect_timeout=5).close()
        except psycopg.Error as e:
            raise pytest.UsageError(f"LEADLEDGER_TEST_PG is set but PostgreSQL is unreachable: {e}") from e


def child_environ(**extra: str) -> dict[str, str]:
    """The environment of a `leadledger` process a test starts: none of the settings
    (LEADLEDGER_*) the test process has, except its language, English (above)."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("LEADLEDGER_")}
    return {**environ, "LEADLEDGER_LANG": "en", **extra}


def pg_url(schema: str) -> str:
    sep = "&" if "?" in PG else "?"
    return f"{PG}{sep}schema={schema}"


def drop_schema(schema: str) -> None:
    with psycopg.connect(PG, autocommit=True) as con:
        con.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        con.execute(f'DROP SCHEMA IF EXISTS "{schema}_read" CASCADE')


@pytest.fixture(autouse=True)
def english_again() -> Iterator[None]:
    """A test that runs the CLI in this process in Chinese leaves the next one in English."""
    yield
    if i18n.language() != "en":
        i18n.activate("en")


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "postgresql" and not PG:
        pytest.skip("LEADLEDGER_TEST_PG is not set")
    return request.param


@pytest.fixture
def store_url(backend: str, tmp_path) -> Iterator[str]:
    """A fresh, uninitialised store on the backend under test."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'ledger.db'}"
        return
    schema = "t_" + uuid.uuid4().hex[:12]
    yield pg_url(schema)
    drop_schema(schema)


@pytest.fixture
def ledger(store_url: str) -> Iterator[Ledger]:
    """An initialised ledger with admin `root`."""
    with Ledger(store_url) as led:
        led.init("root", "Root Admin", at=T0)
        yield led


@pytest.fixture
def world(ledger: Ledger) -> Ledger:
    """Pool `east` (claim_limit 2, idle 10d, hold 30d, cooldown 7d, warn 2d) with reps alice, bob,
    carol and manager mgr as members; dave is a rep outside the pool; audrey an auditor."""
    for pid, role in [("mgr", "manager"), ("alice", "rep"), ("bob", "rep"), ("carol", "rep"),
                      ("dave", "rep"), ("audrey", "auditor")]:
        ledger.add_person("root", pid, pid.title(), role, at=T0)
    ledger.create_pool("root", "east", "East", at=T0, claim_limit=2, idle_limit="10d",
                       hold_limit="30d", cooldown="7d", warn_before="2d")
    ledger.create_pool("root", "west", "West", at=T0)
    ledger.grant("root", "east", ["mgr", "alice", "bob", "carol"], at=T0)
    ledger.grant("root", "west", ["mgr", "dave"], at=T0)
    for i in range(1, 7):
        ledger.add_lead("mgr", f"L-{i}", "east", company=f"Company {i}", phone=f"138000000{i:02d}", at=T0)
    return ledger


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str

    @property
    def json(self) -> Any:
        return json.loads(self.stdout)


def run_cli(store: str, *args: str, actor: str | None = None, as_json: bool = True, through_click: bool = False) -> Run:
    """Run the real `leadledger` entry point in-process, capturing stdout and stderr apart
    (`through_click`: the click group itself, which a plain `verify-receipt` line bypasses)."""
    argv = ["--store", store]
    if actor:
        argv += ["--as", actor]
    if as_json:
        argv.append("--json")
    argv += list(args)
    runner = CliRunner()
    with runner.isolation(env={"LEADLEDGER_STORE": None, "LEADLEDGER_ACTOR": None}) as (out, err, _):
        try:
            if through_click:
                commands_root.invoke(argv)
            else:
                cli.main(argv)
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    return Run(code, out.getvalue().decode(), err.getvalue().decode())


def event_count(ledger: Ledger) -> int:
    return len(ledger.store.read_log(after=0, limit=10**9))
