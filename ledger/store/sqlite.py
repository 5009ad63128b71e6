"""SQLite: a file, read and appended through connections of each thread's own.

An append is one `BEGIN IMMEDIATE` transaction, which takes the write lock at once, so the
checks inside it see the latest commit; rowids are the positions. Nothing tells a reader of
new events here: following the log polls.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ledger.store.failures as failures
from ledger.errors import InvalidInput, StoreUnavailable
from ledger.i18n import _
from ledger.store.base import Also, Store
from ledger.store.checks import AppendChecks
from ledger.store.many import insert_many
from ledger.store.merkle import SQLiteTreeSql
from ledger.store.personal import DATA_KEYS_TABLE, SECRETS_TABLE, SQLitePersonal
from ledger.store.readmodels import Db
from ledger.store.records import LeadKey, Row
from ledger.store.schema import EVENTS_TABLE, KEYS_TABLE, keys_table_sql, refuse_foreign, sqlite_append_only_sql
from ledger.store.tree import StoredTree
from ledger.store.writers import WriterQueue

if TYPE_CHECKING:  # the library loads with the first append: a query needs none of it
    from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteDatastore

CHUNK = 500  # keys per IN (...) list of a read-model look-up


class SQLiteDb(Db):
    """The read models' transaction on SQLite: `?` placeholders, look-ups in chunks."""

    def placeholders(self, sql: str) -> str:
        return sql.replace("%s", "?")

    def select_in(self, table: str, columns: Sequence[str], column: str, values: list[Any],
                  condition: str = "") -> list[tuple]:
        head = f"SELECT {', '.join(columns)} FROM {table} WHERE "
        tail = f" AND {condition}" if condition else ""
        found = []
        for i in range(0, len(values), CHUNK):
            chunk = values[i:i + CHUNK]
            found += self.cur.execute(
                f"{head}{column} IN ({', '.join('?' * len(chunk))}){tail}", chunk).fetchall()
        return found


SQLITE_ROWS = 200  # events per INSERT statement (4 parameters each)


class SQLiteStore(Store):
    kind = "sqlite"
    param = "?"
    _position_column = "rowid"
    _events = EVENTS_TABLE
    checks = AppendChecks("?", EVENTS_TABLE, KEYS_TABLE, "rowid")
    db_type = SQLiteDb

    def __init__(self, url: str, path: str) -> None:
        self.url = url
        self.path = path
        self._datastore: SQLiteDatastore | None = None
        self._recorder: SQLiteApplicationRecorder | None = None
        self._checked = False  # found initialised once: not checked again (as on PostgreSQL)
        self._guarded = False  # the append-only triggers made sure of by this process
        self._local = threading.local()  # this thread's connections: "read" and "append"
        self._connections: list[sqlite3.Connection] = []
        self.personal = SQLitePersonal(self, DATA_KEYS_TABLE, SECRETS_TABLE, KEYS_TABLE, "?")
        self._tree_made = False  # the tree's table made sure of (a store from before it has none)
        self.tree = StoredTree(SQLiteTreeSql(EVENTS_TABLE, "rowid"), self.reading, self._tree_writing)
        # the log's last position, the tree's size and frontier after this store's last append
        self._tail: tuple[int, int, dict[Any, bytes]] | None = None

    @property
    def datastore(self) -> SQLiteDatastore:
        if self._datastore is None:
            from eventsourcing.sqlite import SQLiteDatastore  # noqa: PLC0415

            self._datastore = SQLiteDatastore(
                self.path, lock_timeout=60, pool_size=2, max_overflow=4, originator_id_type="text"
            )
        return self._datastore

    @property
    def recorder(self) -> SQLiteApplicationRecorder:
        """The library's recorder: it creates the events table."""
        if self._recorder is None:
            from eventsourcing.sqlite import SQLiteApplicationRecorder  # noqa: PLC0415

            self._recorder = SQLiteApplicationRecorder(self.datastore, events_table_name=EVENTS_TABLE)
        return self._recorder

    def init(self) -> None:
        folder = os.path.dirname(os.path.abspath(self.path))
        if not os.path.isdir(folder):
            raise StoreUnavailable(_("cannot create the store: no folder {folder}", folder=folder))
        self._refuse_foreign()
        try:
            self.recorder.create_table()
            with self.writing() as cur:
                for statement in [*keys_table_sql(KEYS_TABLE, self.personal.blob), *sqlite_append_only_sql(),
                                  *self.tree.create_sql()]:
                    cur.execute(statement)
                self.personal.create(cur)
        except failures.PersistenceError as e:
            raise StoreUnavailable(_("cannot create the store at {path}: {reason}", path=self.path, reason=e)) from None

    def _refuse_foreign(self) -> None:
        """Before anything is written: a file that is not a database, or a database of another
        application's, is refused and left as it was (read here without writing)."""
        if not os.path.exists(self.path) or (os.path.isfile(self.path) and os.path.getsize(self.path) == 0):
            return
        try:
            con = sqlite3.connect(self._read_only_uri(), uri=True, timeout=5)
            try:
                tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            finally:
                con.close()
        except sqlite3.Error as e:
            raise InvalidInput(_("{path} is not a SQLite database ({reason}); `init` changes nothing in it",
                                 path=self.path, reason=e)) from None
        refuse_foreign(tables, self.path)

    def ensure_ready(self) -> None:
        if self._checked:
            return
        if not os.path.exists(self.path):
            raise StoreUnavailable(
                _("no store at {path}; run `leadledger init --admin ID --name NAME` first", path=self.path)
            )
        try:
            con = sqlite3.connect(self._read_only_uri(), uri=True, timeout=5)
            try:
                row = con.execute(
                    "SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (EVENTS_TABLE,)
                ).fetchone()
            finally:
                con.close()
        except sqlite3.Error as e:
            raise StoreUnavailable(_("cannot open the store at {path}: {reason}", path=self.path, reason=e)) from None
        if not row:
            raise StoreUnavailable(
                _("the store at {path} is not initialised; run `leadledger init` first", path=self.path)
            )
        self._checked = True

    def _read_only_uri(self) -> str:
        """The file opened read-only. In a folder this process may not write, SQLite cannot
        make the WAL index a reader needs beside the file: unless one is there, the file is
        opened as immutable (an auditor's read-only copy, which nobody writes)."""
        uri = Path(self.path).absolute().as_uri() + "?mode=ro"
        folder = os.path.dirname(os.path.abspath(self.path))
        if not os.access(folder, os.W_OK) and not os.path.exists(self.path + "-shm"):
            uri += "&immutable=1"
        return uri
    def damaged(self) -> bool:
        """A file that is not a SQLite database, or one SQLite finds malformed (a busy or
        locked one is not damaged)."""
        try:
            with open(self.path, "rb") as f:
                if f.read(16) != b"SQLite format 3\x00":
                    return os.path.getsize(self.path) > 0
            con = sqlite3.connect(Path(self.path).absolute().as_uri() + "?mode=ro", uri=True, timeout=5)
            try:
                return con.execute("PRAGMA quick_check(1)").fetchone()[0] != "ok"
            finally:
                con.close()
        except OSError:
            return False
        except sqlite3.Error as e:
            return not self._is_busy(e)

    def _is_busy(self, e: Exception) -> bool:
        text = str(e).lower()
        return "locked" in text or "busy" in text

    def table(self, name: str) -> str:
        return name

    def _connection(self, role: str) -> sqlite3.Connection:
        """This thread's own connection for read transactions (`role` "read"), or for appends
        and single-statement reads ("append").

        They skip the library's connection pool, whose reader/writer interlocking costs more
        than a query; in WAL mode readers never block, nor are blocked by, the writer.
        """
        con = getattr(self._local, role, None)
        if con is None and not os.access(self.path, os.W_OK):  # a copy we may only read
            con = sqlite3.connect(self._read_only_uri(), uri=True, isolation_level=None, timeout=60,
                                  check_same_thread=False)
            setattr(self._local, role, con)
            self._connections.append(con)
        if con is None:
            con = sqlite3.connect(self.path, isolation_level=None, timeout=60, check_same_thread=False)
            con.execute("PRAGMA secure_delete=ON")  # deleted personal data is zeroed, not left in free pages
            setattr(self._local, role, con)
            self._connections.append(con)
        return con

    @contextmanager
    def _appending(self) -> Iterator[sqlite3.Cursor]:
        """One transaction on this thread's append connection that takes the write lock at
        once (BEGIN IMMEDIATE), so the checks inside it (streams read but not written, lead
        keys) see the latest commit, after waiting its turn (`WriterQueue`); sqlite3's errors
        come out as the library's."""
        try:
            con = self._connection("append")
            cur = con.cursor()
            with WriterQueue.of_thread(self._local, self.path, self._connections).turn():
                cur.execute("BEGIN IMMEDIATE")
                guard = not self._guarded
                if guard:  # a store made by an earlier version gets the triggers too
                    for statement in sqlite_append_only_sql():
                        cur.execute(statement)
                try:
                    yield cur
                    cur.execute("COMMIT")
                    self._guarded = self._guarded or guard
                except BaseException:
                    if con.in_transaction:
                        cur.execute("ROLLBACK")
                    raise
        except sqlite3.IntegrityError as e:
            raise failures.IntegrityError(str(e)) from e
        except sqlite3.Error as e:
            raise failures.OperationalError(str(e)) from e

    def _insert(self, rows: list[Row], *, keys: Sequence[LeadKey], unique_keys: bool,
                expect: Sequence[tuple[str, int]], leaves: list[bytes], also: Also | None = None) -> Sequence[int]:
        ids: list[int] = []
        with self._appending() as cur:
            self.checks.versions(cur, expect)
            self.checks.new_keys(cur, keys, unique_keys)
            if also is not None:
                also(cur)
            for i in range(0, len(rows), SQLITE_ROWS):  # rows take rising rowids in order
                chunk = rows[i:i + SQLITE_ROWS]
                cur.execute(f"INSERT INTO {EVENTS_TABLE} VALUES {', '.join(['(?, ?, ?, ?)'] * len(chunk))} "
                            "RETURNING rowid", [x for row in chunk for x in row])
                ids.extend(sorted(row[0] for row in cur.fetchall()))
            self._tree_table(cur)
            # No event appended since ours (the log goes on right after it): the tree is as
            # our append left it, and its frontier need not be read again.
            known = self._tail
            self._tail = None
            tail = known[1:] if known is not None and known[0] == ids[0] - 1 else None
            after = self.tree.append(cur, ids[0], leaves, tail, tail_after=True)
        self._tail = (ids[-1], *after) if after is not None else None
        return ids

    def _tree_table(self, cur: sqlite3.Cursor) -> None:
        """Make the tree's table, once per store, inside an append (a store from before it)."""
        if not self._tree_made:
            for statement in self.tree.create_sql():
                cur.execute(statement)
            self._tree_made = True

    @contextmanager
    def _tree_writing(self) -> Iterator[sqlite3.Cursor]:
        """A transaction under the append lock, the tree's table made (the tree's upgrade)."""
        with self._appending() as cur:
            self._tree_table(cur)
            yield cur

    def _insert_bulk(self, rows: list[Row], keys: Sequence[tuple[str, str, str]], *,
                     unique_keys: bool, checked_at: int | None, leaves: list[bytes], also: Also | None = None,
                     ours: tuple[int, int] | None = None) -> int:
        """`append_bulk` in one BEGIN IMMEDIATE transaction, like `_insert`, in multi-row INSERTs."""
        with self._appending() as cur:
            if unique_keys:
                self.checks.bulk_keys(cur, keys, checked_at, ours)
            if also is not None:
                also(cur)
            first = (cur.execute(f"SELECT MAX(rowid) FROM {EVENTS_TABLE}").fetchone()[0] or 0) + 1
            insert_many(cur, EVENTS_TABLE, "rowid, originator_id, originator_version, topic, state", 5,
                        [(position, *row) for position, row in enumerate(rows, first)])
            self._tree_table(cur)
            self.tree.append(cur, first, leaves)
            # in index order: the index's pages are then visited once each, not at random
            insert_many(cur, KEYS_TABLE, "kind, value, lead", 3, sorted(keys))
        return first + len(rows) - 1

    def query(self, sql: str, params: Sequence[Any], *, binary: bool = False) -> list[tuple]:
        """On the connection appends use: the pages they just wrote are still in its cache,
        where another connection would have to read them again after each commit."""
        try:
            return self._connection("append").execute(sql, params).fetchall()
        except sqlite3.Error as e:
            raise failures.OperationalError(str(e)) from e

    @contextmanager
    def reading(self) -> Iterator[Any]:
        """A read transaction (one snapshot of the file) on this thread's own connection."""
        try:
            cur = self._connection("read").cursor()
            cur.execute("BEGIN")
            try:
                yield cur
            finally:
                cur.execute("ROLLBACK")
                cur.close()
        except sqlite3.Error as e:
            raise failures.OperationalError(str(e)) from e

    @contextmanager
    def writing(self) -> Iterator[Any]:
        try:
            with self.datastore.transaction(commit=True) as cur:
                cur.sqlite_cursor.execute("PRAGMA secure_delete=ON")  # as on every connection
                yield cur.sqlite_cursor
        except sqlite3.Error as e:  # a file we may not write, say: a store error, as in `reading`
            raise failures.OperationalError(str(e)) from e

    def truncate_log_file(self) -> None:
        """Copy the write-ahead log into the file and empty it: what an erasure deleted is then
        in neither (secure delete zeroed it in the pages)."""
        self._connection("append").execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def rename_index(self, cur: Any, old: str, new: str, table: str, columns: str) -> None:
        """SQLite cannot rename an index: it is built again under its new name."""
        cur.execute(f"DROP INDEX IF EXISTS {old}")
        cur.execute(f"CREATE INDEX IF NOT EXISTS {new} ON {table} ({columns})")

    @contextmanager
    def subscribe(self, after: int, *, stop: threading.Event | None = None,
                  poll: float = 0.5) -> Iterator[Iterator[int]]:
        """Positions of events stored after `after`, as they arrive, until `stop` is set.

        Here by polling every `poll` seconds (eventsourcing has no SQLite subscription).
        A position stands for it and everything before.
        """
        stop = stop or threading.Event()

        def arrivals() -> Iterator[int]:
            seen = after
            while not stop.is_set():
                top = self.max_position()
                if top > seen:
                    seen = top
                    yield top
                else:
                    stop.wait(poll)

        yield arrivals()
