"""What every command object of the ledger works with, made once per `Ledger` and shared.

The read models and the runner that keeps them current are made on first use: a query that
reads only a lead's own stream (`owner`, `history`) never loads the projections.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from ledger.acting import Acting
from ledger.repository import Repository
from ledger.store import Store

if TYPE_CHECKING:
    from projections.queries import ReadModels
    from projections.replay import Fallback


class Context:
    """The store, the repository over it, the acting checks, and the read models."""

    def __init__(self, store: Store, clock: Callable[[], datetime], commit: Callable[..., object]) -> None:
        self.store = store
        self.clock = clock
        self.repo = Repository(store, commit)
        self.acting = Acting(self.repo, clock)
        self._lock = threading.Lock()
        self._made: tuple[Fallback, ReadModels] | None = None

    @property
    def views(self) -> Fallback:
        """The live runner (on a store it may not write: a replay of the events)."""
        return self._read()[0]

    @property
    def models(self) -> ReadModels:
        return self._read()[1]

    def _read(self) -> tuple[Fallback, ReadModels]:
        """The runner and the models it serves, made together (a runner that falls back turns
        the models it serves to its replay), once whichever thread asks first."""
        with self._lock:
            if self._made is None:
                from projections.queries import ReadModels  # noqa: PLC0415 - only the commands that read models
                from projections.replay import Fallback  # noqa: PLC0415

                views = Fallback(self.store)
                self._made = views, views.serve(ReadModels(self.store, views))
            return self._made

    def close(self) -> None:
        if self._made is not None:
            self._made[0].close()


class Concern:
    """A command object (people, pools, leads, ownership, queries, ...): it works through the
    ledger's shared context."""

    def __init__(self, context: Context) -> None:
        self.context = context
        self.repo = context.repo
        self.acting = context.acting

    @property
    def views(self) -> Fallback:
        return self.context.views

    @property
    def models(self) -> ReadModels:
        return self.context.models
