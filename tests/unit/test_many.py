"""SQLite's bulk inserts: every row once, in a few statement shapes, whatever the build's
parameter limit."""

from __future__ import annotations

import sqlite3
import subprocess
import sys

import pytest

from ledger.store.many import LARGEST, insert_many


@pytest.mark.parametrize("limit", [None, 100])
@pytest.mark.parametrize("count", [0, 1, 7, 8, 9, 63, 65, 4096, 4097, 10_001])
def test_every_row_goes_in_once(count, limit):
    con = sqlite3.connect(":memory:", isolation_level=None)
    if limit:
        con.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, limit)
    con.execute("CREATE TABLE t (a INTEGER NOT NULL, b BLOB, c TEXT)")
    rows = [(i, bytes([i % 256]) * 3, None if i % 5 else f"r{i}") for i in range(count)]
    statements = []
    con.set_trace_callback(statements.append)
    insert_many(con.cursor(), "t", "a, b, c", 3, rows)
    con.set_trace_callback(None)
    assert con.execute("SELECT a, b, c FROM t ORDER BY a").fetchall() == rows
    statements = [s for s in statements if "SELECT" in s]  # (fewer than FEW rows go one a statement)
    sizes = {s.count("), (") + 1 for s in statements}  # rows a statement holds, padding too
    largest = 32 if limit else LARGEST  # a power of two, its parameters within the limit
    assert sizes <= {max(largest >> shift, 1) for shift in range(0, 16, 3)}  # a few shapes, each prepared once
    assert len(statements) <= -(-count // largest) + 1


def test_rowids_given_keep_the_rows_in_order():
    con = sqlite3.connect(":memory:", isolation_level=None)
    con.execute("CREATE TABLE e (name TEXT)")
    insert_many(con.cursor(), "e", "rowid, name", 2, [(i + 1, f"n{i}") for i in range(5000)])
    assert con.execute("SELECT rowid, name FROM e ORDER BY rowid").fetchall() == [(i + 1, f"n{i}") for i in range(5000)]


def test_bytes_and_nulls_bind_as_they_are_and_an_applications_adapter_stays():
    """Loading the module gives bytes and None adapters that return the value as it is (found
    in one look-up, not two failing ones); an adapter the application registered first is its
    own still, and binds as it says."""
    code = (
        "import sqlite3, sys\n"
        "sqlite3.register_adapter(bytes, lambda b: b.hex())\n"
        "import ledger.store.many\n"
        "con = sqlite3.connect(':memory:')\n"
        "print(con.execute('SELECT typeof(?), ?, typeof(?)', [b'ab', b'ab', None]).fetchone())\n"
        "print(sqlite3.adapters[(type(None), sqlite3.PrepareProtocol)](None))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.splitlines() == ["('text', '6162', 'null')", "None"]
    con = sqlite3.connect(":memory:")
    assert sqlite3.adapters[(bytes, sqlite3.PrepareProtocol)](b"\x00\xff") == b"\x00\xff"
    assert con.execute("SELECT typeof(?), ?, typeof(?)", [b"\x00\xff", b"\x00\xff", None]).fetchone() == \
        ("blob", b"\x00\xff", "null")
