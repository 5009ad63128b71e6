"""What one batch of events does to the read-model tables: each row read once, written once.

A batch is applied to rows in memory. For every table the batch touches, its `Rows` hold
each key's row as the batch leaves it (None: no row). Rows come from the database once: the
keys a batch's events name are loaded together before it is applied, any other on first
use. At the end each table is written once: one DELETE of the changed keys that were stored
before, then one bulk insert of the changed rows, each in the backend's fastest form (the
store's `Db`).

A run that started from empty tables (a rebuild, a replay) and has applied every batch since
remembers the values it wrote in the columns look-ups go by (`Written`): a value it never
wrote has no stored row, so looking it up needs no query.

Rows are dicts of column values. A handler reads them with `get`, and changes them only
through `add`, `put`, `update` and `delete`, so the batch knows what to write.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ledger.store import Db, failures

_UNREAD: Any = object()  # a key the batch has not read
MAX_WRITTEN = 250_000  # values remembered per column at most: past that, its look-ups query again
# table -> column -> every value a run's rows have held there, the run having written them all
Written = dict[str, dict[str, set[Any]]]


def _parts(columns: str) -> list[str]:
    """The comma-separated parts of a column list, commas inside parentheses kept."""
    return [p.strip() for p in re.split(r",(?![^()]*\))", columns)]


@dataclass(frozen=True)
class Table:
    """A read-model table: its column definitions (DDL) and, read from them, its column
    names and the primary-key column(s) that key its rows.

    `fresh_keys`: a key the batch has not read is not stored yet (its rows are keyed by the
    position of the event that adds them), so nothing is looked up or deleted for it.
    """

    columns: str
    fresh_keys: bool = False
    names: tuple[str, ...] = field(init=False)
    key: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        names, key = [], ()
        for part in _parts(self.columns):
            if part.upper().startswith("PRIMARY KEY"):
                key = tuple(c.strip() for c in part[part.index("(") + 1:part.rindex(")")].split(","))
                continue
            names.append(part.split()[0])
            if "PRIMARY KEY" in part.upper():
                key = (part.split()[0],)
        object.__setattr__(self, "names", tuple(names))
        object.__setattr__(self, "key", key)


class Rows:
    """One table's rows as the batch has read and changed them, keyed by primary key (a
    tuple when the key has more than one column)."""

    def __init__(self, db: Db, table: str, spec: Table, written: dict[str, set[Any]] | None = None) -> None:
        self.db = db
        self.table = db.names[table]
        self.spec = spec
        self.rows: dict[Any, dict[str, Any] | None] = {}  # every key whose row is known
        self.stored: dict[Any, bool] = {}  # whether a key had a row before the batch
        self.changed: set[Any] = set()
        self.written = written if written is not None else {}  # column -> the values the run wrote there
        # the keys the run wrote (None: not known, any key may have a row)
        self._keys_written = self.written.get(spec.key[0]) if len(spec.key) == 1 else None
        self._key = operator.itemgetter(*spec.key)  # a row's key: a value, or a tuple
        self._values = operator.itemgetter(*spec.names)  # a row's values, in column order

    def _may_have(self, key: Any) -> bool:
        """Whether `key` may have a stored row the batch has not read."""
        return not self.spec.fresh_keys and (self._keys_written is None or key in self._keys_written)

    # --- reading ----------------------------------------------------------------------------

    def load(self, keys: Iterable[Any]) -> None:
        """Read the rows of these keys (those not known yet) in one query."""
        if self.spec.fresh_keys:
            return
        wanted = [k for k in set(keys) if k not in self.rows]
        if not wanted:
            return
        if len(self.spec.key) != 1:
            for k in wanted:
                self.get(k)
            return
        known = self._keys_written
        if queried := wanted if known is None else [k for k in wanted if k in known]:
            self._remember(self.db.select_in(self.table, self.spec.names, self.spec.key[0], queried))
        for k in wanted:
            self._absent(k)

    def load_where(self, column: str, values: Iterable[Any], condition: str = "") -> list[dict[str, Any]]:
        """Read the stored rows whose `column` is one of `values` (and that meet the SQL
        `condition`); return them as the batch has them now (it may have changed them)."""
        known = self.written.get(column)
        values = [v for v in values if known is None or v in known]
        if not values:
            return []
        keys = self._remember(self.db.select_in(self.table, self.spec.names, column, values, condition))
        return [row for k in keys if (row := self.rows[k]) is not None]

    def _remember(self, found: list[tuple]) -> list[Any]:
        """Take stored rows in, unless the batch knows their keys already; return their keys."""
        keys = []
        for values in found:
            row = dict(zip(self.spec.names, values, strict=True))
            k = self._key(row)
            keys.append(k)
            if k not in self.rows:
                self.rows[k] = row
                self.stored[k] = True
        return keys

    def _absent(self, key: Any) -> None:
        """A key read and found to have no row (unless the batch knows it already)."""
        if key not in self.rows:
            self.rows[key] = None
            self.stored[key] = False

    def get(self, key: Any) -> dict[str, Any] | None:
        """The row of `key` as the batch has it (read from the table on first use)."""
        row = self.rows.get(key, _UNREAD)
        if row is not _UNREAD:
            return row
        if self._may_have(key):
            where = " AND ".join(f"{c} = %s" for c in self.spec.key)
            params = [key] if len(self.spec.key) == 1 else list(key)
            self._remember(self.db.all(
                f"SELECT {', '.join(self.spec.names)} FROM {self.table} WHERE {where}", params))
        self._absent(key)
        return self.rows[key]

    def values(self) -> Iterator[dict[str, Any]]:
        """Every row the batch knows."""
        return (row for row in list(self.rows.values()) if row is not None)

    # --- changing ---------------------------------------------------------------------------

    def add(self, row: dict[str, Any]) -> None:
        """A new row; its key must have none (as a primary key makes an INSERT fail)."""
        k = self._key(row)
        rows = self.rows
        found = rows.get(k, _UNREAD)
        if found is _UNREAD:
            if self.spec.fresh_keys:  # `get` without its calls: no row yet
                self.stored[k] = False
                found = None
            else:
                found = self.get(k)
        if found is not None:
            raise failures.IntegrityError(f"{self.table}: a row with key {k!r} exists already")
        rows[k] = row
        self.changed.add(k)

    def put(self, row: dict[str, Any]) -> None:
        """The row of its key, whether or not it had one."""
        k = self._key(row)
        self._unread(k)
        self.rows[k] = row
        self.changed.add(k)

    def update(self, key: Any, **values: Any) -> dict[str, Any] | None:
        """Change some columns of the row of `key`; no row, no change (like an UPDATE)."""
        row = self.get(key)
        if row is not None:
            row.update(values)
            self.changed.add(key)
        return row

    def delete(self, key: Any) -> None:
        self._unread(key)
        self.rows[key] = None
        self.changed.add(key)

    def _unread(self, key: Any) -> None:
        """A key changed without being read: it may have a stored row, to delete first."""
        if key not in self.rows:
            self.stored[key] = self._may_have(key)

    # --- writing ----------------------------------------------------------------------------

    def changes(self) -> tuple[str, tuple[str, ...], tuple[str, ...], list[Any], list[tuple]] | None:
        """What to write, for `Db.write` (None: nothing): the changed keys that were stored,
        to delete, and the new rows, to insert. The batch then counts them as stored (and the
        run their values as written)."""
        if not self.changed:
            return None
        stored, rows, changed = self.stored, self.rows, self.changed
        gone = [k for k in changed if stored[k]]
        new = [row for k in changed if (row := rows[k]) is not None]
        stored.update({k: rows[k] is not None for k in changed})
        self.changed = set()
        for column, values in list(self.written.items()):
            values.update(map(operator.itemgetter(column), new))
            if len(values) > MAX_WRITTEN:
                del self.written[column]
        return self.table, self.spec.key, self.spec.names, gone, list(map(self._values, new))


class Batch:
    """The rows one batch of events reads and writes, table by table, in one transaction."""

    def __init__(self, db: Db, tables: dict[str, Table], source: Any = None,
                 versions: dict[int, int] | None = None, written: Written | None = None) -> None:
        self.db = db
        self.source = source if source is not None else db.store  # where the events and their keys are
        self.versions = versions or {}  # of the events that may hold sealed fields, by position
        written = written or {}
        self._rows = {table: Rows(db, table, spec, written.get(table)) for table, spec in tables.items()}
        self.memo: dict[Any, Any] = {}  # what models remember within the batch

    def rows(self, table: str) -> Rows:
        return self._rows[table]

    def flush(self) -> None:
        """Write every table's changes."""
        self.db.write([found for rows in self._rows.values() if (found := rows.changes())])
