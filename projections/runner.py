"""Keeps the read models current: each event applied exactly once, in position order.

Every read model is a set of tables in the store's database, beside a tracking table that
holds the position each set of tables has reached. A batch of events is applied to every
model and the tracking position advanced in one transaction, and that transaction starts by
moving the tracking row on from the position it read the batch after: a second runner that
read the same batch waits on that row, finds it moved, rolls back and goes on from the new
position. So no event is applied twice, and (the store handing out positions in commit
order) none is skipped.

`rebuild` fills fresh `*__rebuild` tables from position 0, with a tracking row of their
own (and only the indexes applying events needs: the others are built at the end, at once),
and swaps them in at the end in one transaction, so readers never see a half-built model.
Killed at any moment, it leaves the live tables as they were and its own progress
committed; `finish_rebuild` (which `leadledger project` calls) goes on from there.

Locks are always taken in the same order (the live tracking row, the rebuild tracking row,
then tables), so runners, rebuilds and swaps never deadlock each other.
"""

from __future__ import annotations

import contextlib
import gc
import threading
import typing
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from eventsourcing.persistence import PersistenceError

from ledger import codec
from ledger.errors import StoreUnavailable
from ledger.events import AnyEvent
from ledger.store import Conflict, Store
from projections.batch import CHUNK, Batch, Table

TRACKING = "leadledger_tracking"
NAME = "read_models"
REBUILD = "__rebuild"
EVENT_TYPES: tuple[type, ...] = typing.get_args(AnyEvent)
FIRST_BATCH = 2500  # events at most in the first batch of a run
COPY_ROWS = 100  # PostgreSQL: rows from which a COPY beats an INSERT (two round trips to one)


class Db:
    """A transaction on the read models: `%s` placeholders, `{table}` names; and the bulk
    reads and writes a batch of events makes, in the backend's fastest form."""

    def __init__(self, cur: Any, store: Store, names: dict[str, str]) -> None:
        self.cur = cur
        self.kind = store.kind
        self.param = store.param
        self.pipeline = store.pipeline
        self.names = names
        self._sql: dict[str, str] = {}

    def sql(self, text: str) -> str:
        found = self._sql.get(text)
        if found is None:
            found = text.format(**self.names)
            found = self._sql[text] = found if self.param == "%s" else found.replace("%s", self.param)
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
        head = f"SELECT {', '.join(columns)} FROM {table} WHERE "
        tail = f" AND {condition}" if condition else ""
        if self.kind == "postgresql":
            return self.cur.execute(f"{head}{column} = ANY(%b){tail}", [values]).fetchall()
        found = []
        for i in range(0, len(values), CHUNK):
            chunk = values[i:i + CHUNK]
            found += self.cur.execute(
                f"{head}{column} IN ({', '.join('?' * len(chunk))}){tail}", chunk).fetchall()
        return found

    def write(self, changes: list[tuple[str, Sequence[str], Sequence[str], list[Any], list[tuple]]]) -> None:
        """Change tables: for each (table, key columns, columns, keys, rows), delete the rows
        of those keys, then insert those rows. On PostgreSQL, small changes are sent all at
        once (pipelined), and large inserts are COPYs (which a pipeline cannot hold)."""
        small = all(len(rows) < COPY_ROWS for *_, rows in changes)
        with self.pipeline(self.cur) if small else contextlib.nullcontext():
            for table, key, columns, gone, rows in changes:
                self.delete_keys(table, key, gone)
                self.insert_rows(table, columns, rows)

    def delete_keys(self, table: str, key: Sequence[str], keys: list[Any]) -> None:
        """Delete the rows of these keys (tuples when the key has more than one column)."""
        if not keys:
            return
        if self.kind == "postgresql" and len(key) == 1:
            self.cur.execute(f"DELETE FROM {table} WHERE {key[0]} = ANY(%b)", [keys])
            return
        where = " AND ".join(f"{c} = {self.param}" for c in key)
        self.cur.executemany(f"DELETE FROM {table} WHERE {where}",
                             [[k] for k in keys] if len(key) == 1 else keys)

    def insert_rows(self, table: str, columns: Sequence[str], rows: list[tuple]) -> None:
        if not rows:
            return
        names = ", ".join(columns)
        if self.kind == "postgresql" and len(rows) >= COPY_ROWS:
            with self.cur.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            return
        self.cur.executemany(
            f"INSERT INTO {table} ({names}) VALUES ({', '.join([self.param] * len(columns))})", rows)


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """No cyclic garbage collection meanwhile. A batch of events applied to the read models,
    or of leads imported, makes many small objects that live until it commits and form no
    cycles; collecting them costs a tenth to a fifth of the time."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class ReadModel:
    """One read model: its tables and how events change them.

    `tables` maps each table's name to its `Table`; `indexes` are "table:columns" strings,
    and `lookups` those of them the model's own reads need (a rebuild builds the others once
    it has caught up).
    Handlers are `on_<EventType>(batch, position, event)`, changing rows through
    `batch.rows(table)`. Before a batch is applied, `prepare` is given the events the model
    handles, to load the rows they will read in one query per table; after, `finish` may
    complete what the handlers left for the end of the batch.
    """

    name: str
    tables: dict[str, Table] = {}
    indexes: list[str] = []
    lookups: list[str] = []  # those of `indexes` that applying events reads by

    def handlers(self) -> dict[type, Callable[[Batch, int, Any], None]]:
        """The handler of each event type this model handles."""
        found = {}
        for kind in EVENT_TYPES:
            handler = getattr(self, "on_" + kind.__name__, None)
            if handler is not None:
                found[kind] = handler
        return found

    def prepare(self, batch: Batch, events: list[tuple[int, Any]]) -> None:
        """Load the rows of every key these events (in no particular order) name: a table
        keyed by one column, say `lead`, loads the rows of the events' `lead`."""
        for table, spec in self.tables.items():
            if len(spec.key) == 1 and not spec.fresh_keys:
                column = spec.key[0]
                batch.rows(table).load(
                    k for _, e in events if (k := getattr(e, column, None)) is not None)

    def finish(self, batch: Batch) -> None:
        """Called once the batch's events (some of them the model's: it was prepared) are
        applied, before its rows are written."""


def all_models() -> list[ReadModel]:
    from projections import (  # noqa: PLC0415
        disputes,
        follow_ups,
        holdings,
        ownership_intervals,
        people,
        pool_leads,
        pools,
    )

    return [
        people.People(), pools.Pools(), pool_leads.PoolLeads(), holdings.Holdings(),
        ownership_intervals.OwnershipIntervals(), follow_ups.FollowUps(), disputes.Disputes(),
    ]


class Projector:
    def __init__(self, store: Store, models: list[ReadModel] | None = None) -> None:
        self.store = store
        self.models = models or all_models()
        self._ready = False
        self._tables = {table: spec for model in self.models for table, spec in model.tables.items()}
        self._handled = [(model, set(found)) for model in self.models if (found := model.handlers())]
        self._handlers: dict[type, list[Callable[[Batch, int, Any], None]]] = {}
        for model in self.models:
            for kind, handler in model.handlers().items():
                self._handlers.setdefault(kind, []).append(handler)
        self._topics = {kind.__name__ for kind in self._handlers}
        # read ahead where a server does the reading meanwhile (SQLite reads in this
        # process: a second thread would only take turns with applying)
        self._reads_ahead = store.kind == "postgresql"
        self._reader: ThreadPoolExecutor | None = None

    # --- tables -------------------------------------------------------------------------

    def table_names(self) -> list[str]:
        return [table for model in self.models for table in model.tables]

    def names(self, suffix: str = "") -> dict[str, str]:
        names = {"tracking": self.store.table(TRACKING)}
        for table in self.table_names():
            names[table] = self.store.table(table + suffix)
        return names

    def _index_list(self) -> list[tuple[str, int, str, bool]]:
        """(table, number, columns, whether applying events reads by it) of every index."""
        found = []
        for model in self.models:
            for i, index in enumerate(model.indexes):
                table, columns = index.split(":")
                found.append((table, i, columns, index in model.lookups))
        return found

    def _create(self, db: Db, suffix: str = "", *, every_index: bool = True) -> None:
        """Create the tables named with `suffix`, and their indexes (or only those applying
        events reads by)."""
        db.exec("CREATE TABLE IF NOT EXISTS {tracking} (name TEXT PRIMARY KEY, position BIGINT NOT NULL)")
        for model in self.models:
            for table, spec in model.tables.items():
                db.exec(f"CREATE TABLE IF NOT EXISTS {{{table}}} ({spec.columns})")
        self._create_indexes(db, suffix, every_index=every_index)

    def _create_indexes(self, db: Db, suffix: str, *, every_index: bool = True) -> None:
        for table, i, columns, lookup in self._index_list():
            if every_index or lookup:
                db.exec(f"CREATE INDEX IF NOT EXISTS {table}{suffix}_i{i} ON {{{table}}} ({columns})")

    def _exists(self) -> bool:
        """Whether the live tables and the tracking row are there (a read: no locks taken)."""
        tables = ", ".join(self.names().values())
        try:
            with self.store.reading() as cur:
                db = Db(cur, self.store, self.names())
                db.exec(f"SELECT 1 FROM {tables} LIMIT 0").fetchall()
                return db.one("SELECT position FROM {tracking} WHERE name = %s", [NAME]) is not None
        except PersistenceError:
            return False

    def ensure(self) -> None:
        """Create the live tables and the tracking row, unless they are there already."""
        if self._ready:
            return
        if not self._exists():
            try:
                with self.store.writing() as cur:
                    db = Db(cur, self.store, self.names())
                    self._create(db)
                    db.exec("INSERT INTO {tracking} (name, position) VALUES (%s, 0) "
                            "ON CONFLICT (name) DO NOTHING", [NAME])
            except PersistenceError:
                if not self._exists():  # not a concurrent creator that got there first
                    raise
        self._ready = True

    def position(self, name: str = NAME) -> int | None:
        """The position a set of tables has reached (None: no such set, e.g. no rebuild pending)."""
        self.ensure()
        with self.store.reading() as cur:
            row = Db(cur, self.store, self.names()).one(
                "SELECT position FROM {tracking} WHERE name = %s", [name])
        return row[0] if row else None

    def pending_rebuild(self) -> int | None:
        """The position an unfinished rebuild has reached, or None when none is pending."""
        return self.position(NAME + REBUILD)

    # --- applying -----------------------------------------------------------------------

    def _read(self, after: int, limit: int, upto: int | None
              ) -> tuple[int | None, list[tuple[int, Any]], bool]:
        """The last position of the next `limit` events after `after` (None: none); those of
        them some model handles, decoded: (position, event); and whether more may follow."""
        rows = self.store.read_log_raw(after=after, limit=limit)
        more = len(rows) == limit
        if upto is not None and rows and rows[-1][0] >= upto:
            rows, more = [row for row in rows if row[0] <= upto], False
        if not rows:
            return None, [], False
        topics = self._topics
        return rows[-1][0], [(row[0], codec.decode_event(row[4])) for row in rows if row[3] in topics], more

    def close(self) -> None:
        """Stop the read-ahead thread, if one was started."""
        if self._reader is not None:
            self._reader.shutdown()
            self._reader = None

    def _read_ahead(self, after: int, limit: int, upto: int | None) -> Future:
        """`_read` in a thread of its own (one per projector, so one connection), while the
        caller applies the batch before."""
        if self._reader is None:
            self._reader = ThreadPoolExecutor(1, thread_name_prefix="read-ahead")
        return self._reader.submit(self._read, after, limit, upto)

    def _apply(self, events: list[tuple[int, Any]], start: int, last: int, name: str, suffix: str) -> None:
        """Apply a batch read after `start` and move the tracking row on to `last`, or raise
        Conflict."""
        with self.store.writing() as cur:
            db = Db(cur, self.store, self.names(suffix))
            db.exec("UPDATE {tracking} SET position = %s WHERE name = %s AND position = %s",
                    [last, name, start])
            if cur.rowcount != 1:
                raise Conflict("another runner moved the tracking position")
            if not events:
                return
            batch = Batch(db, self._tables)
            by_type: dict[type, list[tuple[int, Any]]] = {}
            for pe in events:
                by_type.setdefault(type(pe[1]), []).append(pe)
            involved = []
            for model, kinds in self._handled:
                mine = [pe for kind in kinds & by_type.keys() for pe in by_type[kind]]
                if mine:
                    model.prepare(batch, mine)
                    involved.append(model)
            handlers = self._handlers
            for position, event in events:
                for handler in handlers[type(event)]:
                    handler(batch, position, event)
            for model in involved:
                model.finish(batch)
            batch.flush()

    def _run(self, name: str, suffix: str, batch: int, upto: int | None,
             progress: Callable[[int], None] | None) -> int | None:
        """Apply batches to one set of tables until the log is exhausted; return the position
        reached, or None when the tracking row went away (a rebuild someone else finished)."""
        position = self.position(name)
        ahead: tuple[int | None, Future] | None = None  # the next batch, read meanwhile
        # reading ahead, batches start small and grow: applying begins while more is read
        size = min(batch, FIRST_BATCH) if self._reads_ahead else batch
        while position is not None:
            if ahead is not None and ahead[0] == position:
                last, events, more = ahead[1].result()
            else:
                last, events, more = self._read(position, size, upto)
            ahead = None
            if more and self._reads_ahead:
                size = min(batch, size * 2)
                ahead = (last, self._read_ahead(last, size, upto))
            if last is None:
                return position
            try:
                with collector_paused():
                    self._apply(events, position, last, name, suffix)
            except Conflict:
                position = self.position(name)  # another runner got there first
                continue
            position = last
            if progress:
                progress(position)
        return None

    def catch_up(self, batch: int = 2000, upto: int | None = None,
                 progress: Callable[[int], None] | None = None) -> int:
        """Apply every event not yet applied to the live tables; return the position reached."""
        self.ensure()
        reached = self._run(NAME, "", batch, upto, progress)
        assert reached is not None, "the live tracking row is never removed"
        return reached

    # --- rebuilding ---------------------------------------------------------------------

    def start_rebuild(self) -> None:
        """Fresh, empty `*__rebuild` tables at position 0 (dropping an unfinished rebuild's),
        with only the indexes applying events reads by: the others are built at the end."""
        self.ensure()
        with self.store.writing() as cur:
            db = Db(cur, self.store, self.names(REBUILD))
            db.exec("DELETE FROM {tracking} WHERE name = %s", [NAME + REBUILD])  # lock order: row first
            for table in self.table_names():
                db.exec(f"DROP TABLE IF EXISTS {{{table}}}")
            self._create(db, REBUILD, every_index=False)
            db.exec("INSERT INTO {tracking} (name, position) VALUES (%s, 0)", [NAME + REBUILD])

    def finish_rebuild(self, batch: int = 20000, progress: Callable[[int], None] | None = None) -> int | None:
        """Go on with a pending rebuild and swap it in; return the position swapped in, or None
        when no rebuild is pending (or another runner finished it meanwhile)."""
        while True:
            reached = self._run(NAME + REBUILD, REBUILD, batch, None, progress)
            if reached is None:
                return None
            try:
                self._index_rebuild(reached)
                self._swap(reached)
            except Conflict:
                continue  # more was applied, or it was restarted or swapped in by another runner
            return reached

    def rebuild(self, batch: int = 20000, progress: Callable[[int], None] | None = None) -> int:
        """Build every model afresh from position 0 beside the live ones, then swap them in."""
        self.start_rebuild()
        reached = self.finish_rebuild(batch, progress)
        return self.position() if reached is None else reached

    def _index_rebuild(self, position: int) -> None:
        """Build the indexes a rebuild at `position` leaves for the end, beside the live tables
        (on SQLite the swap builds them: it cannot rename an index)."""
        if self.store.kind != "postgresql":
            return
        with self.store.writing() as cur:
            db = Db(cur, self.store, self.names(REBUILD))
            db.exec("UPDATE {tracking} SET position = position WHERE name = %s AND position = %s",
                    [NAME + REBUILD, position])
            if cur.rowcount != 1:
                raise Conflict("the rebuild moved on, restarted or was swapped in meanwhile")
            self._create_indexes(db, REBUILD)

    def _swap(self, position: int) -> None:
        """Swap the rebuilt tables in, in one transaction; events after `position` are
        applied to them by the next catch-up."""
        with self.store.writing() as cur:
            db = Db(cur, self.store, self.names())
            db.exec("UPDATE {tracking} SET position = %s WHERE name = %s", [position, NAME])
            db.exec("DELETE FROM {tracking} WHERE name = %s AND position = %s", [NAME + REBUILD, position])
            if cur.rowcount != 1:
                raise Conflict("the rebuild moved on, restarted or was swapped in meanwhile")
            for table in self.table_names():
                live, fresh = self.store.table(table), self.store.table(table + REBUILD)
                self.store.copy_grants(cur, live, fresh)
                db.exec(f"DROP TABLE IF EXISTS {live}")
                db.exec(f"ALTER TABLE {fresh} RENAME TO {table}")
            for table, i, columns, _ in self._index_list():
                self.store.rename_index(cur, f"{table}{REBUILD}_i{i}", f"{table}_i{i}",
                                        self.store.table(table), columns)

    # --- following ----------------------------------------------------------------------

    def follow(self, stop: threading.Event | None = None, *, poll: float = 0.5,
               on_batch: Callable[[int], None] | None = None,
               on_error: Callable[[Exception, float], None] | None = None) -> None:
        """Keep the live tables current as events are stored, until `stop` is set (or the
        caller is interrupted: KeyboardInterrupt goes through, leaving nothing half-applied).

        New events are signalled by the store's subscription (LISTEN/NOTIFY on PostgreSQL,
        polling every `poll` seconds on SQLite). A lost connection is reported to `on_error`
        with the delay before the next attempt; then the subscription starts over from the
        tracking position.
        """
        stop = stop or threading.Event()
        delay = 0.5
        reached = -1

        def advance() -> None:
            nonlocal reached
            before, reached = reached, self.catch_up()
            if reached != before and on_batch:
                on_batch(reached)

        while not stop.is_set():
            try:
                advance()
                with self.store.subscribe(reached, stop=stop, poll=poll) as arrivals:
                    delay = 0.5
                    for position in arrivals:
                        if position > reached:
                            advance()
            except (PersistenceError, StoreUnavailable) as e:
                if stop.is_set():
                    return
                if on_error:
                    on_error(e, delay)
                stop.wait(delay)
                delay = min(delay * 2, 10.0)
