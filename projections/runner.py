"""Keeps the read models current: each event applied exactly once, in position order.

Every read model is a set of tables in the store's database, beside a tracking table that
holds the position each set of tables has reached (`tables.py`). A batch of events is
applied to every model and the tracking position advanced in one transaction, and that
transaction starts by moving the tracking row on from the position it read the batch after:
a second runner that read the same batch waits on that row, finds it moved, rolls back and
goes on from the new position. So no event is applied twice, and (the store handing out
positions in commit order) none is skipped. A rebuild (`rebuild.py`) applies events the
same way to tables of its own.

Locks are always taken in the same order (the live tracking row, the rebuild tracking row,
then tables), so runners, rebuilds and swaps never deadlock each other.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from ledger import codec, sealing
from ledger.errors import StoreUnavailable
from ledger.store import Conflict, Db, Store, failures
from projections.batch import Batch, Written
from projections.model import ReadModel
from projections.rebuild import Rebuild
from projections.registry import all_models
from projections.tables import NAME, REBUILD, Tables

__all__ = ["NAME", "REBUILD", "Db", "Projector", "collector_paused"]

FIRST_BATCH = 2500  # events at most in the first batch of a run
SEALED_TOPICS = frozenset(kind.__name__ for kind in sealing.SEALED_TYPES)
# a batch read: its last position (None: none), the events some model handles, decoded
# (position, event), the versions of those that may hold sealed fields, whether more may follow
Read = tuple[int | None, list[tuple[int, Any]], dict[int, int], bool]


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """No cyclic garbage collection meanwhile. A batch of events read and applied to the read
    models, or of leads imported, makes many small objects that live until it commits and
    form no cycles; collecting them costs a tenth to a fifth of the time."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class Projector:
    """Applies the log to the read models (`catch_up`, `follow`) and rebuilds them."""

    def __init__(self, store: Store, models: list[ReadModel] | None = None) -> None:
        self.store = store
        self.source = store  # the store whose events (and lead keys) are applied: a replay's differs
        self.models = models or all_models()
        self.tables = Tables(store, self.models)
        self.rebuilds = Rebuild(self.tables, self._run)
        self._handled = [(model, set(found)) for model in self.models if (found := model.handlers())]
        self._handlers: dict[type, list[Callable[[Batch, int, Any], None]]] = {}
        for model in self.models:
            for kind, handler in model.handlers().items():
                self._handlers.setdefault(kind, []).append(handler)
        self._topics = {kind.__name__ for kind in self._handlers}
        self._reads_ahead = store.reads_ahead  # the next batch read while one is applied
        self._reader: ThreadPoolExecutor | None = None

    # --- tables and rebuilds (see tables.py, rebuild.py) ----------------------------------

    def table_names(self) -> list[str]:
        return self.tables.table_names()

    def names(self, suffix: str = "") -> dict[str, str]:
        return self.tables.names(suffix)

    def ensure(self) -> None:
        self.tables.ensure()

    def position(self, name: str = NAME) -> int | None:
        return self.tables.position(name)

    def pending_rebuild(self) -> int | None:
        """The position an unfinished rebuild has reached, or None when none is pending."""
        return self.tables.position(NAME + REBUILD)

    def start_rebuild(self) -> None:
        self.rebuilds.start()

    def finish_rebuild(self, batch: int = 20000, progress: Callable[[int], None] | None = None) -> int | None:
        return self.rebuilds.finish(batch, progress)

    def rebuild(self, batch: int = 20000, progress: Callable[[int], None] | None = None) -> int:
        return self.rebuilds.rebuild(batch, progress)

    # --- applying -----------------------------------------------------------------------

    def _read(self, after: int, limit: int, upto: int | None) -> Read:
        """The last position of the next `limit` events after `after` (None: none); those of
        them some model handles, decoded: (position, event); the versions of those of them
        that may hold sealed fields, by position; and whether more may follow."""
        rows = self.source.read_log_raw(after=after, limit=limit)
        more = len(rows) == limit
        if upto is not None and rows and rows[-1][0] >= upto:
            rows, more = [row for row in rows if row[0] <= upto], False
        if not rows:
            return None, [], {}, False
        topics, decode = self._topics, codec.decode_event
        events = [(row[0], decode(row[4])) for row in rows if row[3] in topics]
        return rows[-1][0], events, {row[0]: row[2] for row in rows if row[3] in SEALED_TOPICS}, more

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

    def _apply(self, events: list[tuple[int, Any]], versions: dict[int, int], start: int, last: int,
               name: str, suffix: str, written: Written | None) -> None:
        """Apply a batch read after `start` (`_read`) and move the tracking row on to `last`,
        or raise Conflict. `written`: what the run wrote, when its tables hold nothing else."""
        with self.store.writing() as cur:
            db = self.tables.db(cur, suffix)
            db.exec("UPDATE {tracking} SET position = %s WHERE name = %s AND position = %s",
                    [last, name, start])
            if cur.rowcount != 1:
                raise Conflict("another runner moved the tracking position")
            if not events:
                return
            batch = Batch(db, self.tables.specs, self.source, versions, written)
            by_type: dict[type, list[tuple[int, Any]]] = defaultdict(list)
            for pe in events:
                by_type[type(pe[1])].append(pe)
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
             progress: Callable[[int], None] | None, stop: threading.Event | None = None) -> int | None:
        """Apply batches to one set of tables until the log is exhausted (or `stop` is set);
        return the position reached, or None when the tracking row went away (a rebuild
        someone else finished)."""
        position = self.position(name)
        # Tables at position 0 are empty (rows are written only with the position moved on):
        # while this run applies every batch, what it wrote is all they hold.
        written = self.tables.written() if position == 0 else None
        ahead: tuple[int | None, Future] | None = None  # the next batch, read meanwhile
        # reading ahead, batches start small and grow: applying begins while more is read
        size = min(batch, FIRST_BATCH) if self._reads_ahead else batch
        with collector_paused():  # decoded events form no cycles either
            while position is not None and not (stop is not None and stop.is_set()):
                if ahead is not None and ahead[0] == position:
                    last, events, versions, more = ahead[1].result()
                else:
                    last, events, versions, more = self._read(position, size, upto)
                ahead = None
                if more and self._reads_ahead:
                    size = min(batch, size * 2)
                    ahead = (last, self._read_ahead(last, size, upto))
                if last is None:
                    return position
                try:
                    self._apply(events, versions, position, last, name, suffix, written)
                except Conflict:
                    position = self.position(name)  # another runner got there first
                    written = None
                    continue
                position = last
                if progress:
                    progress(position)
        return position

    def catch_up(self, batch: int = 2000, upto: int | None = None,
                 progress: Callable[[int], None] | None = None, stop: threading.Event | None = None) -> int:
        """Apply every event not yet applied to the live tables (or those of the batches
        before `stop` is set); return the position reached."""
        self.ensure()
        reached = self._run(NAME, "", batch, upto, progress, stop)
        assert reached is not None, "the live tracking row is never removed"
        return reached

    # --- following ----------------------------------------------------------------------

    def follow(self, stop: threading.Event | None = None, *, poll: float = 0.5,
               on_batch: Callable[[int], None] | None = None,
               on_error: Callable[[Exception, float], None] | None = None) -> None:
        """Keep the live tables current as events are stored, until `stop` is set (seen
        between batches), or the caller is interrupted (KeyboardInterrupt goes through,
        leaving nothing half-applied).

        New events are signalled by the store's subscription (`Store.subscribe`: told by
        the database, or polling every `poll` seconds). A lost connection is reported to
        `on_error` with the delay before the next attempt; then the subscription starts over
        from the tracking position.
        """
        stop = stop or threading.Event()
        delay = 0.5
        reached = -1

        def advance() -> None:
            nonlocal reached
            before, reached = reached, self.catch_up(stop=stop)
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
            except (failures.PersistenceError, StoreUnavailable) as e:
                if stop.is_set():
                    return
                if on_error:
                    on_error(e, delay)
                stop.wait(delay)
                delay = min(delay * 2, 10.0)
