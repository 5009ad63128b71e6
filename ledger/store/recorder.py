"""PostgreSQL appends: our recorder, a subclass of eventsourcing's, which serialises every
writer of one events table by an advisory lock and checks streams and lead keys under it."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import struct
from collections.abc import Callable, Sequence
from typing import Any

import psycopg
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore, PostgresSubscription
from psycopg.sql import SQL, Identifier

from ledger.merkle import Key, Row as TreeRow
from ledger.store.checks import REFUSED, AppendChecks
from ledger.store.merkle import VALUES_UPTO, PostgresTreeSql
from ledger.store.personal import COPY_SIGNATURE, COPY_TRAILER
from ledger.store.records import Conflict, LeadKey, Row
from ledger.store.schema import EVENTS_TABLE, KEYS_TABLE

SMALL_APPEND = 8  # appends of up to this many events use a VALUES list; larger ones, arrays
HEAD_MOVED = "another writer appended since"
TREE_OFF = "the tree does not end where the log does"
LogHead = tuple[int, int, dict[Key, bytes]]  # the log's last position, the tree's size and frontier


class _HeadMoved(Exception):
    """The log or the tree is not where this recorder's last append left it."""


class _TreeOff(Exception):
    """The tree's size is not the log's last position: its new subtrees are hashed here."""


def _refused(error: BaseException) -> None:
    """A check that failed in the server (`AppendChecks.refuse`) as the ledger's: the log
    moved on from the head assumed (_HeadMoved), the tree does not end where the log does
    (_TreeOff), or a stream moved on from the version read (Conflict)."""
    if isinstance(error, psycopg.errors.InvalidTextRepresentation) and REFUSED in str(error):
        if HEAD_MOVED in str(error):
            raise _HeadMoved() from None
        if TREE_OFF in str(error):
            raise _TreeOff() from None
        raise Conflict(str(error).split(REFUSED + ": ", 1)[-1].split('"', 1)[0]) from None


@functools.cache
def append_lock_key(schema: str) -> int:
    """The advisory lock every writer of one store's events table takes (a signed 64-bit key)."""
    digest = hashlib.sha256(f"leadledger:{schema}.{EVENTS_TABLE}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _copy_keys(cur: Any, table: str, keys: Sequence[tuple[str, Any, str]]) -> None:
    """COPY (kind, value, lead) rows into the key index.

    Raw hashes go in COPY's binary format, made in a few C calls per row. Hex ones (the index
    of a store made by an earlier version) are short and never hold a tab, newline, carriage
    return or backslash, the characters COPY's text format escapes: the rows go as one text,
    joined in C. If the joined text has more tabs or newlines than the rows' own separators,
    or any of the other two, some key holds one, and the rows go one by one in the binary
    format instead.
    """
    if keys and isinstance(keys[0][1], bytes):
        with cur.copy(f"COPY {table} (kind, value, lead) FROM STDIN (FORMAT BINARY)") as copy:
            copy.write(_binary_keys(keys))
        return
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


_event_head = struct.Struct("!hiqi").pack  # 5 fields; the position (8 bytes); the stream's length
_version = struct.Struct("!iqi").pack  # the version (8 bytes); the topic's length
_length = struct.Struct("!i").pack
_key_head = struct.Struct("!hi").pack  # 3 fields; the kind's length


def _parameters(rows: Sequence[Sequence[Any]]) -> list[Any]:
    """Rows as an append's statement takes them: value by value for a few (a VALUES list), a
    column's array each for more."""
    if len(rows) <= SMALL_APPEND:
        return [x for row in rows for x in row]
    return [list(column) for column in zip(*rows, strict=True)]


def _binary_events(first: int, rows: Sequence[Row]) -> bytes:
    """Event rows at positions first.. as COPY's binary format, made in a few C calls per row
    (psycopg's `write_row` spends several times as much on each)."""
    parts = [COPY_SIGNATURE]
    add = parts.extend
    for position, (stream, version, topic, state) in enumerate(rows, first):
        s, t = stream.encode(), topic.encode()
        add((_event_head(5, 8, position, len(s)), s, _version(8, version, len(t)), t, _length(len(state)), state))
    parts.append(COPY_TRAILER)
    return b"".join(parts)


def _binary_keys(keys: Sequence[tuple[str, bytes, str]]) -> bytes:
    """Key rows with raw hashes as COPY's binary format (each kind's field made once: there
    are three)."""
    kinds: dict[str, bytes] = {}
    parts = [COPY_SIGNATURE]
    add = parts.extend
    for kind, value, lead in keys:
        head = kinds.get(kind) or kinds.setdefault(kind, _key_head(3, len(kind.encode())) + kind.encode())
        w = lead.encode()
        add((head, _length(len(value)), value, _length(len(w)), w))
    parts.append(COPY_TRAILER)
    return b"".join(parts)


class LedgerPostgresRecorder(PostgresApplicationRecorder):
    """Appends under an advisory lock instead of the table lock, in as few round trips as it can.

    `LOCK TABLE ... IN EXCLUSIVE MODE` needs UPDATE, DELETE or TRUNCATE privilege on the
    table, which an append-only application role does not have. Every writer takes the
    same advisory lock (one per events table) before it draws positions (the last one + 1)
    and holds it until it commits, so positions are issued and committed in one order,
    gap-free: a reader never passes over a position that is filled in later.

    The stock recorder spends several round trips on each append. Here an append is one
    explicit transaction sent as a pipeline, one round trip, whose Merkle subtrees are hashed
    here when this writer is alone and in the server when others write too (`insert_rows`).
    A version clash aborts the whole transaction (IntegrityError): nothing is written.
    """

    keys_table: str = KEYS_TABLE

    def __init__(self, datastore: PostgresDatastore, *,
                 cursor: Callable[[], contextlib.AbstractContextManager[psycopg.Cursor]],
                 checks: AppendChecks, tree: PostgresTreeSql, **kwargs: Any) -> None:
        super().__init__(datastore, **kwargs)
        self.tree = tree  # the Merkle tree's SQL (merkle.py)
        self.cursor = cursor  # the cursor appends go through (`PostgresStore.cursor`)
        self.checks = checks  # what is checked under the lock
        self._head: LogHead | None = None  # where the log and the tree ended after our last append
        self._last = -1  # the last position of our last append
        self._alone = True  # our last append (hashed in the server) found the log where we left it

    @functools.cache  # noqa: B019 (one recorder per store)
    def _insert_sql(self, rows: int, tree_rows: int) -> bytes:
        """The INSERT of `rows` events at the positions given (a VALUES list for a few,
        arrays for a batch), as bytes; with `tree_rows`, the INSERT of that many of the tree's
        rows before it in the same statement (their parameters first)."""
        columns = "(notification_id, originator_id, originator_version, topic, state)"
        if rows <= SMALL_APPEND:
            source = "(VALUES " + ", ".join(
                ["(%s::bigint, %s::text, %s::bigint, %s::text, %b::bytea)"] * rows) + ")"
        else:
            source = "unnest(%b::bigint[], %b::text[], %b::bigint[], %b::text[], %b::bytea[])"
        table = f'"{self.datastore.schema}".{self.events_table_name}'
        events = f"INSERT INTO {table} {columns} SELECT * FROM {source} AS v".encode()
        return b"WITH tree AS (" + self.tree.values_sql(tree_rows) + b") " + events if tree_rows else events

    @functools.cache  # noqa: B019 (one recorder per store)
    def _server_sql(self, rows: int) -> bytes:
        """The statement that appends `rows` events and their leaves (a VALUES list for a few,
        arrays for a batch) after the log's last position, with the tree's subtrees they
        complete, and returns that position. Unless the tree's size is the log's last position
        (leaf p - 1 is the event at position p), it fails (TREE_OFF, its first parameter), as a
        check does (`AppendChecks.refuse`): the whole CASE is cast, which the planner cannot fold."""
        columns = "originator_id, originator_version, topic, state"
        if rows <= SMALL_APPEND:
            source = "(VALUES " + ", ".join(
                f"({o}, %s::text, %s::bigint, %s::text, %b::bytea, %b::bytea)" for o in range(1, rows + 1)) + ")"
            names = f"o, {columns}, leaf"
        else:
            source = "unnest(%b::text[], %b::bigint[], %b::text[], %b::bytea[], %b::bytea[]) WITH ORDINALITY"
            names = f"{columns}, leaf, o"
        table = f'"{self.datastore.schema}".{self.events_table_name}'
        return (f"WITH RECURSIVE ends(size, p) AS (SELECT {self.tree.size_sql}, {self.tree.top_sql}), "
                "top(p) AS (SELECT CAST(CASE WHEN size = p THEN CAST(p AS TEXT) ELSE %s END AS BIGINT) FROM ends), "
                f"new AS (SELECT * FROM {source} AS v({names})), "
                + f"appended AS (INSERT INTO {table} (notification_id, {columns}) "
                f"SELECT top.p + new.o, {columns} FROM top, new), "
                + self.tree.server_append("(SELECT p FROM top)", "ARRAY(SELECT leaf FROM new ORDER BY o)")
                + " SELECT p FROM top").encode()

    def insert_rows(self, rows: list[Row], *, keys: Sequence[LeadKey], unique_keys: bool,
                    expect: Sequence[tuple[str, int]], leaves: list[bytes],
                    also: Callable[[Any], None] | None = None) -> Sequence[int]:
        """`Store.append`: insert event rows, return their positions.

        One explicit transaction sent as a pipeline: the lock and NOTIFY, the checks (streams
        read but not written, lead keys), `also(cur)` (more work of the caller's), the events at
        the positions after the log's last one (drawn under the lock, not from the sequence,
        whose numbers a rolled-back append would skip: positions stay gap-free) and the tree's
        new subtrees. A version clash aborts the whole transaction (IntegrityError, or Conflict
        from a check): nothing is written. Where the tree's subtrees are hashed depends on
        whether this writer is alone:

        - A writer that made the log's last append knows where the log and the tree end: it
          hashes the new subtrees here, and a check in the same pipeline refuses the append if
          another writer has appended since. One round trip.
        - A writer that follows others' appends sends one statement that inserts the events and
          hashes their subtrees in the server (`_server_sql`), so it holds the lock for no round
          trip of its own (a new lead's keys are looked up under it) and writers that take
          turns do not wait for each other's latency. If it then finds it was alone, its next
          append reads where the log and the tree end under the lock, and knows them again.
        - Where the tree does not end where the log does (a store written before the tree,
          whose first append builds it, or a log cut behind the tree's back), that statement
          fails, and the append reads them under the lock and hashes here.
        """
        head, self._head = self._head, None  # known again once this append commits
        if head is not None:
            try:
                return self._insert_rows(rows, keys, unique_keys, expect, leaves, also, head)
            except _HeadMoved:
                pass  # another writer appended meanwhile
        elif self._alone:
            return self._insert_rows(rows, keys, unique_keys, expect, leaves, also, None)
        try:
            return self._insert_rows(rows, keys, unique_keys, expect, leaves, also, None, in_server=True)
        except _TreeOff:
            return self._insert_rows(rows, keys, unique_keys, expect, leaves, also, None)

    def _insert_rows(self, rows: list[Row], keys: Sequence[LeadKey], unique_keys: bool,
                     expect: Sequence[tuple[str, int]], leaves: list[bytes],
                     also: Callable[[Any], None] | None, head: LogHead | None, *,
                     in_server: bool = False) -> Sequence[int]:
        """One append: the tree hashed in the server, or here from `head` (checked to be
        where the log and the tree still end) or from where they are read to end."""
        schema = self.datastore.schema
        after = None
        with self.cursor() as cur, cur.connection.cursor() as appended:
            conn = cur.connection
            try:
                with conn.pipeline():
                    cur.execute("BEGIN")
                    cur.execute("SELECT pg_advisory_xact_lock(%s), pg_notify(%s, '')",
                                [append_lock_key(schema), self.channel_name], prepare=True)
                    self.checks.versions_refused(cur, expect)
                    self.checks.new_keys(cur, keys, unique_keys)
                    if also is not None:
                        also(cur)
                    if in_server:
                        appended.execute(self._server_sql(min(len(rows), SMALL_APPEND + 1)),
                                         [f"{REFUSED}: {TREE_OFF}", *_parameters([(*row, leaf) for row, leaf in zip(rows, leaves, strict=True)])],
                                         prepare=True)
                    else:
                        if head is None:
                            top, *tail = self.tree.head(cur)
                        else:
                            top, *tail = head
                            self._head_unmoved(cur, head)
                        tree_rows, after = self.tree.planned(cur, top + 1, leaves, tuple(tail), tail_after=True)
                        self._send_rows(cur, top + 1, rows, tree_rows)
                    cur.execute("COMMIT")
                if in_server:
                    top = appended.fetchone()[0]
            except BaseException as e:
                if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                    conn.execute("ROLLBACK")
                _refused(e)
                raise
        self._alone = in_server and top == self._last
        self._last = top + len(rows)
        self._head = (self._last, *after) if after is not None else None
        return list(range(top + 1, self._last + 1))

    def _send_rows(self, cur: Any, first: int, rows: list[Row], tree_rows: list[TreeRow]) -> None:
        """Insert the events at positions first.., and the tree's rows they complete: a claim's
        few in the same statement (one statement less to send and run), more after it."""
        params = _parameters([(i, *row) for i, row in enumerate(rows, first)])
        few = len(tree_rows) <= VALUES_UPTO
        if few:
            params[:0] = [x for row in tree_rows for x in row]
        cur.execute(self._insert_sql(min(len(rows), SMALL_APPEND + 1), len(tree_rows) if few else 0), params,
                    prepare=True)
        if not few:
            self.tree.insert(cur, tree_rows)

    def _head_unmoved(self, cur: Any, head: LogHead) -> None:
        """Refuse the append (in the server) unless the log ends at `head`'s position and the
        tree has `head`'s size: its last leaf (the tree's leaves have no gaps) is size - 1.

        Both are a MAX by an index's end. The statement is prepared, and a plan made for any
        parameters would read `idx >= $1` as a third of the table: after ANALYZE it scanned
        the whole tree for the rows that are not there (300 ms a claim at 1,000,000 events)."""
        top, size, _ = head
        condition = (f"{self.tree.top_sql} = %s AND "
                     f"(SELECT COALESCE(MAX(idx), -1) FROM {self.tree.table} WHERE level = 0) = %s")
        self.checks.refuse(cur, condition, [top, size - 1], HEAD_MOVED)

    def insert_bulk(self, rows: list[Row], keys: Sequence[tuple[str, str, str]], *,
                    unique_keys: bool, checked_at: int | None, leaves: list[bytes],
                    also: Callable[[Any], None] | None = None, ours: tuple[int, int] | None = None) -> int:
        """`Store.append_bulk`: the lock and NOTIFY of `insert_rows`, then, in the same
        transaction, COPY of the event rows (at positions drawn under the lock) and the key
        rows, and the tree's new subtrees; no positions are read back. The last position."""
        schema = self.datastore.schema
        events = f'"{schema}".{self.events_table_name}'
        with self.cursor() as cur, cur.connection.transaction():
            cur.execute("SELECT pg_advisory_xact_lock(%s), pg_notify(%s, '')",
                        [append_lock_key(schema), self.channel_name])
            if unique_keys:  # the position is read in a snapshot taken under the lock
                self.checks.bulk_keys(cur, keys, checked_at, ours)
            top, *tail = self.tree.head(cur)
            with cur.copy(f"COPY {events} (notification_id, originator_id, originator_version, topic, state) "
                          "FROM STDIN (FORMAT BINARY)") as copy:
                copy.write(_binary_events(top + 1, rows))
            if keys:  # in index order: the index's pages are then visited once each, not at random
                _copy_keys(cur, f'"{schema}".{self.keys_table}', sorted(keys))
            if also is not None:
                also(cur)
            self.tree.append(cur, top + 1, leaves, tuple(tail))
        return top + len(rows)

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
