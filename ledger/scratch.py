"""What an import keeps in scratch SQLite files rather than in memory, so that a file of
any size holds no more memory than its first rows: the ids seen (`ScratchIds`) and a dry
run's stand-in for the key index (`ScratchKeys`)."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import tempfile
from collections.abc import Sequence


class ScratchKeys:
    """A dry run's stand-in for the key index: the keys its earlier batches would have stored,
    in a scratch SQLite file (a dry run of a million rows holds no more memory than the import).
    Phones and emails are personal data: the file holds them only keyed-hashed, under a key
    that lives in this object alone."""

    def __init__(self) -> None:
        self._secret = os.urandom(32)
        self._dir = tempfile.TemporaryDirectory(prefix="leadledger-dry-run-")
        self.path = os.path.join(self._dir.name, "keys.db")
        self._con = sqlite3.connect(self.path, isolation_level=None)
        self._con.execute("PRAGMA journal_mode = OFF")
        self._con.execute("PRAGMA synchronous = OFF")
        self._con.execute("CREATE TABLE k (key BLOB PRIMARY KEY, lead TEXT) WITHOUT ROWID")

    def _hidden(self, kind: str, value: str) -> bytes:
        return hashlib.blake2b(f"{kind}\n{value}".encode(), key=self._secret, digest_size=16).digest()

    def find(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], str]:
        """One look-up by the primary key each (in-process, a few microseconds): a row-value
        IN list is not answered from the index, and would scan the table for every batch."""
        found: dict[tuple[str, str], str] = {}
        look = self._con.cursor()
        for key in keys:
            row = look.execute("SELECT lead FROM k WHERE key = ?", (self._hidden(*key),)).fetchone()
            if row is not None:
                found[key] = row[0]
        return found

    def add(self, keys: Sequence[tuple[str, str, str]]) -> None:
        self._con.execute("BEGIN")
        self._con.executemany("INSERT OR IGNORE INTO k VALUES (?, ?)",
                              [(self._hidden(kind, value), lead) for kind, value, lead in keys])
        self._con.execute("COMMIT")

    def close(self) -> None:
        self._con.close()
        self._dir.cleanup()


class ScratchIds:
    """The ids seen, each with the first mark (a line, a row number) it came with: in memory
    up to `keep` ids, then in a scratch SQLite file (a few microseconds an id)."""

    def __init__(self, keep: int = 100_000) -> None:
        self._memory: dict[str, int] = {}
        self._keep = keep
        self._dir: tempfile.TemporaryDirectory[str] | None = None
        self._con: sqlite3.Connection | None = None

    def setdefault(self, key: str, mark: int) -> int:
        """The mark `key` first came with (`mark`, if this is its first time)."""
        found = self._memory.get(key)
        if found is not None:
            return found
        if self._con is None:
            if len(self._memory) < self._keep:
                self._memory[key] = mark
                return mark
            self._con = self._open()
        if self._con.execute("INSERT OR IGNORE INTO s VALUES (?, ?)", (key, mark)).rowcount:
            return mark
        return self._con.execute("SELECT mark FROM s WHERE id = ?", (key,)).fetchone()[0]

    def _open(self) -> sqlite3.Connection:
        self._dir = tempfile.TemporaryDirectory(prefix="leadledger-import-")
        con = sqlite3.connect(os.path.join(self._dir.name, "ids.db"), isolation_level=None)
        con.execute("PRAGMA journal_mode = OFF")
        con.execute("CREATE TABLE s (id TEXT PRIMARY KEY, mark INTEGER) WITHOUT ROWID")
        con.execute("BEGIN")  # one transaction, never committed: the file is thrown away
        return con

    def close(self) -> None:
        self._memory.clear()
        if self._con is not None:
            self._con.close()
            self._con = None
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None
