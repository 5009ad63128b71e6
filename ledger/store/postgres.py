"""PostgreSQL: a schema for the events and the key index, another for the read models.

Appends go through our recorder (`recorder.py`) on a connection of each thread's own, as do
single-statement reads; the library's pool serves read and write transactions. New events
are signalled by LISTEN/NOTIFY. Long lists of keys or streams travel as one JSON text
parameter, and read-model rows in bulk by COPY.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import msgspec
import psycopg
from psycopg.rows import tuple_row
from psycopg.sql import SQL, Identifier

import ledger.store.failures as failures
from ledger.errors import StoreUnavailable
from ledger.i18n import _
from ledger.store.base import Also, Store
from ledger.store.checks import AppendChecks
from ledger.store.merkle import PostgresTreeSql
from ledger.store.personal import DATA_KEYS_TABLE, SECRETS_TABLE, PostgresPersonal
from ledger.store.readmodels import Change, Db
from ledger.store.records import LeadKey, Row
from ledger.store.schema import (EVENTS_TABLE, KEYS_TABLE, append_only_sql, keys_table_sql, refuse_foreign,
                                 role_grants)
from ledger.store.tree import StoredTree

if TYPE_CHECKING:  # the library loads with the first append or read-model transaction: a query needs none of it
    from eventsourcing.postgres import PostgresDatastore

    from ledger.store.recorder import LedgerPostgresRecorder

COPY_ROWS = 100  # rows from which a COPY beats an INSERT (two round trips to one)


@functools.cache
def _errors() -> list[tuple[type[Exception], type[Exception]]]:
    """psycopg's errors and the library's, as its PostgreSQL datastore translates them."""
    return [
        (psycopg.InterfaceError, failures.InterfaceError), (psycopg.OperationalError, failures.OperationalError),
        (psycopg.DataError, failures.DataError), (psycopg.IntegrityError, failures.IntegrityError),
        (psycopg.InternalError, failures.InternalError), (psycopg.ProgrammingError, failures.ProgrammingError),
        (psycopg.NotSupportedError, failures.NotSupportedError), (psycopg.DatabaseError, failures.DatabaseError),
        (psycopg.Error, failures.PersistenceError),
    ]


def _json(rows: Sequence[Any]) -> str:
    return msgspec.json.encode(rows).decode()


class PostgresDb(Db):
    """The read models' transaction on PostgreSQL: look-ups and deletes by one array
    parameter; small changes pipelined, large inserts COPYs (which a pipeline cannot hold)."""

    def select_in(self, table: str, columns: Sequence[str], column: str, values: list[Any],
                  condition: str = "") -> list[tuple]:
        tail = f" AND {condition}" if condition else ""
        return self.cur.execute(
            f"SELECT {', '.join(columns)} FROM {table} WHERE {column} = ANY(%b){tail}", [values]).fetchall()

    def pipelined(self, changes: list[Change]) -> contextlib.AbstractContextManager[Any]:
        if all(len(rows) < COPY_ROWS for *_, rows in changes):
            return self.cur.connection.pipeline()
        return contextlib.nullcontext()

    def delete_keys(self, table: str, key: Sequence[str], keys: list[Any]) -> None:
        if keys and len(key) == 1:
            self.cur.execute(f"DELETE FROM {table} WHERE {key[0]} = ANY(%b)", [keys])
            return
        super().delete_keys(table, key, keys)

    def insert_rows(self, table: str, columns: Sequence[str], rows: list[tuple]) -> None:
        if len(rows) < COPY_ROWS:
            super().insert_rows(table, columns, rows)
            return
        with self.cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)


def _hash_of(element: int, keys: Sequence[Sequence[Any]]) -> str:
    """Element `element` of a JSON key as the index holds it: raw hashes go in JSON as base64."""
    return f"decode(q->>{element}, 'base64')" if keys and isinstance(keys[0][1], bytes) else f"q->>{element}"


class PostgresChecks(AppendChecks):
    """Long lists of keys or streams go as one JSON text parameter."""

    key_chunk = 50_000

    def streams_matching(self, streams: Sequence[str]) -> tuple[str, list[Any]]:
        """One JSON text parameter, made an array for the index scan."""
        return "originator_id = ANY(ARRAY(SELECT json_array_elements_text(%s::json)))", [_json(streams)]

    def keys_matching(self, pairs: Sequence[tuple[str, str]], columns: str) -> tuple[str, list[Any]]:
        """The pairs as one JSON text parameter (an array of pairs) joined against the index:
        a long OR of pairs takes PostgreSQL seconds to plan and scan, and dumping long arrays
        item by item is slow."""
        return (
            f"SELECT {columns} FROM {self.keys} k JOIN (SELECT q->>0 AS kind, {_hash_of(1, pairs)} AS value "
            "FROM json_array_elements(%s::json) AS q) AS q ON k.kind = q.kind AND k.value = q.value",
            [_json(pairs)],
        )

    def index_keys(self, cur: Any, keys: Sequence[LeadKey]) -> None:
        """The whole batch in one statement."""
        rows = [(k.kind, k.value, k.lead) for k in keys]
        cur.execute(
            f"INSERT INTO {self.keys} (kind, value, lead) "
            f"SELECT q->>0, {_hash_of(1, rows)}, q->>2 FROM json_array_elements(%s::json) AS q",
            [_json(rows)],
        )


class PostgresStore(Store):
    kind = "postgresql"
    _position_column = "notification_id"
    db_type = PostgresDb
    reads_ahead = True
    renames_indexes = True

    def __init__(self, url: str, conninfo: str, schema: str) -> None:
        self.url = url
        self.conninfo = conninfo
        self.schema = schema
        self.read_schema = f"{schema}_read"
        self._events = f'"{schema}".{EVENTS_TABLE}'
        self._keys = f'"{schema}".{KEYS_TABLE}'
        self.checks = PostgresChecks("%s", self._events, self._keys, self._position_column)
        self.tree = StoredTree(PostgresTreeSql(schema, self._events, self._position_column), self.reading,
                               self._tree_writing)
        self._datastore: PostgresDatastore | None = None
        self._recorder: LedgerPostgresRecorder | None = None
        self._checked = False
        self._local = threading.local()  # this thread's own connection
        self._connections: list[psycopg.Connection] = []
        self.personal = PostgresPersonal(self, f'"{schema}".{DATA_KEYS_TABLE}', f'"{schema}".{SECRETS_TABLE}',
                                         self._keys, "%s")

    def _connect(self, timeout: int = 3) -> psycopg.Connection:
        try:
            return psycopg.connect(self.conninfo, connect_timeout=timeout, autocommit=True)
        except psycopg.Error as e:
            msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise StoreUnavailable(_("cannot reach PostgreSQL: {reason}", reason=msg)) from None

    @property
    def datastore(self) -> PostgresDatastore:
        if self._datastore is None:
            from eventsourcing.postgres import PostgresDatastore  # noqa: PLC0415 - see TYPE_CHECKING above

            info = psycopg.conninfo.conninfo_to_dict(self.conninfo)
            self._datastore = PostgresDatastore(
                dbname=str(info.get("dbname", "")),
                host=str(info.get("host", "127.0.0.1")),
                port=str(info.get("port", 5432)),
                user=str(info.get("user", "")),
                password=str(info.get("password", "")),
                connect_timeout=5,
                pool_size=1,
                max_overflow=4,
                schema=self.schema,
                originator_id_type="text",
            )
        return self._datastore

    @property
    def recorder(self) -> LedgerPostgresRecorder:
        if self._recorder is None:
            from ledger.store.recorder import LedgerPostgresRecorder  # noqa: PLC0415

            self._recorder = LedgerPostgresRecorder(self.datastore, events_table_name=EVENTS_TABLE,
                                                    cursor=self.cursor, checks=self.checks, tree=self.tree.sql)
        return self._recorder

    def init(self) -> None:
        with self._connect() as con:
            # Before anything is created: schemas holding another application's tables are
            # refused and left as they were (the events table in ours marks a ledger).
            found = con.execute("SELECT table_schema, table_name FROM information_schema.tables "
                                "WHERE table_schema IN (%s, %s)", [self.schema, self.read_schema]).fetchall()
            ledger = any(row == (self.schema, EVENTS_TABLE) for row in found)
            refuse_foreign([EVENTS_TABLE] if ledger else [t for _, t in found],
                           _("PostgreSQL schema {schema} (or {read})", schema=repr(self.schema),
                             read=repr(self.read_schema)))
            con.execute(SQL("CREATE SCHEMA IF NOT EXISTS {}").format(Identifier(self.schema)))
            con.execute(SQL("CREATE SCHEMA IF NOT EXISTS {}").format(Identifier(self.read_schema)))
        try:
            self.recorder.create_table()
            with self.writing() as cur:
                for statement in [*keys_table_sql(self._keys, self.personal.blob), *self.append_only_sql(),
                                  *self.tree.create_sql()]:
                    cur.execute(statement)
                self.personal.create(cur)
        except failures.PersistenceError as e:
            raise StoreUnavailable(_("cannot create the store: {reason}", reason=e)) from None
        self._checked = True

    def append_only_sql(self) -> list[Any]:
        """DDL (idempotent) that makes the events table append-only (see `append_only_sql` in schema.py)."""
        return append_only_sql(self.schema)

    def role_grants(self, app: str, reader: str | None = None) -> list[Any]:
        """The grants of an application role `app` and a read-only `reader` (see `role_grants` in schema.py)."""
        return [*role_grants(self.schema, self.read_schema, app, reader), *self.tree.sql.grants_sql(app)]

    def ensure_ready(self) -> None:
        if self._checked:
            return
        # On this thread's own connection, which the reads after it use too: a query pays
        # for one connection, not one more for this check.
        with self.cursor() as cur:
            events, tree = cur.execute("SELECT to_regclass(%s), to_regclass(%s)",
                                       [self._events, self.tree.sql.table]).fetchone()
        if events is None:
            raise StoreUnavailable(_("the PostgreSQL store is not initialised; run `leadledger init` first"))
        self._checked = True
        if tree is None:
            self._tree_table()

    def _tree_table(self) -> None:
        """A store from before the Merkle tree gets its table when a role that may create it
        opens it; for any other role, appends fail until the owner has opened it once."""
        try:
            with self.cursor() as cur, cur.connection.transaction():
                if cur.execute("SELECT to_regclass(%s)", [self.tree.sql.table]).fetchone()[0] is None:
                    for statement in self.tree.create_sql():
                        cur.execute(statement)
        except failures.PersistenceError:
            pass  # no right to create it: reads answer from the events (integrity.py)

    @contextmanager
    def _tree_writing(self) -> Iterator[psycopg.Cursor]:
        """A transaction under the append lock (the tree's upgrade)."""
        with self.cursor() as cur, cur.connection.transaction():
            from ledger.store.recorder import append_lock_key  # noqa: PLC0415

            cur.execute("SELECT pg_advisory_xact_lock(%s)", [append_lock_key(self.schema)])
            yield cur

    def _is_busy(self, e: Exception) -> bool:
        return "deadlock" in str(e).lower()

    def _insert(self, rows: list[Row], *, keys: Sequence[LeadKey], unique_keys: bool,
                expect: Sequence[tuple[str, int]], leaves: list[bytes], also: Also | None = None) -> Sequence[int]:
        return self.recorder.insert_rows(rows, keys=keys, unique_keys=unique_keys, expect=expect, leaves=leaves,
                                         also=also)

    def _insert_bulk(self, rows: list[Row], keys: Sequence[tuple[str, str, str]], *,
                     unique_keys: bool, checked_at: int | None, leaves: list[bytes], also: Also | None = None,
                     ours: tuple[int, int] | None = None) -> int:
        last = self.recorder.insert_bulk(rows, keys, unique_keys=unique_keys, checked_at=checked_at,
                                         leaves=leaves, also=also, ours=ours)
        self.refresh_statistics()
        return last

    def refresh_statistics(self) -> None:
        """After a bulk append: ANALYZE the store's tables that were never analysed or have grown
        by a tenth since, as autovacuum would where it is off or has not come round yet. Without
        statistics the planner guesses that a stream or a batch of keys is a few hundredths of a
        large table, and scans all of it (an import's look-up of 10,000 ids took minutes at
        7,000,000 events), where the index finds them in milliseconds. Only tables of a role this
        one has (ANALYZE's own rule); a failure here does not fail the append made."""
        try:
            stale = self.query(
                "SELECT format('%%I.%%I', n.nspname, c.relname) FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid "
                "WHERE n.nspname IN (%s, %s) AND c.relkind = 'r' AND pg_has_role(c.relowner, 'USAGE') "
                "AND (c.reltuples < 0 OR s.n_mod_since_analyze > s.n_live_tup / 10)",
                [self.schema, self.read_schema])
            with self.cursor() as cur:
                for (table,) in stale:
                    cur.execute(f"ANALYZE {table}")
        except failures.PersistenceError:
            pass

    @contextmanager
    def cursor(self) -> Iterator[psycopg.Cursor]:
        """A cursor (tuple rows) on this thread's own connection (autocommit), for appends and
        single-statement reads.

        Both are kept outside the library's pool, whose checkout and return cost more than a
        claim's query. psycopg's errors come out as the library's (IntegrityError,
        OperationalError, ...), as from the pool; a broken connection is replaced next time.
        """
        con = getattr(self._local, "con", None)
        if con is None or con.closed or con.broken:
            if con is not None:
                self._connections.remove(con)
            con = self._local.con = self._connect(timeout=5)
            # A stream's events are a few rows found by the index. Before the table has
            # statistics (a new store, a large import that autovacuum has not analysed yet) the
            # planner guesses hundreds per stream, and would start parallel workers for each
            # read: a few milliseconds each, many times the read itself.
            con.execute("SET max_parallel_workers_per_gather = 0")
            self._local.cur = con.cursor(row_factory=tuple_row)
            self._connections.append(con)
        try:
            yield self._local.cur
        except psycopg.Error as e:
            raise next(ours for theirs, ours in _errors() if isinstance(e, theirs))(str(e)) from e

    def query(self, sql: str, params: Sequence[Any], *, binary: bool = False) -> list[tuple]:
        """A read is tried once more on a new connection when the kept one was found broken
        (the server restarted, say): reading twice is harmless."""
        try:
            with self.cursor() as cur:
                return cur.execute(sql, params, prepare=True, binary=binary).fetchall()
        except failures.OperationalError:
            if not self._local.con.broken:
                raise
        with self.cursor() as cur:
            return cur.execute(sql, params, prepare=True, binary=binary).fetchall()

    def table(self, name: str) -> str:
        return f'"{self.read_schema}".{name}'

    @contextmanager
    def reading(self) -> Iterator[Any]:
        with self.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as cur:
            yield cur

    @contextmanager
    def writing(self) -> Iterator[Any]:
        with (
            self.datastore.get_connection() as conn,
            conn.transaction(),
            conn.cursor(row_factory=tuple_row) as cur,
        ):
            yield cur

    def copy_grants(self, cur: Any, source: str, target: str) -> None:
        cur.execute(
            "SELECT a.privilege_type, CASE WHEN a.grantee = 0 THEN 'PUBLIC' "
            "ELSE quote_ident(r.rolname) END FROM pg_class c CROSS JOIN aclexplode(c.relacl) a "
            "LEFT JOIN pg_roles r ON r.oid = a.grantee "
            "WHERE c.oid = to_regclass(%s) AND a.grantee <> c.relowner", [source])
        for privilege, grantee in cur.fetchall():
            cur.execute(f"GRANT {privilege} ON {target} TO {grantee}")

    def rename_index(self, cur: Any, old: str, new: str, table: str, columns: str) -> None:
        cur.execute(f'ALTER INDEX IF EXISTS "{self.read_schema}".{old} RENAME TO {new}')

    @contextmanager
    def subscribe(self, after: int, *, stop: threading.Event | None = None,
                  poll: float = 0.5) -> Iterator[Iterator[int]]:
        """Positions of new events as PostgreSQL notifies them (eventsourcing's subscription).

        The subscription ends when `stop` is set; a lost connection raises from the iterator.
        """
        with self.recorder.subscribe(gt=after) as subscription:
            done = threading.Event()

            def watch() -> None:
                while not done.wait(0.2):
                    if stop is not None and stop.is_set():
                        subscription.stop()
                        return

            watcher = threading.Thread(target=watch, daemon=True)
            watcher.start()
            try:
                yield (n.id for n in subscription)
            finally:
                done.set()
                watcher.join()
