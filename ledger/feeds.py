"""Read models and the change feed for other apps: project, export (a Ledger mixin)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from typing import Any

from ledger.errors import InvalidInput
from projections.runner import Db

# model -> (table, key columns in order)
MODELS = {
    "pool_leads": ("pool_leads", "since_position, lead"),
    "holdings": ("holdings", "since_position, lead"),
    "ownership_intervals": ("ownership_intervals", "start_position"),
    "follow_ups": ("follow_ups", "position"),
    "disputes": ("disputes", "open_position"),
    "people": ("people", "person"),
    "pools": ("pools", "pool"),
}


class Feeds:
    def project(self, rebuild: bool = False, progress: Callable[[int], None] | None = None) -> dict[str, Any]:
        self._ready()
        before = self.views.position()
        if rebuild:
            reached = self.views.rebuild(progress=progress)
            reached = self.views.catch_up()
        else:
            reached = self.views.catch_up(progress=progress)
        return {"rebuilt": rebuild, "from_position": before, "position": reached,
                "models": [m.name for m in self.views.models]}

    def follow(self, stop: Callable[[], bool], on_batch: Callable[[int], None] | None = None) -> None:
        self._ready()
        self.views.follow(stop, on_batch=on_batch)

    def export_rows(self, model: str, since: int = 0) -> Iterator[dict[str, Any]]:
        """Rows of a read model (after a catch-up), or events after position `since`."""
        self._ready()
        if model == "events":
            yield from self.iter_events(since)
            return
        if model not in MODELS:
            raise InvalidInput(f"unknown model {model!r}: use one of {', '.join([*MODELS, 'events'])}")
        self.views.catch_up()
        table, order = MODELS[model]
        with self.store.reading() as cur:
            db = Db(cur, self.store, self.views.names())
            cur.execute(db.sql(f"SELECT * FROM {{{table}}} ORDER BY {order}"))
            names = [d[0] for d in cur.description]
            rows = cur.fetchall()
        for row in rows:
            yield {n: (bool(v) if n == "active" else v) for n, v in zip(names, row, strict=True)}


EVENT_COLUMNS = ("position", "stream", "version", "type", "occurred_at", "recorded_at", "actor",
                 "actor_kind", "backdated")


def event_row(row: dict[str, Any]) -> dict[str, Any]:
    """An event as one CSV row: the common columns, and the rest as JSON in `data`."""
    out = {k: row.get(k) for k in EVENT_COLUMNS}
    out["data"] = json.dumps({k: v for k, v in row.items() if k not in EVENT_COLUMNS}, ensure_ascii=False)
    return out


def write_rows(rows: Iterator[dict[str, Any]], fmt: str, out: io.TextIOBase, *, events: bool = False) -> int:
    if fmt not in ("jsonl", "csv"):
        raise InvalidInput(f"unknown format {fmt!r}: use jsonl or csv")
    count = 0
    if fmt == "jsonl":
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
            count += 1
        return count
    writer = None
    for row in rows:
        flat = event_row(row) if events else row
        if writer is None:
            writer = csv.DictWriter(out, fieldnames=list(flat), lineterminator="\n")
            writer.writeheader()
        writer.writerow(flat)
        count += 1
    return count
