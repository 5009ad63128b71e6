"""The read models of a world as it was, or of a store this process may not write.

`Replay` runs every read model over a filtered copy of the log (the events done by a
business time, or those up to a position) into tables of a scratch SQLite file of its own,
in one pass: what a rebuild does, never more. Rows keep the positions the events have in the
real log, so an as-of export can be compared line by line with today's.

`Fallback` is the live runner every reader catches up first; when the store's own tables
cannot be brought up to date in place (a read-only file, a role with SELECT only, a hot
standby), it falls back to a replay of the whole log in scratch tables, writing nothing to
the store, and the read models it serves answer from there.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import weakref
from collections.abc import Callable
from datetime import datetime
from typing import Any

from ledger.errors import StoreUnavailable
from ledger.store import Store, failures
from projections.queries import ReadModels
from projections.runner import Projector, Read

Keep = Callable[[Any], bool]  # whether an event (decoded) belongs to the world replayed


def done_by(when: datetime) -> Keep:
    """The events done by `when` (an event at `when` counts as done)."""
    return lambda event: event.occurred_at <= when


class Replay(Projector):
    """The read models over the events of `source` that `keep` accepts, up to position `upto`,
    held in a scratch SQLite file that `close` removes."""

    def __init__(self, source: Store, keep: Keep | None = None, upto: int | None = None) -> None:
        from ledger.store.sqlite import SQLiteStore  # noqa: PLC0415 - a PostgreSQL query loads no SQLite store

        self.folder = tempfile.mkdtemp(prefix="leadledger-replay-")
        path = os.path.join(self.folder, "replay.db")
        super().__init__(SQLiteStore(f"sqlite:///{path}", path))
        self.source = source
        self.keep = keep
        self.upto = upto
        self.reached = 0
        weakref.finalize(self, shutil.rmtree, self.folder, True)  # even if never closed

    def _read(self, after: int, limit: int, upto: int | None) -> Read:
        """As the live runner's read, up to `self.upto`, keeping only what `keep` accepts."""
        last, events, versions, more = super()._read(after, limit, self.upto if upto is None else upto)
        if self.keep is not None:
            events = [(p, e) for p, e in events if self.keep(e)]
        return last, events, versions, more

    def run(self) -> ReadModels:
        """Replay the log into the scratch tables; the read models over them."""
        self.reached = self.catch_up(batch=20000)
        return ReadModels(self.store, self)

    def close(self) -> None:
        super().close()
        self.store.close()
        shutil.rmtree(self.folder, ignore_errors=True)


# What the databases say when this process may not write: SQLite ("attempt to write a
# readonly database", "unable to open database file" in a read-only folder), PostgreSQL
# ("permission denied for table ...", "cannot execute ... in a read-only transaction").
NOT_WRITABLE = ("readonly", "read-only", "permission denied", "unable to open database file",
                "must be owner", "insufficient privilege")


def _not_writable(error: Exception) -> bool:
    """Whether a failure to bring the read models up to date was the store refusing writes
    (then the answer comes from a replay), not a lost connection or a busy store."""
    text = f"{error} {error.__cause__ or ''}".lower()
    return any(words in text for words in NOT_WRITABLE)


class Fallback(Projector):
    """The live read models' runner, which on a store it may not write (a read-only file, a
    role with SELECT only, a hot standby) catches up a replay in scratch tables instead, and
    turns the `ReadModels` it serves to them: every reader then answers from the events,
    writing nothing. Once fallen back it stays so for the life of the process."""

    def __init__(self, store: Store) -> None:
        super().__init__(store)
        self.served: list[ReadModels] = []
        self.replay: Replay | None = None

    def serve(self, models: ReadModels) -> ReadModels:
        """Turn `models` to the replay too, if this runner falls back."""
        self.served.append(models)
        return models

    def catch_up(self, batch: int = 2000, upto: int | None = None,
                 progress: Callable[[int], None] | None = None, stop: threading.Event | None = None) -> int:
        if self.replay is None:
            try:
                return super().catch_up(batch, upto, progress, stop)
            except (failures.PersistenceError, StoreUnavailable) as e:
                if not self.served or not _not_writable(e):
                    raise
                self.replay = Replay(self.store)
                for models in self.served:
                    models.answer_from(self.replay.store, self.replay)
        return self.replay.catch_up(max(batch, 20000), upto, progress)

    def read_only(self) -> bool:
        """Whether readers answer from a replay (the store's own tables could not be written)."""
        return self.replay is not None

    def close(self) -> None:
        super().close()
        if self.replay is not None:
            self.replay.close()
            self.replay = None
