"""The read models' side of a store: a transaction on their tables, with each backend's
fastest form of the bulk reads and writes a batch of events makes (`Db`, one subclass per
backend)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence
from typing import Any

from ledger.store.base import Store

Change = tuple[str, Sequence[str], Sequence[str], list[Any], list[tuple]]


class Db:
    """A transaction on the read models: SQL written with `%s` placeholders and `{table}`
    names, and the bulk reads and writes a batch of events makes.

    `Db(cur, store, names)` makes the store's own kind (`store.db_type`).
    """

    def __new__(cls, cur: Any, store: Store, names: dict[str, str]) -> Db:
        return object.__new__(store.db_type if cls is Db else cls)

    def __init__(self, cur: Any, store: Store, names: dict[str, str]) -> None:
        self.cur = cur
        self.store = store  # for what a model needs beside its tables (follow-up notes' keys)
        self.names = names
        self._sql: dict[str, str] = {}

    def placeholders(self, sql: str) -> str:
        """`sql` with the backend's placeholders for `%s`."""
        return sql

    def sql(self, text: str) -> str:
        found = self._sql.get(text)
        if found is None:
            found = self._sql[text] = self.placeholders(text.format(**self.names))
        return found

    def exec(self, text: str, params: Iterable[Any] = ()) -> Any:
        self.cur.execute(self.sql(text), list(params))
        return self.cur

    def one(self, text: str, params: Iterable[Any] = ()) -> Any:
        return self.exec(text, params).fetchone()

    def all(self, text: str, params: Iterable[Any] = ()) -> list[Any]:
        return self.exec(text, params).fetchall()

    def select_in(self, table: str, columns: Sequence[str], column: str, values: list[Any],
                  condition: str = "") -> list[tuple]:
        """The rows of qualified `table` whose `column` is one of `values` (and that meet
        `condition`)."""
        raise NotImplementedError

    def write(self, changes: list[Change]) -> None:
        """Change tables: for each (table, key columns, columns, keys, rows), delete the rows
        of those keys, then insert those rows."""
        with self.pipelined(changes):
            for table, key, columns, gone, rows in changes:
                self.delete_keys(table, key, gone)
                self.insert_rows(table, columns, rows)

    def pipelined(self, changes: list[Change]) -> contextlib.AbstractContextManager[Any]:
        """Where the backend can, send these changes without waiting for each answer."""
        return contextlib.nullcontext()

    def delete_keys(self, table: str, key: Sequence[str], keys: list[Any]) -> None:
        """Delete the rows of these keys (tuples when the key has more than one column)."""
        if not keys:
            return
        where = " AND ".join(f"{c} = %s" for c in key)
        self.cur.executemany(self.placeholders(f"DELETE FROM {table} WHERE {where}"),
                             [[k] for k in keys] if len(key) == 1 else keys)

    def insert_rows(self, table: str, columns: Sequence[str], rows: list[tuple]) -> None:
        if not rows:
            return
        marks = ", ".join(["%s"] * len(columns))
        self.cur.executemany(
            self.placeholders(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"), rows)
