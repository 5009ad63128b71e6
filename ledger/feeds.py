"""Read models and the change feed for other apps: project, follow, export (a Ledger mixin)."""

from __future__ import annotations

import csv
import json
import threading
from collections.abc import Callable, Iterator
from typing import IO, Any

from ledger.errors import InvalidInput
from projections.runner import Db

# model -> (table, order of its rows)
MODELS = {
    "pool_leads": ("pool_leads", "since_position, lead"),
    "holdings": ("holdings", "since_position, lead"),
    "ownership_intervals": ("ownership_intervals", "start_position"),
    "follow_ups": ("follow_ups", "position"),
    "disputes": ("disputes", "open_position"),
    "people": ("people", "person"),
    "pools": ("pools", "pool"),
    "pool_members": ("pool_members", "pool, person"),
}
BOOLEAN_COLUMNS = {"active"}  # SQLite stores them as 0/1

# the columns of `export events --format csv`; the rest of each event goes as JSON in `data`
EVENT_COLUMNS = ("position", "stream", "version", "type", "occurred_at", "recorded_at", "actor",
                 "actor_kind", "backdated")

Progress = Callable[[int, int], None]  # (events done, events to do)


class Feeds:
    def project(self, rebuild: bool = False, progress: Progress | None = None) -> dict[str, Any]:
        """Bring the read models up to date: finish a pending rebuild (or, with `rebuild`,
        start one afresh from position 0), then apply every event not yet applied."""
        self._ready()
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
        self._ready()
        self.views.follow(stop, poll=poll, on_batch=on_batch, on_error=on_error)

    def export(self, model: str, since: int = 0) -> tuple[list[str], Iterator[dict[str, Any]]]:
        """The columns and rows of a read model (after a catch-up), or of the events after
        position `since` (the change feed, in position order). Checks run before any row."""
        self._ready()
        if model == "events":
            return [*EVENT_COLUMNS, "data"], self.iter_events(since)
        if model not in MODELS:
            raise InvalidInput(f"unknown model {model!r}: use one of {', '.join([*MODELS, 'events'])}")
        if since:
            raise InvalidInput("--since applies to `events` only")
        self.views.catch_up()
        table, order = MODELS[model]
        with self.store.reading() as cur:  # the column names, before any row is written
            db = Db(cur, self.store, self.views.names())
            cur.execute(db.sql(f"SELECT * FROM {{{table}}} LIMIT 0"))
            columns = [d[0] for d in cur.description]
            cur.fetchall()
        return columns, self._model_rows(table, order, columns)

    def _model_rows(self, table: str, order: str, columns: list[str]) -> Iterator[dict[str, Any]]:
        """Every row, read in one transaction (one consistent state), a batch at a time."""
        with self.store.reading() as cur:
            db = Db(cur, self.store, self.views.names())
            cur.execute(db.sql(f"SELECT {', '.join(columns)} FROM {{{table}}} ORDER BY {order}"))
            while rows := cur.fetchmany(2000):
                for row in rows:
                    yield {c: (bool(v) if c in BOOLEAN_COLUMNS and v is not None else v)
                           for c, v in zip(columns, row, strict=True)}


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
        raise InvalidInput(f"unknown format {fmt!r}: use jsonl or csv")
    count = 0
    if fmt == "jsonl":
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
            count += 1
        return count
    header = [*EVENT_COLUMNS, "data"] if events else columns
    writer = csv.DictWriter(out, fieldnames=header, lineterminator="\n") if header else None
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
