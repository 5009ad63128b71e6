"""A dry run's stand-in for the key index (`lead import --dry-run`)."""

from __future__ import annotations

import os
import sqlite3
import tempfile
from collections.abc import Sequence


class ScratchKeys:
    """A dry run's stand-in for the key index: the keys its earlier batches would have stored,
    in a scratch SQLite file (a dry run of a million rows holds no more memory than the import)."""

    def __init__(self) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="leadledger-dry-run-")
        self._con = sqlite3.connect(os.path.join(self._dir.name, "keys.db"), isolation_level=None)
        self._con.execute("PRAGMA journal_mode = OFF")
        self._con.execute("PRAGMA synchronous = OFF")
        self._con.execute("CREATE TABLE k (kind TEXT, value TEXT, lead TEXT, PRIMARY KEY (kind, value)) "
                          "WITHOUT ROWID")

    def find(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], str]:
        """One look-up by the primary key each (in-process, a few microseconds): a row-value
        IN list is not answered from the index, and would scan the table for every batch."""
        found: dict[tuple[str, str], str] = {}
        look = self._con.cursor()
        for key in keys:
            row = look.execute("SELECT lead FROM k WHERE kind = ? AND value = ?", key).fetchone()
            if row is not None:
                found[key] = row[0]
        return found

    def add(self, keys: Sequence[tuple[str, str, str]]) -> None:
        self._con.execute("BEGIN")
        self._con.executemany("INSERT OR IGNORE INTO k VALUES (?, ?, ?)", keys)
        self._con.execute("COMMIT")

    def close(self) -> None:
        self._con.close()
        self._dir.cleanup()
