"""The read models of a world as it was, or of a store this process may not write.

`Replay` runs every read model over a filtered copy of the log (the events done by a
business time, or those up to a position) into tables of a scratch SQLite file of its own,
in one pass: what a rebuild does, never more. Rows keep the positions the events have in the
real log, so an as-of export can be compared line by line with today's.

`current` answers the question every reader asks first — "the read models, up to date" — and,
when the store's own tables cannot be brought up to date in place (a read-only file, a role
with SELECT only, a hot standby), falls back to a replay of the whole log in memory, writing
nothing to the store.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from datetime import datetime
from typing import Any

from eventsourcing.persistence import PersistenceError

from ledger import codec
from ledger.errors import StoreUnavailable
from ledger.store import SQLiteStore, Store
from projections.queries import ReadModels
from projections.runner import Projector

Keep = Callable[[Any], bool]  # whether an event (decoded) belongs to the world replayed


def done_by(when: datetime) -> Keep:
    """The events done by `when` (an event at `when` counts as done)."""
    return lambda event: event.occurred_at <= when


class Replay(Projector):
    """The read models over the events of `source` that `keep` accepts, up to position `upto`,
    held in a scratch SQLite file that `close` removes."""

    def __init__(self, source: Store, keep: Keep | None = None, upto: int | None = None) -> None:
        self.folder = tempfile.mkdtemp(prefix="leadledger-replay-")
        path = os.path.join(self.folder, "replay.db")
        super().__init__(SQLiteStore(f"sqlite:///{path}", path))
        self.source = source
        self.keep = keep
        self.upto = upto
        self.reached = 0

    def _read(self, after: int, limit: int, upto: int | None) -> tuple[int | None, list[tuple[int, Any]], bool]:
        """As the live runner's read, but from the source log, keeping only what `keep` accepts."""
        upto = self.upto if upto is None else upto
        rows = self.source.read_log_raw(after=after, limit=limit)
        more = len(rows) == limit
        if upto is not None and rows and rows[-1][0] >= upto:
            rows, more = [row for row in rows if row[0] <= upto], False
        if not rows:
            return None, [], False
        handled = self.handled_topics()
        events = [(row[0], codec.decode_event(row[4])) for row in rows if row[3] in handled]
        if self.keep is not None:
            events = [(p, e) for p, e in events if self.keep(e)]
        return rows[-1][0], events, more

    def handled_topics(self) -> set[str]:
        return {kind.__name__ for model in self.models for kind in model.handlers()}

    def run(self) -> ReadModels:
        """Replay the log into the scratch tables; the read models over them."""
        self.reached = self.catch_up(batch=20000)
        return ReadModels(self.store, self)

    def close(self) -> None:
        super().close()
        self.store.close()
        shutil.rmtree(self.folder, ignore_errors=True)


class Current:
    """The read models brought up to date in place, or else replayed from the log in memory
    (once per process: a later reader reuses the replay, topped up with what came since)."""

    def __init__(self, store: Store, views: Projector, models: ReadModels) -> None:
        self.store = store
        self.views = views
        self.models = models
        self.replay: Replay | None = None
        self.replayed: ReadModels | None = None

    def __call__(self) -> ReadModels:
        if self.replay is None:
            try:
                self.views.catch_up()
                return self.models
            except (PersistenceError, StoreUnavailable, OSError):
                self.replay = Replay(self.store)  # read-only: answer from the events
                self.replayed = self.replay.run()
                return self.replayed
        self.replay.catch_up(batch=20000)
        return self.replayed

    def read_only(self) -> bool:
        """Whether answers come from a replay in memory (the store could not be written)."""
        return self.replay is not None

    def close(self) -> None:
        if self.replay is not None:
            self.replay.close()
            self.replay = None
