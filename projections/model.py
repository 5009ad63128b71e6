"""The base of every read model: its tables, and how the events it handles change them.

Models import this; it never imports them (`registry.py` lists them).
"""

from __future__ import annotations

import typing
from collections.abc import Callable
from typing import Any

from ledger.events import AnyEvent
from ledger.values import format_time
from projections.batch import Batch, Table

EVENT_TYPES: tuple[type, ...] = typing.get_args(AnyEvent)

_last: tuple[Any, str | None] = (None, None)  # the time last formatted, kept alive so it is not reused


def occurred(event: Any) -> str:
    """`format_time(event.occurred_at)`, remembered for the event last asked about: the
    models an event concerns ask for it in turn."""
    global _last  # noqa: PLW0603 - one tuple, swapped whole
    last = _last
    if last[0] is not event.occurred_at:
        last = _last = (event.occurred_at, format_time(event.occurred_at))
    return last[1]


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
                keys = {getattr(e, column, None) for _, e in events}
                keys.discard(None)
                batch.rows(table).load(keys)

    def finish(self, batch: Batch) -> None:
        """Called once the batch's events (some of them the model's: it was prepared) are
        applied, before its rows are written."""
