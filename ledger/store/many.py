"""Many rows into a SQLite table in a few statements (a bulk append's events, keys, data keys,
tree nodes), and the cheap binding of bytes and NULLs that every SQLite statement here uses."""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Sequence
from typing import Any

LARGEST = 8192  # rows a statement holds at most (fewer if the build allows fewer parameters)
FEW = 64  # fewer rows than this (a claim's) go a statement each: a few waits for the GIL cost little


def _same(value: Any) -> Any:
    return value


# sqlite3 binds an int, float, str or bytearray as it is, but looks any other value (bytes, None)
# up as an adaptable object first: two attribute look-ups that fail, each formatting an
# AttributeError it then drops, several times the cost of binding the value. An adapter that
# returns the value as it is is found in one dictionary look-up instead. This is the module's
# table for the whole process: one that an application registered already is left as it is.
for _kind, _adapter in ((bytes, bytes), (type(None), _same)):
    if (_kind, sqlite3.PrepareProtocol) not in getattr(sqlite3, "adapters", {}):
        sqlite3.register_adapter(_kind, _adapter)


def insert_many(cur: Any, table: str, columns: str, width: int, rows: Sequence[Sequence[Any]]) -> None:
    """Insert rows of `width` values (the first never NULL) into `table` (`columns`), thousands
    a statement.

    executemany runs a statement a row, letting go of the GIL for each and taking it back:
    with an import's reading thread busy in Python meanwhile, every take waits out that
    thread's switch interval, and the append crawls. One statement of many rows lets go once.
    Each statement holds one of a few numbers of rows, the last padded with rows of NULLs that
    it skips, so a connection keeps a few prepared statements, not one for every length."""
    if len(rows) < FEW:
        cur.executemany(f"INSERT INTO {table} ({columns}) VALUES ({', '.join('?' * width)})", rows)
        return
    sizes = _sizes(cur.connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // width)
    start = 0
    while start < len(rows):
        left = len(rows) - start
        size = next((s for s in reversed(sizes) if s >= left), sizes[0])
        chunk = rows[start:start + size]
        params = [x for row in chunk for x in row]
        params += [None] * (width * (size - len(chunk)))
        cur.execute(_statement(table, columns, width, size), params)
        start += size


@functools.cache
def _sizes(most: int) -> list[int]:
    """The numbers of rows a statement holds, largest first: a power of two up to `most`, and
    each an eighth of the one before, down to one row."""
    size = 1 << (min(most, LARGEST).bit_length() - 1) if most > 0 else 1
    sizes = [size]
    while sizes[-1] > 1:
        sizes.append(max(sizes[-1] // 8, 1))
    return sizes


@functools.cache
def _statement(table: str, columns: str, width: int, size: int) -> str:
    row = f"({', '.join('?' * width)})"
    return (f"INSERT INTO {table} ({columns}) SELECT * FROM (VALUES {', '.join([row] * size)}) "
            "WHERE column1 IS NOT NULL")
