"""Many rows into a SQLite table in a few statements (a bulk append's events, keys, data keys)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

MANY_ROWS = 5000  # rows per INSERT at most (fewer if the build allows fewer parameters)


def insert_many(cur: Any, head: str, width: int, rows: Sequence[Sequence[Any]]) -> None:
    """`head` (an INSERT up to VALUES) of rows of `width` values, a few thousand a statement.

    executemany runs a statement a row, letting go of the GIL for each and taking it back:
    with an import's reading thread busy in Python meanwhile, every take waits out that
    thread's switch interval, and the append crawls. One statement of many rows lets go once."""
    per = max(1, min(MANY_ROWS, cur.connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // width))
    marks = f"({', '.join('?' * width)})"
    for i in range(0, len(rows), per):
        chunk = rows[i:i + per]
        cur.execute(f"{head} VALUES {', '.join([marks] * len(chunk))}", [x for row in chunk for x in row])
