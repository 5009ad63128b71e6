"""Keeps the read models current: each event applied exactly once, in position order.

Every read model is a set of tables in the store's database. A batch of events is applied
to all of them and the tracking position advanced in one transaction; the tracking update
is conditional on the position it started from, so two runners never apply an event twice
(the loser rolls back and catches up from the new position).

`rebuild` fills fresh tables from position 0 and swaps them in at the end, in one
transaction, so readers never see a half-built model; if it is killed, the old tables stay.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from ledger.store import Conflict, Store, Stored

TRACKING = "leadledger_tracking"
NAME = "read_models"
REBUILD = "__rebuild"


class Db:
    """A transaction on the read models: `%s` placeholders, `{table}` names."""

    def __init__(self, cur: Any, store: Store, names: dict[str, str]) -> None:
        self.cur = cur
        self.param = store.param
        self.names = names

    def sql(self, text: str) -> str:
        text = text.format(**self.names)
        return text if self.param == "%s" else text.replace("%s", self.param)

    def exec(self, text: str, params: Iterable[Any] = ()) -> Any:
        self.cur.execute(self.sql(text), list(params))
        return self.cur

    def many(self, text: str, rows: list[Iterable[Any]]) -> None:
        if rows:
            self.cur.executemany(self.sql(text), [list(r) for r in rows])

    def one(self, text: str, params: Iterable[Any] = ()) -> Any:
        return self.exec(text, params).fetchone()

    def all(self, text: str, params: Iterable[Any] = ()) -> list[Any]:
        return self.exec(text, params).fetchall()


class ReadModel:
    """One read model: its tables (DDL with `{name}` placeholders) and how events change them."""

    name: str
    tables: dict[str, str] = {}
    indexes: list[str] = []

    def apply(self, db: Db, stored: Stored) -> None:
        handler = getattr(self, "on_" + type(stored.event).__name__, None)
        if handler is not None:
            handler(db, stored, stored.event)


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

    def names(self, suffix: str = "") -> dict[str, str]:
        names = {"tracking": self.store.table(TRACKING)}
        for model in self.models:
            for table in model.tables:
                names[table] = self.store.table(table + suffix)
        return names

    def _create(self, db: Db, suffix: str = "") -> None:
        db.exec("CREATE TABLE IF NOT EXISTS {tracking} (name TEXT PRIMARY KEY, position BIGINT NOT NULL)")
        for model in self.models:
            for table, columns in model.tables.items():
                db.exec(f"CREATE TABLE IF NOT EXISTS {{{table}}} ({columns})")
        if not suffix:  # rebuilt tables get their indexes when they are swapped in
            self._index(db)

    def _index(self, db: Db) -> None:
        for model in self.models:
            for i, index in enumerate(model.indexes):
                table, columns = index.split(":")
                name = f"{table}_i{i}"
                db.exec(f"CREATE INDEX IF NOT EXISTS {name} ON {{{table}}} ({columns})")

    def ensure(self) -> None:
        if self._ready:
            return
        with self.store.writing() as cur:
            db = Db(cur, self.store, self.names())
            self._create(db)
            db.exec(
                "INSERT INTO {tracking} (name, position) VALUES (%s, 0) ON CONFLICT (name) DO NOTHING",
                [NAME],
            )
        self._ready = True

    def position(self, name: str = NAME) -> int:
        self.ensure()
        with self.store.reading() as cur:
            row = Db(cur, self.store, self.names()).one("SELECT position FROM {tracking} WHERE name = %s", [name])
        return row[0] if row else 0

    def catch_up(self, batch: int = 2000, upto: int | None = None,
                 progress: Callable[[int], None] | None = None) -> int:
        """Apply every event not yet applied; return the position reached."""
        self.ensure()
        position = self.position()
        while True:
            events = self.store.read_log(after=position, limit=batch, upto=upto)
            if not events:
                return position
            try:
                self._apply(events, position, NAME, "")
            except Conflict:
                position = self.position()  # another runner got there first
                continue
            position = events[-1].position
            if progress:
                progress(position)

    def _apply(self, events: list[Stored], start: int, name: str, suffix: str) -> None:
        with self.store.writing() as cur:
            db = Db(cur, self.store, self.names(suffix))
            cur.execute(
                db.sql("UPDATE {tracking} SET position = %s WHERE name = %s AND position = %s"),
                [events[-1].position, name, start],
            )
            if cur.rowcount != 1:
                raise Conflict("tracking position moved")
            for stored in events:
                for model in self.models:
                    model.apply(db, stored)

    def rebuild(self, batch: int = 5000, progress: Callable[[int], None] | None = None) -> int:
        """Build every model afresh beside the live ones, then swap them in at once.

        The fresh tables keep their own tracking row, so a rebuild that was killed goes on
        from where it stopped the next time it runs.
        """
        self.ensure()
        name = NAME + REBUILD
        with self.store.writing() as cur:
            db = Db(cur, self.store, self.names(REBUILD))
            self._create(db, REBUILD)
            db.exec(
                "INSERT INTO {tracking} (name, position) VALUES (%s, 0) ON CONFLICT (name) DO NOTHING",
                [name],
            )
        position = self.position(name)
        while events := self.store.read_log(after=position, limit=batch):
            self._apply(events, position, name, REBUILD)
            position = events[-1].position
            if progress:
                progress(position)
        self._swap(position)
        return position

    def _swap(self, position: int) -> None:
        """Swap the rebuilt tables in, in one transaction; events after `position` are
        applied to them by the next catch-up."""
        with self.store.writing() as cur:
            db = Db(cur, self.store, self.names())
            for model in self.models:
                for table in model.tables:
                    db.exec(f"DROP TABLE IF EXISTS {self.store.table(table)}")
                    db.exec(f"ALTER TABLE {self.store.table(table + REBUILD)} RENAME TO {table}")
            self._index(db)
            db.exec("UPDATE {tracking} SET position = %s WHERE name = %s", [position, NAME])
            db.exec("DELETE FROM {tracking} WHERE name = %s", [NAME + REBUILD])

    def follow(self, stop: Callable[[], bool], interval: float = 0.5,
               on_batch: Callable[[int], None] | None = None) -> None:
        """Keep catching up until `stop()` says so (polling; LISTEN/NOTIFY wakes it on PostgreSQL)."""
        while not stop():
            before = self.position()
            reached = self.catch_up()
            if reached != before and on_batch:
                on_batch(reached)
            self.store.wait_for_events(reached, interval)
