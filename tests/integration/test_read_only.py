"""Every read command on a store that may not be written: an auditor's
read-only copy of a SQLite file, a PostgreSQL role with SELECT only. The read models are
behind the log, so each answer must come from the events, and nothing may be written."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import psycopg
import pytest

from ledger.application import Ledger
from tests.conftest import PG, T0, drop_schema, run_cli
from tests.integration.asof_world import T, backdated_world

ROOT = Path(__file__).resolve().parents[2]
READS = [
    ["owner", "L-3"], ["owner", "L-3", "--at", T], ["history", "L-3"], ["explain", "L-3"],
    ["holdings", "alice"], ["holdings", "alice", "--at", T], ["holdings", "bob", "--upto", "21"],
    ["lead", "show", "L-3"], ["lead", "show", "L-3", "--at", T], ["pool", "show", "east"],
    ["pool", "show", "east", "--at", T], ["pool", "list"], ["person", "list"], ["dispute", "list"],
    ["dispute", "show", "L-1-D1"], ["report", "--from", "2026-03-01", "--to", "2026-04-01"], ["verify"],
    ["digest"],
]
EXPORTS = ["pool_leads", "holdings", "ownership_intervals", "follow_ups", "disputes", "people", "pools",
           "pool_members", "events"]


def build(url: str) -> None:
    """The backdated world, its read models left behind the log."""
    with Ledger(url) as led:
        led.init("root", "Root Admin", at=T0)
        for pid, role in [("mgr", "manager"), ("alice", "rep"), ("bob", "rep")]:
            led.add_person("root", pid, pid.title(), role, at=T0)
        led.create_pool("root", "east", "East", at=T0, claim_limit=2, idle_limit="10d", hold_limit="30d")
        led.grant("root", "east", ["mgr", "alice", "bob"], at=T0)
        for i in range(1, 7):
            led.add_lead("mgr", f"L-{i}", "east", at=T0)
        led.project()
        backdated_world(led)  # recorded after the read models were last brought up to date


def expected(url: str) -> dict[str, str]:
    """Each read's answer on a store that may be written."""
    out = {}
    for args in READS:
        r = run_cli(url, *args)
        assert r.code == 0, (args, r.stdout)
        out[" ".join(args)] = _stable(r.stdout, args)
    for model in EXPORTS:
        out["export " + model] = run_cli(url, "export", model, as_json=False).stdout
        if model != "events":
            out[f"export {model} --upto 21"] = run_cli(url, "export", model, "--upto", "21", as_json=False).stdout
    return out


def _stable(text: str, args: list[str]) -> str:
    """An answer without the times that are "now" (they differ between two runs)."""
    found = json.loads(text)
    found.pop("now", None)
    found.get("facts", {}).pop("now", None)
    if args[0] == "owner" and "--at" not in args:
        found.pop("at", None)
    return json.dumps(found, sort_keys=True)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run_as_reader(url: str, args: list[str]) -> subprocess.CompletedProcess:
    """The CLI in a process of its own, as an unprivileged user when we are root (root may
    write a file whatever its mode)."""
    drop = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"] if os.geteuid() == 0 else []
    env = {"PATH": os.environ.get("PATH", ""), "HOME": "/", "LANG": "C.UTF-8"}
    return subprocess.run([*drop, sys.executable, "-c", "import cli; cli.main()", "--store", url, "--json", *args],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=120, check=False)


@pytest.mark.skipif(os.geteuid() == 0 and not shutil.which("setpriv"), reason="root, and no setpriv to drop it")
def test_sqlite_read_only_copy_answers_from_the_events():
    top = Path(tempfile.mkdtemp(prefix="leadledger-ro-"))  # a folder the unprivileged reader can reach
    os.chmod(top, 0o755)
    folder = top / "copy"
    folder.mkdir()
    db = folder / "ledger.db"
    url = f"sqlite:///{db}"
    build(url)
    want = expected_behind(url, db)
    os.chmod(db, 0o444)
    os.chmod(folder, 0o555)
    before, files = sha(db), sorted(os.listdir(folder))
    try:
        for key, answer in want.items():
            args = key.split(" ")
            done = run_as_reader(url, args)
            assert done.returncode == 0, (key, done.stdout, done.stderr)
            got = done.stdout if args[0] == "export" else _stable(done.stdout, args)
            assert got == answer, key
        assert sorted(os.listdir(folder)) == files and sha(db) == before
        done = run_as_reader(url, ["init", "--admin", "root", "--name", "Root"])  # a ledger, not "not SQLite"
        assert (done.returncode, json.loads(done.stdout)["error"]["code"]) == (5, "store_unavailable"), done
        assert "not a SQLite database" not in done.stdout and sha(db) == before
    finally:
        os.chmod(folder, 0o755)
        shutil.rmtree(top, ignore_errors=True)


def expected_behind(url: str, db: Path) -> dict[str, str]:
    """The answers, taken on a writable copy of the file (so the original stays behind)."""
    twin = db.with_name("twin.db")
    twin.write_bytes(db.read_bytes())
    try:
        return expected(f"sqlite:///{twin}")
    finally:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{twin}{suffix}").unlink(missing_ok=True)


@pytest.mark.skipif(not PG, reason="LEADLEDGER_TEST_PG is not set")
def test_postgres_select_only_role_answers_from_the_events():
    schema, role = "t_" + uuid.uuid4().hex[:12], "ro_" + uuid.uuid4().hex[:10]
    url = f"{PG}{'&' if '?' in PG else '?'}schema={schema}"
    try:
        build(url)
        with psycopg.connect(PG, autocommit=True) as con:
            con.execute(f'CREATE ROLE "{role}" LOGIN')
            for s in (schema, schema + "_read"):
                con.execute(f'GRANT USAGE ON SCHEMA "{s}" TO "{role}"')
                con.execute(f'GRANT SELECT ON ALL TABLES IN SCHEMA "{s}" TO "{role}"')
        reader = url.replace("://root@", f"://{role}@", 1)
        assert reader != url
        tracking_before = _tracking(url)
        for args in READS:
            got = run_cli(reader, *args)
            assert got.code == 0, (args, got.stdout)
        for model in EXPORTS:
            assert run_cli(reader, "export", model, as_json=False).code == 0, model
        assert _tracking(url) == tracking_before  # nothing caught up in place
        want = expected(url)  # now the writable role catches the models up
        for args in READS:
            assert _stable(run_cli(reader, *args).stdout, args) == want[" ".join(args)], args
        for model in EXPORTS:
            assert run_cli(reader, "export", model, as_json=False).stdout == want["export " + model], model
    finally:
        drop_schema(schema)
        with psycopg.connect(PG, autocommit=True) as con:
            con.execute(f'DROP OWNED BY "{role}"')
            con.execute(f'DROP ROLE IF EXISTS "{role}"')


def _tracking(url: str) -> list[tuple]:
    with Ledger(url) as led, led.store.reading() as cur:
        cur.execute(f"SELECT name, position FROM {led.store.table('leadledger_tracking')} ORDER BY name")
        return cur.fetchall()
