"""Read models and the change feed for other apps: project, follow, export."""

from __future__ import annotations

import csv
import json
import threading
from collections.abc import Callable, Iterator
from typing import IO, Any

from ledger.disclosure import feed_rows, marked_notes
from ledger.errors import InvalidInput
from ledger.i18n import _
from ledger.moments import resolve
from ledger.store import Store
from projections.queries import MODELS, ReadModels
from projections.replay import Replay
from projections.runner import Projector

# the columns of `export events --format csv`; the rest of each event goes as JSON in `data`
EVENT_COLUMNS = ("position", "stream", "version", "type", "occurred_at", "recorded_at", "actor",
                 "actor_kind", "backdated")

Progress = Callable[[int, int], None]  # (events done, events to do)


class Feeds:
    def __init__(self, store: Store, views: Projector, models: ReadModels):
        self.store = store
        self.views = views
        self.models = models

    def project(self, rebuild: bool = False, progress: Progress | None = None) -> dict[str, Any]:
        """Bring the read models up to date: finish a pending rebuild (or, with `rebuild`,
        start one afresh from position 0), then apply every event not yet applied."""
        self.store.ensure_ready()
        views = self.views
        before = views.position()
        pending = views.pending_rebuild()
        top = self.store.max_position()

        def report(start: int) -> Callable[[int], None] | None:
            return (lambda position: progress(position - start, top - start)) if progress else None

        if rebuild:
            views.start_rebuild()
            views.finish_rebuild(progress=report(0))
        elif pending is not None:
            views.finish_rebuild(progress=report(pending))
        reached = views.catch_up(progress=None if rebuild or pending is not None else report(before))
        return {"rebuilt": rebuild or pending is not None, "resumed_rebuild": not rebuild and pending is not None,
                "from_position": before, "position": reached, "models": [m.name for m in views.models]}

    def follow(self, stop: threading.Event | None = None, on_batch: Callable[[int], None] | None = None,
               on_error: Callable[[Exception, float], None] | None = None, poll: float = 0.5) -> None:
        """Keep the read models current as events arrive, until `stop` is set or interrupted."""
        self.store.ensure_ready()
        self.views.follow(stop, poll=poll, on_batch=on_batch, on_error=on_error)

    def export(self, model: str, since: int = 0, at: Any = None, upto: Any = None,
               clock: Callable[[], Any] | None = None) -> tuple[list[str], Iterator[dict[str, Any]]]:
        """The columns and rows of a read model (after a catch-up), or of the events after
        position `since` (the change feed, in position order). Checks run before any row.

        As of `at` or `upto`, a read model's rows are those of its tables
        rebuilt over the events of that moment, in one pass (`projections.replay`)."""
        self.store.ensure_ready()
        moment = resolve(self.store, clock or (lambda: None), at, upto)
        if model == "events" and moment is None:
            return [*EVENT_COLUMNS, "data"], self.iter_events(since)
        if model == "events":
            raise InvalidInput(_("--at and --upto apply to read models, not to events (the log's first N "
                                 "events are the first N lines of `export events`)"))
        if model not in MODELS:
            raise InvalidInput(_("unknown model {model}: use one of {models}", model=repr(model),
                                 models=", ".join([*MODELS, "events"])))
        if since:
            raise InvalidInput(_("--since applies to `events` only"))
        if moment is None:
            self.views.catch_up()
            columns = self.models.columns(model)  # before any row is written
            return self._disclosed(model, columns, self.models.rows(model, columns))
        replay = Replay(self.store, moment.keep, moment.upto)
        try:
            models = replay.run()
            columns = models.columns(model)
        except BaseException:
            replay.close()
            raise
        return self._disclosed(model, columns, _closing(models.rows(model, columns), replay))

    def _disclosed(self, model: str, columns: list[str],
                   rows: Iterator[dict[str, Any]]) -> tuple[list[str], Iterator[dict[str, Any]]]:
        """A model's columns and rows as exported: the notes of `follow_ups` null once their
        lead is erased, with `"erased": true` (spec section 7). A CSV or a workbook keeps the
        table's columns (a store's export answers as it did), its erased notes empty cells."""
        if model != "follow_ups":
            return columns, rows
        return columns, marked_notes(self.store, rows)

    def iter_events(self, since: int = 0, batch: int = 5000) -> Iterator[dict[str, Any]]:
        """The change feed: every event after position `since`, in position order."""
        self.store.ensure_ready()
        position = since
        while events := self.store.read_log(after=position, limit=batch):
            yield from feed_rows(self.store, events)
            position = events[-1].position


def _closing(rows: Iterator[dict[str, Any]], replay: Replay) -> Iterator[dict[str, Any]]:
    """The rows, then the replay they came from removed."""
    try:
        yield from rows
    finally:
        replay.close()


def event_row(row: dict[str, Any]) -> dict[str, Any]:
    """An event as one CSV row: the common columns, and the rest as JSON in `data`."""
    out = {k: row.get(k) for k in EVENT_COLUMNS}
    out["data"] = json.dumps({k: v for k, v in row.items() if k not in EVENT_COLUMNS},
                             ensure_ascii=False, sort_keys=True)
    return out


def write_rows(rows: Iterator[dict[str, Any]], fmt: str, out: IO[str], *, events: bool = False,
               columns: list[str] | None = None) -> int:
    """Write rows as JSON Lines or CSV (with a header, even with no rows); return how many."""
    if fmt not in ("jsonl", "csv"):
        raise InvalidInput(_("unknown format {format}: use jsonl or csv", format=repr(fmt)))
    count = 0
    if fmt == "jsonl":
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
            count += 1
        return count
    header = [*EVENT_COLUMNS, "data"] if events else columns
    # a row may say more than the columns (`erased`, which JSON Lines shows): a CSV keeps its columns
    writer = csv.DictWriter(out, fieldnames=header, lineterminator="\n", extrasaction="ignore") if header else None
    if writer:
        writer.writeheader()
    for row in rows:
        flat = event_row(row) if events else row
        if writer is None:
            writer = csv.DictWriter(out, fieldnames=list(flat), lineterminator="\n")
            writer.writeheader()
        writer.writerow(flat)
        count += 1
    return count


__all__ = ["MODELS", "Feeds", "event_row", "write_rows"]
