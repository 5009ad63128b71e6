"""PostgreSQL appends: our recorder, a subclass of eventsourcing's, which serialises every
writer of one events table by an advisory lock and checks streams and lead keys under it."""

from __future__ import annotations

import contextlib
import functools
import hashlib
from collections.abc import Callable, Sequence
from typing import Any

import psycopg
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore, PostgresSubscription
from psycopg.sql import SQL, Identifier

from ledger.store.checks import AppendChecks
from ledger.store.records import LeadKey, Row
from ledger.store.schema import EVENTS_TABLE, KEYS_TABLE

SMALL_APPEND = 8  # appends of up to this many events use a VALUES list; larger ones, arrays


@functools.cache
def append_lock_key(schema: str) -> int:
    """The advisory lock every writer of one store's events table takes (a signed 64-bit key)."""
    digest = hashlib.sha256(f"leadledger:{schema}.{EVENTS_TABLE}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _copy_keys(cur: Any, table: str, keys: Sequence[tuple[str, str, str]]) -> None:
    """COPY (kind, value, lead) rows into the key index.

    Keys are short and almost never hold a tab, newline, carriage return or backslash, the
    characters COPY's text format escapes: then the rows go as one text, joined in C. If the
    joined text has more tabs or newlines than the rows' own separators, or any of the other
    two, some key holds one, and the rows go one by one in COPY's binary format instead.
    """
    text = "\n".join(map("\t".join, keys)) + "\n"
    if (text.count("\t") == 2 * len(keys) and text.count("\n") == len(keys)
            and "\\" not in text and "\r" not in text):
        with cur.copy(f"COPY {table} (kind, value, lead) FROM STDIN") as copy:
            copy.write(text)
        return
    with cur.copy(f"COPY {table} (kind, value, lead) FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types(["text", "text", "text"])
        for key in keys:
            copy.write_row(key)


class LedgerPostgresRecorder(PostgresApplicationRecorder):
    """Appends under an advisory lock instead of the table lock, in as few round trips as it can.

    `LOCK TABLE ... IN EXCLUSIVE MODE` needs UPDATE, DELETE or TRUNCATE privilege on the
    table, which an append-only application role does not have. Every writer takes the
    same advisory lock (one per events table) before it draws positions from the sequence
    and holds it until it commits, so positions are still issued and committed in one
    order: a reader never passes over a position that is filled in later.

    The stock recorder spends several round trips on each append. Here a plain append (a
    claim, say) is one statement, which takes the lock, queues the NOTIFY and inserts: one
    round trip. An append that must check something first under the lock (streams it read
    but does not write, lead keys) is one explicit transaction sent as a pipeline, waiting
    only for those checks' answers. A version clash aborts the whole transaction
    (IntegrityError): nothing is written.
    """

    keys_table: str = KEYS_TABLE

    def __init__(self, datastore: PostgresDatastore, *,
                 cursor: Callable[[], contextlib.AbstractContextManager[psycopg.Cursor]],
                 checks: AppendChecks, **kwargs: Any) -> None:
        super().__init__(datastore, **kwargs)
        self.cursor = cursor  # the cursor appends go through (`PostgresStore.cursor`)
        self.checks = checks  # what is checked under the lock

    @functools.cache  # noqa: B019 (one recorder per store)
    def _statements(self, rows: int, guarded: bool) -> bytes:
        """The INSERT of `rows` events (a VALUES list for a few, arrays for a batch), as bytes.

        Unguarded, it is the whole append in one statement (one implicit transaction): a
        materialised CTE takes the advisory lock and queues the NOTIFY before any row draws
        its position. Guarded, the lock, the checks and NOTIFY come first as statements of
        their own in an explicit transaction.
        """
        columns = "(originator_id, originator_version, topic, state)"
        if rows <= SMALL_APPEND:
            source = "(VALUES " + ", ".join(["(%s::text, %s::bigint, %s::text, %b::bytea)"] * rows) + ")"
        else:
            source = "unnest(%b::text[], %b::bigint[], %b::text[], %b::bytea[])"
        table = f'"{self.datastore.schema}".{self.events_table_name}'
        if guarded:
            sql = f"INSERT INTO {table} {columns} SELECT * FROM {source} AS v"
        else:
            sql = (f"WITH lock AS MATERIALIZED (SELECT pg_advisory_xact_lock(%s), pg_notify(%s, '')) "
                   f"INSERT INTO {table} {columns} SELECT v.* FROM lock, {source} AS v")
        return (sql + " RETURNING notification_id").encode()

    def insert_rows(self, rows: list[Row], *, keys: Sequence[LeadKey], unique_keys: bool,
                    expect: Sequence[tuple[str, int]], also: Callable[[Any], None] | None = None,
                    ) -> Sequence[int]:
        """`Store.append`: insert event rows, return their positions (`also(cur)` runs in the
        same transaction, under the lock)."""
        schema = self.datastore.schema
        guarded = bool(expect or keys or also)
        insert = self._statements(min(len(rows), SMALL_APPEND + 1), guarded)
        if len(rows) <= SMALL_APPEND:
            params = [x for row in rows for x in row]
        else:
            params = [list(column) for column in zip(*rows, strict=True)]
        with self.cursor() as cur:
            if not guarded:  # the common case: one statement, one round trip
                cur.execute(insert, [append_lock_key(schema), self.channel_name, *params], prepare=True)
                return [row[0] for row in cur.fetchall()]
            conn = cur.connection
            try:
                with conn.pipeline():
                    cur.execute("BEGIN")
                    cur.execute("SELECT pg_advisory_xact_lock(%s)", [append_lock_key(schema)], prepare=True)
                    self.checks.versions(cur, expect)
                    self.checks.new_keys(cur, keys, unique_keys)
                    if also is not None:
                        also(cur)
                    cur.execute("SELECT pg_notify(%s, '')", [self.channel_name], prepare=True)
                    cur.execute(insert, params, prepare=True)
                    ids = [row[0] for row in cur.fetchall()]  # one cursor, read before COMMIT
                    cur.execute("COMMIT")
                return ids
            except BaseException:
                if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                    conn.execute("ROLLBACK")
                raise

    def insert_bulk(self, rows: list[Row], keys: Sequence[tuple[str, str, str]], *,
                    unique_keys: bool, checked_at: int | None,
                    also: Callable[[Any], None] | None = None) -> None:
        """`Store.append_bulk`: the lock and NOTIFY of `insert_rows`, then, in the same
        transaction, COPY of the event rows and the key rows; no positions are read back."""
        schema = self.datastore.schema
        events = f'"{schema}".{self.events_table_name}'
        with self.cursor() as cur, cur.connection.transaction():
            cur.execute("SELECT pg_advisory_xact_lock(%s), pg_notify(%s, '')",
                        [append_lock_key(schema), self.channel_name])
            if unique_keys:  # the position is read in a snapshot taken under the lock
                self.checks.bulk_keys(cur, keys, checked_at)
            with cur.copy(f"COPY {events} (originator_id, originator_version, topic, state) "
                          "FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(["text", "int8", "text", "bytea"])
                for row in rows:
                    copy.write_row(row)
            if keys:
                _copy_keys(cur, f'"{schema}".{self.keys_table}', keys)
            if also is not None:
                also(cur)

    def subscribe(self, gt: int | None = None, topics: Sequence[str] = ()) -> LedgerSubscription:
        return LedgerSubscription(recorder=self, gt=gt, topics=topics)


class LedgerSubscription(PostgresSubscription):
    """eventsourcing's LISTEN/NOTIFY subscription (channel: the events table's name), plus one
    more pull once LISTEN is in place: its first pull may run before, and an event committed
    in between would otherwise wait for the next one to be noticed."""

    def _listen(self) -> None:
        try:
            with self._recorder.datastore.get_connection() as conn:
                conn.execute(SQL("LISTEN {0}").format(Identifier(self._recorder.channel_name)))
                self._has_been_notified.set()
                while not self._has_been_stopped and not self._thread_error:
                    for _ in conn.notifies(timeout=0.1, stop_after=1):
                        self._has_been_notified.set()
        except BaseException as e:
            if self._thread_error is None:
                self._thread_error = e
            self.stop()
