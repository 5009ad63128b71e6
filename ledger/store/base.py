"""The store's interface and what every backend shares: the reads (SQL written with the
backend's placeholder, position column and table names) and how an append's failures are
reported. A backend (`sqlite.py`, `postgres.py`)
overrides what differs; nothing here asks which one it is.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, NamedTuple

import ledger.store.failures as failures
from ledger import codec
from ledger.errors import StoreUnavailable
from ledger.i18n import _
from ledger.store.checks import AppendChecks
from ledger.store.merkle import leaves_of
from ledger.store.personal import PersonalData
from ledger.store.records import Conflict, LeadKey, NewEvent, Row, Stored, encoded, stored, stream_order
from ledger.store.tree import StoredTree

Also = Callable[[Any], None]  # more work for an append's transaction, given its cursor


class Bulk(NamedTuple):
    """A bulk append made ready (`Store.prepare_bulk`)."""

    rows: list[Row]
    keys: list[tuple[str, str, str]]  # (kind, keyed hash, lead)
    leaves: list[bytes]
    key_rows: list[tuple[str, str]]  # the new leads' data keys


class Store:
    """Common interface; `open_store` returns one of the backends' subclasses."""

    kind: str
    url: str
    param = "%s"  # the placeholder
    _position_column: str
    _events: str  # the events table, named as queries need it
    checks: AppendChecks  # what an append checks under its lock; the key-index SQL
    personal: PersonalData  # data keys and the duplicate check's secret (personal.py)
    tree: StoredTree  # the log's Merkle tree (tree.py)

    def init(self) -> None:
        raise NotImplementedError

    def ensure_ready(self) -> None:
        raise NotImplementedError

    # each backend's own connections, per thread, and the library's datastore and recorder
    _connections: list[Any]
    _local: threading.local
    _datastore: Any
    _recorder: Any

    def close(self) -> None:
        """Close this process's own connections (each backend keeps them in `_connections`,
        per thread in `_local`) and the library's datastore."""
        for con in self._connections:
            con.close()
        self._connections.clear()
        self._local = threading.local()
        if self._datastore is not None:
            self._datastore.close()
            self._datastore = None
            self._recorder = None

    def close_thread(self) -> None:
        """Close this thread's own connections: a worker's, before it ends (else open until `close`)."""
        mine = vars(self._local)  # this thread's own attributes
        for con in [c for c in self._connections if any(c is v for v in mine.values())]:
            self._connections.remove(con)
            con.close()
        mine.clear()

    # -- events -------------------------------------------------------------------------

    def append(
        self, events: Sequence[NewEvent], *, keys: Sequence[LeadKey] = (), unique_keys: bool = True,
        expect: Sequence[tuple[str, int]] = (), also: Also | None = None,
    ) -> list[Stored]:
        """Append events atomically; return them as stored, with their positions.

        `expect` names (stream, version) pairs the decision was read from that get no new
        event here (a refusal decided from a rep's desk): they must still be at that version.
        Raises Conflict when a stream moved on since it was read (or DuplicateKeys when
        `unique_keys` and a key is already indexed); nothing is written then. Personal fields
        are sealed and keys hashed here, on the way in (`personal`); `also(cursor)` runs in the
        same transaction.
        """
        codec.check_types(e.event for e in events)  # before sealing hides a personal field's type
        sealed, key_rows = self.personal.seal(events)
        now, rows, digests = encoded(sealed)
        also = self._also(key_rows, also)
        with self._recording():
            ids = self._insert(rows, keys=self.personal.hashed(keys), unique_keys=unique_keys, expect=expect,
                               leaves=leaves_of(digests), also=also)
        return [Stored(position, e.stream, e.version, now, digest, e.event)
                for position, e, digest in zip(ids, events, digests, strict=True)]

    def _also(self, key_rows: list[tuple[str, str]], also: Also | None) -> Also | None:
        """What an append does in its transaction besides the events and the key index: the
        new leads' data keys (personal.py), and the caller's `also` (an erasure)."""
        if not key_rows and also is None:
            return None

        def run(cur: Any) -> None:
            self.personal.insert_keys(cur, key_rows)
            if also is not None:
                also(cur)
        return run

    def _insert(self, rows: list[Row], *, keys: Sequence[LeadKey], unique_keys: bool,
                expect: Sequence[tuple[str, int]], leaves: list[bytes], also: Also | None = None) -> Sequence[int]:
        raise NotImplementedError

    def prepare_bulk(self, events: Sequence[NewEvent], keys: Sequence[tuple[str, str, str]] = ()) -> Bulk:
        """`append_bulk`'s rows made ready, sealed and hashed (an import's next batch, meanwhile)."""
        sealed, key_rows = self.personal.seal(events)
        _, rows, digests = encoded(sealed)
        return Bulk(rows, self.personal.hashed_rows(keys), leaves_of(digests), key_rows)

    def append_bulk(self, events: Sequence[NewEvent], *, keys: Sequence[tuple[str, str, str]] = (),
                    unique_keys: bool = True, checked_at: int | None = None, prepared: Bulk | None = None,
                    ours: tuple[int, int] | None = None) -> int:
        """Append many events atomically, stored as `append` stores them, under the same lock,
        reading no positions back; the last position taken. `keys`: (kind, value, lead) rows
        for the key index; with `unique_keys` none may be indexed already (else DuplicateKeys,
        nothing written). `checked_at`: the log's last position read before the caller looked
        the keys up (keys are indexed only with events: if no event was stored since, or only
        `ours` (after, last), a bulk append whose keys the caller counted, they are not looked
        up again under the lock). `prepared`: `prepare_bulk(events, keys)`, if made already."""
        bulk = prepared or self.prepare_bulk(events, keys)
        with self._recording():
            return self._insert_bulk(bulk.rows, bulk.keys, unique_keys=unique_keys, checked_at=checked_at,
                                     leaves=bulk.leaves, also=self._also(bulk.key_rows, None), ours=ours)

    @contextmanager
    def _recording(self) -> Iterator[None]:
        """An append's failures as the ledger's: a lost race (a version or key taken, a busy
        store) is a Conflict, to be re-read and decided again; anything else, StoreUnavailable."""
        try:
            yield
        except Conflict:
            raise
        except failures.IntegrityError as e:
            raise Conflict(str(e)) from None
        except failures.PersistenceError as e:
            if self._is_busy(e):
                raise Conflict(str(e)) from None
            raise StoreUnavailable(_("the store could not record the events: {reason}", reason=e)) from None

    def _insert_bulk(self, rows: list[Row], keys: Sequence[tuple[str, str, str]], *,
                     unique_keys: bool, checked_at: int | None, leaves: list[bytes], also: Also | None = None,
                     ours: tuple[int, int] | None = None) -> int:
        raise NotImplementedError

    def truncate_log_file(self) -> None:
        """After an erasure: leave no copy of deleted rows in a log beside the database."""

    def _is_busy(self, e: Exception) -> bool:
        """Whether an append's failure was a busy store or a deadlock: a lost race."""
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
        return [stored(p, stream, v, bytes(s)) for p, v, s in self.query(sql, params, binary=True)]

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
        rows = self.query(self._streams_sql(len(whole), len(since), len(last)), params, binary=True)
        rows.sort(key=stream_order)  # here rather than in the query: the server's sort costs more
        for o, position, v, state in rows:
            found[o].append(stored(position, o, v, bytes(state)))
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
        return [(p, v, bytes(s)) for p, v, s in self.query(sql, [stream, *topics], binary=True)]

    def read_last(self, stream: str) -> Stored | None:
        sql = (
            f"SELECT {self._position_column}, originator_version, state FROM {self._events} "
            f"WHERE originator_id = {self.param} ORDER BY originator_version DESC LIMIT 1"
        )
        rows = self.query(sql, [stream], binary=True)
        return stored(rows[0][0], stream, rows[0][1], bytes(rows[0][2])) if rows else None

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
        return [stored(p, o, v, bytes(s)) for p, o, v, s in self.query(sql, params, binary=True)]

    def read_log_raw(self, after: int = 0, limit: int = 1000) -> list[tuple[int, str, int, str, bytes]]:
        """Rows as stored (position, stream, version, topic, state bytes), for verification."""
        sql = (
            f"SELECT {self._position_column}, originator_id, originator_version, topic, state "
            f"FROM {self._events} WHERE {self._position_column} > {self.param} "
            f"ORDER BY {self._position_column} LIMIT {self.param}"
        )
        return _as_stored(self.query(sql, [after, limit], binary=True))

    def damaged(self) -> bool:
        """Whether a store that failed to open is there but is not an intact ledger (a
        truncated or corrupted file): `verify` reports it, not ok, rather than as unavailable."""
        return False

    def max_position(self) -> int:
        return self.query(f"SELECT MAX({self._position_column}) FROM {self._events}", [])[0][0] or 0

    def existing_streams(self, streams: Sequence[str]) -> set[str]:
        """Those of these streams that have events."""
        found: set[str] = set()
        streams = list(streams)
        size = self.checks.key_chunk
        for i in range(0, len(streams), size):
            where, params = self.checks.streams_matching(streams[i:i + size])
            found.update(r[0] for r in self.query(
                f"SELECT DISTINCT originator_id FROM {self._events} WHERE {where}", params))
        return found

    def find_keys(self, keys: Sequence[tuple[str, str]]) -> list[LeadKey]:
        """Indexed leads sharing any of these (kind, value) keys."""
        if not keys:
            return []
        found: list[LeadKey] = []
        wanted = self.personal.hashed_pairs(keys)  # the index holds keyed hashes, never values
        keys = sorted(wanted)  # in index order: a long look-up visits each page of the index once
        size = self.checks.key_chunk
        for i in range(0, len(keys), size):
            sql, params = self.checks.keys_matching(keys[i:i + size], "k.kind, k.value, k.lead")
            found.extend(LeadKey(*wanted[(k, v)], lead) for k, v, lead in self.query(sql, params))
        return found

    # -- read models --------------------------------------------------------------------

    db_type: type  # the `Db` of this backend
    # whether a reader of many batches (read models, verify) should read the next in a thread while
    # it works on one: it pays where a server reads meanwhile (SQLite reads in this process)
    reads_ahead = False
    renames_indexes = False  # whether a rebuild's indexes are renamed (else re-created) at its swap

    def table(self, name: str) -> str:
        """The qualified name of a read-model table."""
        raise NotImplementedError

    @contextmanager
    def reading(self) -> Iterator[Any]:
        raise NotImplementedError
        yield

    def query(self, sql: str, params: Sequence[Any], *, binary: bool = False) -> list[tuple]:
        """The rows of one query (one statement, one snapshot) on this thread's own connection;
        `binary`: in the database's binary form where it has one (PostgreSQL's: a stored
        record comes as its bytes, where the text form sends it as hex, twice the size)."""
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
        """Index `old` of read-model `table` (on `columns`) under the name `new` (a rebuild's swap)."""
        raise NotImplementedError

    # -- following ----------------------------------------------------------------------

    @contextmanager
    def subscribe(self, after: int, *, stop: threading.Event | None = None,
                  poll: float = 0.5) -> Iterator[Iterator[int]]:
        """Positions of events stored after `after`, as they arrive, until `stop` is set (a
        position stands for it and everything before)."""
        raise NotImplementedError
        yield


def _as_stored(rows: list[tuple]) -> list[tuple[int, str, int, str, bytes]]:
    """Rows as read (their state bytes already), unless a damaged store holds NULL or text
    where a record's bytes belong: `verify` then finds that record undecodable."""
    if all(type(row[4]) is bytes for row in rows):
        return rows
    return [(p, o, v, t, b"" if s is None else s.encode() if isinstance(s, str) else bytes(s))
            for p, o, v, t, s in rows]


def log_batches(store: Store, after: int = 0, limit: int = 5000) -> Iterator[list[tuple[int, str, int, str, bytes]]]:
    """`store.read_log_raw`, batch after batch to the log's end. A backend that `reads_ahead`
    (its reads wait on a server) reads the next batch in a thread of its own while the caller
    works on this one; that thread's connection is closed when the batches end."""
    if not store.reads_ahead:
        while rows := store.read_log_raw(after=after, limit=limit):
            yield rows
            after = rows[-1][0]
        return
    with ThreadPoolExecutor(1, thread_name_prefix="log-read-ahead") as reader:
        try:
            ahead = reader.submit(store.read_log_raw, after, limit)
            while rows := ahead.result():
                ahead = reader.submit(store.read_log_raw, rows[-1][0], limit)
                yield rows
        finally:
            reader.submit(store.close_thread)
