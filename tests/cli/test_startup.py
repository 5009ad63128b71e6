"""Start-up: a command imports what it uses and nothing more (a SQLite query never loads
psycopg, nor the event-sourcing library), and the summaries of the commands, which `--help` lists without importing them, say
what the commands themselves say."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from commands import root as commands_root
from commands import summaries, summarise
from tests.cli.test_cli import AT1, ok
from tests.conftest import run_cli
from tests.receipt_kit import from_ledger

# Printed at exit by the child process: every module it imported.
PROBE = (
    "import atexit, json, sys\n"
    "atexit.register(lambda: sys.stderr.write('\\nMODULES ' + json.dumps(sorted(sys.modules)) + '\\n'))\n"
    "import cli\n"
    "cli.main()\n"
)
DRIVERS = {"psycopg", "psycopg_pool", "psycopg_binary", "psycopg_c", "eventsourcing.postgres",
           "ledger.store.postgres", "ledger.store.recorder"}
SQLITE_SIDE = {"eventsourcing.sqlite", "ledger.store.sqlite"}
# (ledger.merkle is the store's own: every append extends the tree. A lead's history opens its
# sealed personal fields, so `history` needs the cipher; `owner` and `holdings` never do.)
UNUSED_BY_QUERIES = {"python_calamine", "xlsxwriter", "ledger.report",
                     "ledger.checkpoint", "ledger.receipt_check", "ledger.importing", "ledger.spreadsheets",
                     "ledger.cells", "ledger.demo", "commands.receipts", "commands.leads", "commands.readmodels",
                     "commands.ownership", "commands.setup", "commands.disputes", "commands.integrity"}


def imported(store: str, *args: str) -> tuple[subprocess.CompletedProcess, set[str]]:
    """Run `leadledger --store STORE ARGS` in a process of its own; its output and its modules."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADLEDGER_")}
    run = subprocess.run([sys.executable, "-c", PROBE, "--store", store, *args], env=env,
                         capture_output=True, text=True, timeout=120, check=False)
    line = [x for x in run.stderr.splitlines() if x.startswith("MODULES ")][-1]
    return run, set(json.loads(line[len("MODULES "):]))


def found(modules: set[str], names: set[str]) -> list[str]:
    """The modules among `modules` that are one of `names` or inside one of them."""
    return sorted(m for m in modules if any(m == n or m.startswith(n + ".") for n in names))


@pytest.mark.parametrize("query", [["owner", "L-1"], ["history", "L-1"], ["holdings", "alice"]])
def test_a_query_imports_only_its_own_backend_and_nothing_it_does_not_use(world, store_url, backend, query):
    def timeless(answer: dict) -> dict:  # a query "as of now" names its own now
        return {k: v for k, v in answer.items() if k not in ("now", "at")}

    ok(run_cli(store_url, "claim", "L-1", "--at", AT1, actor="alice"))
    # in-process first: the first reader of a store makes its read models' tables (a write)
    expected = timeless(ok(run_cli(store_url, *query)))
    run, modules = imported(store_url, "--json", *query)
    assert run.returncode == 0, run.stderr
    assert timeless(json.loads(run.stdout)) == expected
    assert "commands.audit" in modules  # the probe saw the command run
    if backend == "sqlite":  # the library is for appends (and PostgreSQL's read-model writes)
        assert found(modules, DRIVERS | {"eventsourcing"}) == []
    else:
        assert "psycopg" in modules and found(modules, SQLITE_SIDE) == []
        # a query reads on the thread's own connection: the library and its pool are for appends
        assert found(modules, {"eventsourcing", "psycopg_pool", "ledger.store.recorder"}) == []
    assert found(modules, UNUSED_BY_QUERIES | ({"cryptography"} if query[0] != "history" else set())) == []


@pytest.mark.parametrize("signed", [False, True])
def test_verify_receipt_loads_no_click_no_codec_and_no_store(world, store_url, tmp_path, signed):
    key = Ed25519PrivateKey.generate() if signed else None
    path = tmp_path / "receipt.json"
    path.write_text(json.dumps(from_ledger(world).receipt(2, key=key)), encoding="utf-8")
    run, modules = imported(store_url, "--json", "verify-receipt", str(path))
    assert run.returncode == 0 and json.loads(run.stdout)["ok"] is True, run.stderr
    assert found(modules, {"click", "msgspec", "ledger.codec", "ledger.events", "eventsourcing", "sqlite3",
                           "ledger.store", "ledger.application"} | DRIVERS) == []
    assert bool(found(modules, {"cryptography"})) is signed  # the signature's check alone loads it
    # each a fifth of the command's start-up or more: OpenSSL (by hashlib), datetime, base64, and
    # the crypto library's public layer (typing, its serialisation) before its native core
    assert found(modules, {"hashlib", "_hashlib", "datetime", "base64", "typing",
                           "cryptography.hazmat.primitives"}) == []


def test_help_imports_no_command_no_store_and_no_driver(store_url):
    run, modules = imported(store_url, "--help")
    assert run.returncode == 0 and "Usage:" in run.stdout
    assert found(modules, DRIVERS | SQLITE_SIDE | {"eventsourcing", "projections", "ledger.application"}) == []
    assert [m for m in modules if m.startswith("commands.") and m not in ("commands.root", "commands.offline", "commands.plain", "commands.output", "commands.helptext", "commands.summaries")] == []


def test_a_usage_error_on_sqlite_imports_no_driver(tmp_path):
    run, modules = imported(f"sqlite:///{tmp_path / 'x.db'}", "--json", "owner")
    assert run.returncode == 2 and json.loads(run.stdout)["error"]["code"] == "invalid_input"
    assert found(modules, DRIVERS) == []


# --- the summaries the root group lists from ----------------------------------------------------

def test_the_summaries_are_as_the_commands_make_them():
    # Otherwise: run `python -m commands.summarise`.
    assert Path(summaries.__file__).read_text(encoding="utf-8") == summarise.source()
    assert commands_root.root.table == summaries.SUMMARIES
    for name, (module, _short) in commands_root.root.table.items():
        assert not {c.name: c for c in importlib.import_module(f"commands.{module}").COMMANDS}[name].hidden


HELP = "import cli, sys\nfrom commands import root\nif sys.argv[1] == 'all':\n    root.root.commands\ncli.main(['--help'])\n"


@pytest.mark.parametrize("columns", ["50", "80", "200"])
def test_help_lists_the_commands_as_click_would_with_them_all_loaded(columns):
    env = {**os.environ, "COLUMNS": columns}
    lazy, loaded = (subprocess.run([sys.executable, "-c", HELP, how], env=env, capture_output=True, text=True,
                                   timeout=120, check=True).stdout for how in ("lazy", "all"))
    assert lazy == loaded
    for name in commands_root.root.table:
        assert f"\n  {name} " in lazy


def test_the_group_finds_each_command_and_refuses_an_unknown_one():
    ctx = click.Context(commands_root.root)
    for name in commands_root.root.table:
        assert commands_root.root.get_command(ctx, name).name == name
    assert commands_root.root.get_command(ctx, "no-such") is None
    assert set(commands_root.root.list_commands(ctx)) == set(commands_root.root.table) == set(commands_root.root.commands)
