"""The only place that knows SQLite from PostgreSQL.

Events are appended through eventsourcing's application recorders (SQLite, or PostgreSQL
serialised by an advisory lock, which gives gap-free, non-interleaved positions). Our recorder
subclasses add one thing inside the append transaction: the lead-key index used for the
duplicate check, checked and written under the same lock as the events themselves.

A store URL picks the backend: `sqlite:///path/to.db` (or a bare path) or
`postgresql://user@host:port/db[?schema=NAME]`.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import operator
import os
import sqlite3
import threading
from pathlib import Path
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple
from urllib.parse import parse_qs, unquote, urlencode, urlsplit, urlunsplit

import msgspec
import psycopg
from eventsourcing.persistence import (
    DatabaseError, DataError, IntegrityError, InterfaceError, InternalError, NotSupportedError,
    OperationalError, PersistenceError, ProgrammingError,
)
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore, PostgresSubscription
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteDatastore
from psycopg.rows import tuple_row
from psycopg.sql import SQL, Identifier

from ledger import codec
from ledger.errors import InvalidInput, StoreUnavailable
from ledger.events import AnyEvent, Event

DEFAULT_STORE = "sqlite:///leadledger.db"
EVENTS_TABLE = "leadledger_events"
KEYS_TABLE = "leadledger_lead_keys"

# psycopg's errors and the library's, as its PostgreSQL datastore translates them
_ERRORS = [
    (psycopg.InterfaceError, InterfaceError), (psycopg.OperationalError, OperationalError),
    (psycopg.DataError, DataError), (psycopg.IntegrityError, IntegrityError),
    (psycopg.InternalError, InternalError), (psycopg.ProgrammingError, ProgrammingError),
    (psycopg.NotSupportedError, NotSupportedError), (psycopg.DatabaseError, DatabaseError),
    (psycopg.Error, PersistenceError),
]


class Conflict(Exception):
    """Another writer appended to one of the streams first: re-read and decide again."""


class DuplicateKeys(Conflict):
    """A lead key was taken by a concurrent writer after we checked."""


class Stored(NamedTuple):  # a named tuple: made for every event read, and quick to make
    """An event as the store holds it."""

    position: int
    stream: str
    version: int
    recorded_at: datetime
    hash: str
    event: AnyEvent


class NewEvent(NamedTuple):
    stream: str
    version: int
    prev: str  # hash of the stream's last stored event (events after it in a batch chain on)
    event: Event


@dataclass(frozen=True, slots=True)
class LeadKey:
    kind: str  # phone | email | company
    value: str
    lead: str


Row = tuple[str, int, str, bytes]  # an event row as stored: stream, version, topic, state


def _encoded(events: Sequence[NewEvent]) -> tuple[datetime, list[Row], list[str]]:
    """The time they are recorded at, the rows to store, and each one's chain hash (events of
    one stream in a batch chain on from each other)."""
    now = datetime.now(UTC)
    heads: dict[str, str] = {}
    rows, digests = [], []
    for e in events:
        state, digest = codec.encode(e.stream, e.version, heads.get(e.stream, e.prev), now, e.event)
        heads[e.stream] = digest
        rows.append((e.stream, e.version, type(e.event).__name__, state))
        digests.append(digest)
    return now, rows, digests


_stream_order = operator.itemgetter(0, 2)  # (stream, version) of a row read


def _stored(position: int, stream: str, version: int, state: bytes) -> Stored:
    record = codec.decode(state)
    return Stored(position, stream, version, record.recorded_at, record.hash, record.event)


class Store:
    """Common interface; `open_store` returns one of the two subclasses."""

    kind: str
    url: str
    param = "%s"

    def init(self) -> None:
        raise NotImplementedError

    def ensure_ready(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    # -- events -------------------------------------------------------------------------

    def append(
        self, events: Sequence[NewEvent], *, keys: Sequence[LeadKey] = (), unique_keys: bool = True,
        expect: Sequence[tuple[str, int]] = (),
    ) -> list[Stored]:
        """Append events atomically; return them as stored, with their positions.

        `expect` names (stream, version) pairs the decision was read from that get no new
        event here (a refusal decided from a rep's desk): they must still be at that version.
        Raises Conflict when a stream moved on since it was read (or DuplicateKeys when
        `unique_keys` and a key is already indexed); nothing is written then.
        """
        now, rows, digests = _encoded(events)
        with self._recording():
            ids = self._insert(rows, keys=keys, unique_keys=unique_keys, expect=expect)
        return [Stored(position, e.stream, e.version, now, digest, e.event)
                for position, e, digest in zip(ids, events, digests, strict=True)]

    def _insert(self, rows: list[Row], *, keys: Sequence[LeadKey], unique_keys: bool,
                expect: Sequence[tuple[str, int]]) -> Sequence[int]:
        return self.recorder.insert_rows(rows, keys=keys, unique_keys=unique_keys, expect=expect)

    def append_bulk(
        self, events: Sequence[NewEvent], *, keys: Sequence[tuple[str, str, str]] = (),
        unique_keys: bool = True, checked_at: int | None = None,
    ) -> None:
        """Append many events atomically, stored exactly as `append` stores them, under the
        same lock, without reading their positions back (an import needs none).

        `keys` are (kind, value, lead) rows for the key index. With `unique_keys` none of them
        may be indexed already (else DuplicateKeys, and nothing is written). `checked_at` is
        the log's last position as read before the caller looked these keys up itself: keys
        are only ever indexed together with events, so if no event was stored since, none was
        indexed since either, and they are not looked up again under the lock.
        """
        _, rows, _ = _encoded(events)
        with self._recording():
            self._insert_bulk(rows, keys, unique_keys=unique_keys, checked_at=checked_at)

    @contextmanager
    def _recording(self) -> Iterator[None]:
        """An append's failures as the ledger's: a lost race (a version or key taken, a busy
        store) is a Conflict, to be re-read and decided again; anything else, StoreUnavailable."""
        try:
            yield
        except Conflict:
            raise
        except IntegrityError as e:
            raise Conflict(str(e)) from None
        except PersistenceError as e:
            if self._is_busy(e):
                raise Conflict(str(e)) from None
            raise StoreUnavailable(f"the store could not record the events: {e}") from None

    def _insert_bulk(self, rows: list[Row], keys: Sequence[tuple[str, str, str]], *,
                     unique_keys: bool, checked_at: int | None) -> None:
        raise NotImplementedError

    def _is_busy(self, e: Exception) -> bool:
        return False

    def read_stream(self, stream: str, *, upto_position: int | None = None, after_version: int = 0) -> list[Stored]:
        """A stream's events in order (those up to a position, or after a version, if asked)."""
        sql = (
            f"SELECT {self._position_column}, originator_version, state FROM {self._events} "
            f"WHERE originator_id = {self.param}"
        )
        params: list[Any] = [stream]
        if after_version:
            sql += f" AND originator_version > {self.param}"
            params.append(after_version)
        if upto_position is not None:
            sql += f" AND {self._position_column} <= {self.param}"
            params.append(upto_position)
        sql += " ORDER BY originator_version"
        return [_stored(p, stream, v, bytes(s)) for p, v, s in self._rows(sql, params)]

    def read_streams(self, streams: Sequence[str], last: Sequence[str] = (),
                     after: Mapping[str, int] | None = None) -> dict[str, list[Stored]]:
        """Several streams in one round trip: the events of each of `streams` (only those
        after the version `after` names for it, if any), and the last event of each of
        `last`. Every stream named gets an entry (empty if it has no events)."""
        after = after or {}
        whole = [s for s in streams if not after.get(s)]
        since = [(s, after[s]) for s in streams if after.get(s)]
        found: dict[str, list[Stored]] = {s: [] for s in (*streams, *last)}
        if not (streams or last):
            return found
        params = [*whole, *(x for pair in since for x in pair), *last]
        rows = self._rows(self._streams_sql(len(whole), len(since), len(last)), params)
        rows.sort(key=_stream_order)  # here rather than in the query: the server's sort costs more
        for o, position, v, state in rows:
            found[o].append(_stored(position, o, v, bytes(state)))
        return found

    @functools.cache  # noqa: B019 (a handful of shapes per store)
    def _streams_sql(self, whole: int, since: int, last: int) -> str:
        """`read_streams`' query for `whole` streams, `since` (stream, version) pairs and `last`
        streams, taking its parameters in that order."""
        p = self.param
        columns = f"originator_id, {self._position_column}, originator_version, state FROM {self._events}"
        parts = [f"SELECT {columns} WHERE originator_id IN ({', '.join([p] * whole)})"] if whole else []
        parts += [f"SELECT {columns} WHERE originator_id = {p} AND originator_version > {p}"] * since
        parts += [f"SELECT * FROM (SELECT {columns} WHERE originator_id = {p} "
                  f"ORDER BY originator_version DESC LIMIT 1) AS last{i}" for i in range(last)]
        return " UNION ALL ".join(parts)

    def read_stream_rows(self, stream: str, topics: Sequence[str]) -> list[tuple[int, int, bytes]]:
        """(position, version, stored bytes) of a stream's events of the given types, in order.

        Undecoded, so a caller can decode only the few it needs (e.g. to bisect by time).
        """
        marks = ", ".join([self.param] * len(topics))
        sql = (
            f"SELECT {self._position_column}, originator_version, state FROM {self._events} "
            f"WHERE originator_id = {self.param} AND topic IN ({marks}) ORDER BY originator_version"
        )
        return [(p, v, bytes(s)) for p, v, s in self._rows(sql, [stream, *topics])]

    def read_last(self, stream: str) -> Stored | None:
        sql = (
            f"SELECT {self._position_column}, originator_version, state FROM {self._events} "
            f"WHERE originator_id = {self.param} ORDER BY originator_version DESC LIMIT 1"
        )
        rows = self._rows(sql, [stream])
        return _stored(rows[0][0], stream, rows[0][1], bytes(rows[0][2])) if rows else None

    def read_log(self, after: int = 0, limit: int = 1000, upto: int | None = None) -> list[Stored]:
        """Events in position order, after position `after`."""
        sql = (
            f"SELECT {self._position_column}, originator_id, originator_version, state "
            f"FROM {self._events} WHERE {self._position_column} > {self.param}"
        )
        params: list[Any] = [after]
        if upto is not None:
            sql += f" AND {self._position_column} <= {self.param}"
            params.append(upto)
        sql += f" ORDER BY {self._position_column} LIMIT {self.param}"
        params.append(limit)
        return [_stored(p, o, v, bytes(s)) for p, o, v, s in self._rows(sql, params)]

    def read_log_raw(self, after: int = 0, limit: int = 1000) -> list[tuple[int, str, int, str, bytes]]:
        """Rows as stored (position, stream, version, topic, state bytes), for verification."""
        sql = (
            f"SELECT {self._position_column}, originator_id, originator_version, topic, state "
            f"FROM {self._events} WHERE {self._position_column} > {self.param} "
            f"ORDER BY {self._position_column} LIMIT {self.param}"
        )
        return [(p, o, v, t, bytes(s)) for p, o, v, t, s in self._rows(sql, [after, limit])]

    def max_position(self) -> int:
        return self._rows(f"SELECT MAX({self._position_column}) FROM {self._events}", [])[0][0] or 0

    def existing_streams(self, streams: Sequence[str]) -> set[str]:
        """Those of these streams that have events."""
        found: set[str] = set()
        streams = list(streams)
        size = _key_chunk(self.param)
        for i in range(0, len(streams), size):
            chunk = streams[i:i + size]
            if self.param == "%s":  # PostgreSQL: one JSON text parameter, an array for the index scan
                where = "originator_id = ANY(ARRAY(SELECT json_array_elements_text(%s::json)))"
                params = [_json(chunk)]
            else:
                where, params = f"originator_id IN ({', '.join('?' * len(chunk))})", chunk
            found.update(r[0] for r in self._rows(
                f"SELECT DISTINCT originator_id FROM {self._events} WHERE {where}", params))
        return found

    def find_keys(self, keys: Sequence[tuple[str, str]]) -> list[LeadKey]:
        """Indexed leads sharing any of these (kind, value) keys."""
        if not keys:
            return []
        found: list[LeadKey] = []
        keys = list(keys)
        size = _key_chunk(self.param)
        for i in range(0, len(keys), size):
            sql, params = _keys_matching(self._keys, self.param, keys[i:i + size], "k.kind, k.value, k.lead")
            found.extend(LeadKey(k, v, lead) for k, v, lead in self._rows(sql, params))
        return found

    # -- read models --------------------------------------------------------------------

    def pipeline(self, cur: Any) -> contextlib.AbstractContextManager[Any]:
        """Send a transaction's statements without waiting for each answer where the backend
        can (PostgreSQL's pipeline mode: a read still waits for its rows); else nothing."""
        return contextlib.nullcontext()

    def table(self, name: str) -> str:
        """The qualified name of a read-model table."""
        raise NotImplementedError

    @contextmanager
    def reading(self) -> Iterator[Any]:
        raise NotImplementedError
        yield

    def _rows(self, sql: str, params: Sequence[Any]) -> list[tuple]:
        """The rows of one query (one statement sees one snapshot: no transaction needed)."""
        with self.reading() as cur:
            cur.execute(sql, params)
            return cur.fetchall()

    @contextmanager
    def writing(self) -> Iterator[Any]:
        raise NotImplementedError
        yield

    def copy_grants(self, cur: Any, source: str, target: str) -> None:
        """Give read-model table `target` the privileges granted on `source` (a rebuild's swap)."""

    def rename_index(self, cur: Any, old: str, new: str, table: str, columns: str) -> None:
        """Rename index `old` of read-model `table` to `new` (SQLite: re-create it)."""
        cur.execute(f"DROP INDEX IF EXISTS {old}")
        cur.execute(f"CREATE INDEX IF NOT EXISTS {new} ON {table} ({columns})")

    # -- following ----------------------------------------------------------------------

    @contextmanager
    def subscribe(self, after: int, *, stop: threading.Event | None = None,
                  poll: float = 0.5) -> Iterator[Iterator[int]]:
        """Positions of events stored after `after`, as they arrive, until `stop` is set.

        Here by polling every `poll` seconds (eventsourcing has no SQLite subscription);
        PostgreSQL is told by LISTEN/NOTIFY. A position stands for it and everything before.
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


# --- SQLite ---------------------------------------------------------------------------------

def _guard_versions(cur: Any, p: str, table: str, expect: Sequence[tuple[str, int]]) -> None:
    """Inside the append transaction: streams read but not written must not have moved on."""
    for stream, version in expect:
        cur.execute(f"SELECT MAX(originator_version) FROM {table} WHERE originator_id = {p}", [stream])
        if (cur.fetchone()[0] or 0) != version:
            raise Conflict(f"{stream} moved on from version {version}")


def _key_chunk(p: str) -> int:
    """How many keys (or streams) one lookup names: PostgreSQL takes them as one JSON text."""
    return 50_000 if p == "%s" else 300


def _keys_matching(table: str, p: str, pairs: Sequence[tuple[str, str]], columns: str) -> tuple[str, list]:
    """A query for the indexed keys equal to any of these (kind, value) pairs.

    PostgreSQL gets them as one JSON text parameter (an array of pairs) joined against the
    index: a long OR of pairs takes it seconds to plan and scan, and dumping long arrays
    item by item is slow. SQLite gets a short OR, which it answers from the index.
    """
    if p == "%s":
        return (
            f"SELECT {columns} FROM {table} k JOIN (SELECT q->>0 AS kind, q->>1 AS value "
            "FROM json_array_elements(%s::json) AS q) AS q ON k.kind = q.kind AND k.value = q.value",
            [_json(pairs)],
        )
    where = " OR ".join(f"(k.kind = {p} AND k.value = {p})" for _ in pairs)
    return f"SELECT {columns} FROM {table} k WHERE {where}", [x for pair in pairs for x in pair]


def _json(rows: Sequence[Any]) -> str:
    return msgspec.json.encode(rows).decode()


def _check_keys_free(cur: Any, p: str, table: str, pairs: Sequence[tuple[str, str]]) -> None:
    """Inside the append transaction: raise DuplicateKeys if any of these keys is indexed."""
    size = _key_chunk(p)
    for i in range(0, len(pairs), size):
        sql, params = _keys_matching(table, p, pairs[i:i + size], "k.lead")
        cur.execute(sql + " LIMIT 1", params)
        if cur.fetchone():
            raise DuplicateKeys("a lead key was indexed by another writer")


def _guard_bulk_keys(cur: Any, p: str, events: str, position: str, table: str,
                     keys: Sequence[tuple[str, str, str]], checked_at: int | None) -> None:
    """Inside a bulk append: refuse keys already indexed, looking them up only if an event was
    stored after `checked_at` (keys are indexed only together with events)."""
    if not keys:
        return
    cur.execute(f"SELECT MAX({position}) FROM {events}")
    if checked_at is None or (cur.fetchone()[0] or 0) > checked_at:
        _check_keys_free(cur, p, table, [(kind, value) for kind, value, _ in keys])


def _guard_keys(cur: Any, p: str, table: str, keys: Sequence[LeadKey], unique: bool) -> None:
    """Inside the append transaction: refuse keys already taken, then index the new ones."""
    if not keys:
        return
    if unique:
        _check_keys_free(cur, p, table, [(k.kind, k.value) for k in keys])
    if p == "%s":  # PostgreSQL: the whole batch in one statement
        cur.execute(
            f"INSERT INTO {table} (kind, value, lead) "
            "SELECT q->>0, q->>1, q->>2 FROM json_array_elements(%s::json) AS q",
            [_json([(k.kind, k.value, k.lead) for k in keys])],
        )
        return
    cur.executemany(
        f"INSERT INTO {table} (kind, value, lead) VALUES ({p}, {p}, {p})",
        [(k.kind, k.value, k.lead) for k in keys],
    )


SQLITE_ROWS = 200  # events per INSERT statement (4 parameters each)


class SQLiteStore(Store):
    kind = "sqlite"
    param = "?"
    _position_column = "rowid"
    _events = EVENTS_TABLE
    _keys = KEYS_TABLE

    def __init__(self, url: str, path: str) -> None:
        self.url = url
        self.path = path
        self._datastore: SQLiteDatastore | None = None
        self._recorder: SQLiteApplicationRecorder | None = None
        self._checked = False  # found initialised once: not checked again (as on PostgreSQL)
        self._local = threading.local()  # this thread's connections: "read" and "append"
        self._connections: list[sqlite3.Connection] = []

    @property
    def datastore(self) -> SQLiteDatastore:
        if self._datastore is None:
            self._datastore = SQLiteDatastore(
                self.path, lock_timeout=60, pool_size=2, max_overflow=4, originator_id_type="text"
            )
        return self._datastore

    @property
    def recorder(self) -> SQLiteApplicationRecorder:
        """The library's recorder: it creates the events table."""
        if self._recorder is None:
            self._recorder = SQLiteApplicationRecorder(self.datastore, events_table_name=EVENTS_TABLE)
        return self._recorder

    def init(self) -> None:
        folder = os.path.dirname(os.path.abspath(self.path))
        if not os.path.isdir(folder):
            raise StoreUnavailable(f"cannot create the store: no folder {folder}")
        try:
            self.recorder.create_table()
            with self.writing() as cur:
                cur.execute(
                    f"CREATE TABLE IF NOT EXISTS {KEYS_TABLE} "
                    "(kind TEXT NOT NULL, value TEXT NOT NULL, lead TEXT NOT NULL)"
                )
                cur.execute(
                    f"CREATE INDEX IF NOT EXISTS {KEYS_TABLE}_idx ON {KEYS_TABLE} (kind, value)"
                )
        except PersistenceError as e:
            raise StoreUnavailable(f"cannot create the store at {self.path}: {e}") from None

    def ensure_ready(self) -> None:
        if self._checked:
            return
        if not os.path.exists(self.path):
            raise StoreUnavailable(
                f"no store at {self.path}; run `leadledger init --admin ID --name NAME` first"
            )
        try:
            con = sqlite3.connect(Path(self.path).absolute().as_uri() + "?mode=ro", uri=True, timeout=5)
            try:
                row = con.execute(
                    "SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (EVENTS_TABLE,)
                ).fetchone()
            finally:
                con.close()
        except sqlite3.Error as e:
            raise StoreUnavailable(f"cannot open the store at {self.path}: {e}") from None
        if not row:
            raise StoreUnavailable(
                f"the store at {self.path} is not initialised; run `leadledger init` first"
            )
        self._checked = True

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
        if con is None:
            con = sqlite3.connect(self.path, isolation_level=None, timeout=60, check_same_thread=False)
            setattr(self._local, role, con)
            self._connections.append(con)
        return con

    @contextmanager
    def _appending(self) -> Iterator[sqlite3.Cursor]:
        """One transaction on this thread's append connection that takes the write lock at
        once (BEGIN IMMEDIATE), so the checks inside it (streams read but not written, lead
        keys) see the latest commit; sqlite3's errors come out as the library's."""
        try:
            con = self._connection("append")
            cur = con.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                yield cur
                cur.execute("COMMIT")
            except BaseException:
                if con.in_transaction:
                    cur.execute("ROLLBACK")
                raise
        except sqlite3.IntegrityError as e:
            raise IntegrityError(str(e)) from e
        except sqlite3.Error as e:
            raise OperationalError(str(e)) from e

    def _insert(self, rows: list[Row], *, keys: Sequence[LeadKey], unique_keys: bool,
                expect: Sequence[tuple[str, int]]) -> Sequence[int]:
        ids: list[int] = []
        with self._appending() as cur:
            _guard_versions(cur, "?", EVENTS_TABLE, expect)
            _guard_keys(cur, "?", KEYS_TABLE, keys, unique_keys)
            for i in range(0, len(rows), SQLITE_ROWS):  # rows take rising rowids in order
                chunk = rows[i:i + SQLITE_ROWS]
                cur.execute(f"INSERT INTO {EVENTS_TABLE} VALUES {', '.join(['(?, ?, ?, ?)'] * len(chunk))} "
                            "RETURNING rowid", [x for row in chunk for x in row])
                ids.extend(sorted(row[0] for row in cur.fetchall()))
        return ids

    def _insert_bulk(self, rows: list[Row], keys: Sequence[tuple[str, str, str]], *,
                     unique_keys: bool, checked_at: int | None) -> None:
        """`append_bulk` in one BEGIN IMMEDIATE transaction, like `_insert`, with executemany."""
        with self._appending() as cur:
            if unique_keys:
                _guard_bulk_keys(cur, "?", EVENTS_TABLE, "rowid", KEYS_TABLE, keys, checked_at)
            cur.executemany(f"INSERT INTO {EVENTS_TABLE} VALUES (?, ?, ?, ?)", rows)
            cur.executemany(f"INSERT INTO {KEYS_TABLE} (kind, value, lead) VALUES (?, ?, ?)", keys)

    def _rows(self, sql: str, params: Sequence[Any]) -> list[tuple]:
        """On the connection appends use: the pages they just wrote are still in its cache,
        where another connection would have to read them again after each commit."""
        try:
            return self._connection("append").execute(sql, params).fetchall()
        except sqlite3.Error as e:
            raise OperationalError(str(e)) from e

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
            raise OperationalError(str(e)) from e

    @contextmanager
    def writing(self) -> Iterator[Any]:
        with self.datastore.transaction(commit=True) as cur:
            yield cur.sqlite_cursor

    def close(self) -> None:
        for con in self._connections:
            con.close()
        self._connections.clear()
        self._local = threading.local()
        if self._datastore is not None:
            self._datastore.close()
            self._datastore = None
            self._recorder = None


# --- PostgreSQL -----------------------------------------------------------------------------

APPEND_ONLY = "leadledger_append_only"
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
                 cursor: Callable[[], contextlib.AbstractContextManager[psycopg.Cursor]], **kwargs: Any) -> None:
        super().__init__(datastore, **kwargs)
        self.cursor = cursor  # the cursor appends go through (`PostgresStore.cursor`)

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
                    expect: Sequence[tuple[str, int]]) -> Sequence[int]:
        """`Store.append`: insert event rows, return their positions."""
        schema = self.datastore.schema
        guarded = bool(expect or keys)
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
                    _guard_versions(cur, "%s", f'"{schema}".{self.events_table_name}', expect)
                    _guard_keys(cur, "%s", f'"{schema}".{self.keys_table}', keys, unique_keys)
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
                    unique_keys: bool, checked_at: int | None) -> None:
        """`Store.append_bulk`: the lock and NOTIFY of `insert_rows`, then, in the same
        transaction, COPY of the event rows and the key rows; no positions are read back."""
        schema = self.datastore.schema
        events = f'"{schema}".{self.events_table_name}'
        with self.cursor() as cur, cur.connection.transaction():
            cur.execute("SELECT pg_advisory_xact_lock(%s), pg_notify(%s, '')",
                        [append_lock_key(schema), self.channel_name])
            if unique_keys:  # the position is read in a snapshot taken under the lock
                _guard_bulk_keys(cur, "%s", events, "notification_id", f'"{schema}".{self.keys_table}',
                                 keys, checked_at)
            with cur.copy(f"COPY {events} (originator_id, originator_version, topic, state) "
                          "FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(["text", "int8", "text", "bytea"])
                for row in rows:
                    copy.write_row(row)
            if keys:
                _copy_keys(cur, f'"{schema}".{self.keys_table}', keys)

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


class PostgresStore(Store):
    kind = "postgresql"
    _position_column = "notification_id"

    def __init__(self, url: str, conninfo: str, schema: str) -> None:
        self.url = url
        self.conninfo = conninfo
        self.schema = schema
        self.read_schema = f"{schema}_read"
        self._events = f'"{schema}".{EVENTS_TABLE}'
        self._keys = f'"{schema}".{KEYS_TABLE}'
        self._datastore: PostgresDatastore | None = None
        self._recorder: LedgerPostgresRecorder | None = None
        self._checked = False
        self._local = threading.local()  # this thread's own connection
        self._connections: list[psycopg.Connection] = []

    def _connect(self, timeout: int = 3) -> psycopg.Connection:
        try:
            return psycopg.connect(self.conninfo, connect_timeout=timeout, autocommit=True)
        except psycopg.Error as e:
            msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise StoreUnavailable(f"cannot reach PostgreSQL: {msg}") from None

    @property
    def datastore(self) -> PostgresDatastore:
        if self._datastore is None:
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
            self._recorder = LedgerPostgresRecorder(self.datastore, events_table_name=EVENTS_TABLE,
                                                    cursor=self.cursor)
        return self._recorder

    def init(self) -> None:
        with self._connect() as con:
            con.execute(SQL("CREATE SCHEMA IF NOT EXISTS {}").format(Identifier(self.schema)))
            con.execute(SQL("CREATE SCHEMA IF NOT EXISTS {}").format(Identifier(self.read_schema)))
        try:
            self.recorder.create_table()
            with self.writing() as cur:
                cur.execute(
                    f"CREATE TABLE IF NOT EXISTS {self._keys} "
                    "(kind text NOT NULL, value text NOT NULL, lead text NOT NULL)"
                )
                cur.execute(
                    f"CREATE INDEX IF NOT EXISTS {KEYS_TABLE}_idx ON {self._keys} (kind, value)"
                )
                for statement in self.append_only_sql():
                    cur.execute(statement)
        except PersistenceError as e:
            raise StoreUnavailable(f"cannot create the store: {e}") from None
        self._checked = True

    def append_only_sql(self) -> list[Any]:
        """DDL (idempotent) that makes the events table append-only in the database itself.

        A statement trigger refuses every UPDATE, DELETE and TRUNCATE of stored events,
        whoever runs it; only the table's owner can lift it (ALTER TABLE ... DISABLE
        TRIGGER), or a superuser. PUBLIC gets no right to change the table; roles are
        granted INSERT and SELECT only (see docs/postgres-roles.md).
        """
        schema = Identifier(self.schema)
        names = {"schema": schema, "table": Identifier(EVENTS_TABLE),
                 "function": Identifier(APPEND_ONLY), "trigger": Identifier(APPEND_ONLY)}
        return [
            SQL(
                "CREATE OR REPLACE FUNCTION {schema}.{function}() RETURNS trigger LANGUAGE plpgsql AS $$ "
                "BEGIN RAISE EXCEPTION 'leadledger: % of stored events is refused: the event store is "
                "append-only', TG_OP USING ERRCODE = 'insufficient_privilege'; END $$"
            ).format(**names),
            SQL(
                "CREATE OR REPLACE TRIGGER {trigger} BEFORE UPDATE OR DELETE OR TRUNCATE "
                "ON {schema}.{table} FOR EACH STATEMENT EXECUTE FUNCTION {schema}.{function}()"
            ).format(**names),
            SQL("REVOKE UPDATE, DELETE, TRUNCATE ON {schema}.{table} FROM PUBLIC").format(**names),
        ]

    def role_grants(self, app: str, reader: str | None = None) -> list[Any]:
        """The grants docs/postgres-roles.md recommends, run by the owner after `init`.

        `app` may append events and keep the read models current; `reader` may only read
        the read models. Tables the owner creates later in the read schema (a rebuild) get
        the same grants by default.
        """
        names = {"schema": Identifier(self.schema), "read": Identifier(self.read_schema),
                 "events": Identifier(EVENTS_TABLE), "keys": Identifier(KEYS_TABLE),
                 "seq": Identifier(f"{EVENTS_TABLE}_notification_id_seq"), "app": Identifier(app)}
        statements = [
            "GRANT USAGE ON SCHEMA {schema} TO {app}",
            "GRANT SELECT, INSERT ON {schema}.{events}, {schema}.{keys} TO {app}",
            "GRANT USAGE ON SEQUENCE {schema}.{seq} TO {app}",
            "GRANT USAGE ON SCHEMA {read} TO {app}",
            "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {read} TO {app}",
            "ALTER DEFAULT PRIVILEGES IN SCHEMA {read} GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {app}",
        ]
        if reader:
            names["reader"] = Identifier(reader)
            statements += [
                "GRANT USAGE ON SCHEMA {read} TO {reader}",
                "GRANT SELECT ON ALL TABLES IN SCHEMA {read} TO {reader}",
                "ALTER DEFAULT PRIVILEGES IN SCHEMA {read} GRANT SELECT ON TABLES TO {reader}",
            ]
        return [SQL(s).format(**names) for s in statements]

    def ensure_ready(self) -> None:
        if self._checked:
            return
        with self._connect() as con:
            row = con.execute("SELECT to_regclass(%s)", [self._events]).fetchone()
        if not row or row[0] is None:
            raise StoreUnavailable("the PostgreSQL store is not initialised; run `leadledger init` first")
        self._checked = True

    def _is_busy(self, e: Exception) -> bool:
        return "deadlock" in str(e).lower()

    def _insert_bulk(self, rows: list[Row], keys: Sequence[tuple[str, str, str]], *,
                     unique_keys: bool, checked_at: int | None) -> None:
        self.recorder.insert_bulk(rows, keys, unique_keys=unique_keys, checked_at=checked_at)

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
            raise next(ours for theirs, ours in _ERRORS if isinstance(e, theirs))(str(e)) from e

    def _rows(self, sql: str, params: Sequence[Any]) -> list[tuple]:
        """A read is tried once more on a new connection when the kept one was found broken
        (the server restarted, say): reading twice is harmless."""
        try:
            with self.cursor() as cur:
                return cur.execute(sql, params, prepare=True).fetchall()
        except OperationalError:
            if not self._local.con.broken:
                raise
        with self.cursor() as cur:
            return cur.execute(sql, params, prepare=True).fetchall()

    def pipeline(self, cur: Any) -> contextlib.AbstractContextManager[Any]:
        return cur.connection.pipeline()

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

    def close(self) -> None:
        for con in self._connections:
            con.close()
        self._connections.clear()
        self._local = threading.local()
        if self._datastore is not None:
            self._datastore.close()
            self._datastore = None
            self._recorder = None


def open_store(url: str | None) -> Store:
    """Parse a store URL; nothing is connected until the store is used."""
    url = url or os.environ.get("LEADLEDGER_STORE") or DEFAULT_STORE
    if url.startswith(("postgresql://", "postgres://")):
        parts = urlsplit(url)
        query = parse_qs(parts.query)
        schema = (query.pop("schema", ["leadledger"]) or ["leadledger"])[0]
        if not schema.replace("_", "").isalnum():
            raise InvalidInput(f"invalid schema name in store URL: {schema!r}")
        conninfo = urlunsplit(parts._replace(query=urlencode(query, doseq=True)))
        return PostgresStore(url, conninfo, schema)
    if url.startswith("sqlite:///"):
        path = unquote(url[len("sqlite:///"):].split("?", 1)[0])  # sqlite:////abs, sqlite:///rel
        if not path:
            raise InvalidInput(f"no file named in store URL {url!r}")
        return SQLiteStore(url, path)
    if "://" in url:
        raise InvalidInput(f"unsupported store URL {url!r}: use sqlite:///FILE or postgresql://...")
    return SQLiteStore(f"sqlite:///{url}", url)
