"""The questions the ledger asks its read models: every statement run against their tables.

Each answer reads the models as they are; callers that need them current catch them up first.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ledger.store import Store
from projections.runner import Db, Projector

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
DISPUTE_COLUMNS = ("dispute", "lead", "status", "opened_by", "opened_at", "reason", "owner_at_open", "outcome",
                   "owner_after", "resolved_by", "resolved_at")


class ReadModels:
    def __init__(self, store: Store, views: Projector):
        self.store = store
        self.views = views

    def answer_from(self, store: Store, views: Projector) -> None:
        """Read other tables from now on: a replay's (a store that may not be written)."""
        self.store = store
        self.views = views

    def _all(self, sql: str, params: list[Any] | tuple = ()) -> list[tuple]:
        """One statement, as the store's single reads go (on PostgreSQL the thread's own
        connection: a query opens no pool and loads no event-sourcing library for it)."""
        return self.store.query(Db(None, self.store, self.views.names()).sql(sql), list(params))

    # --- holdings -----------------------------------------------------------------------

    def held_leads(self) -> list[str]:
        """Every held lead, the longest held first."""
        return [r[0] for r in self._all("SELECT lead FROM {holdings} WHERE status = 'held' ORDER BY since_position")]

    def held_by(self, rep: str) -> list[str]:
        """The leads a rep holds (not converted ones), the longest held first."""
        return [r[0] for r in self._all(
            "SELECT lead FROM {holdings} WHERE rep = %s AND status = 'held' ORDER BY since_position", [rep])]

    def leads_of(self, rep: str) -> list[str]:
        """The leads a rep holds or converted, the longest held first."""
        return [r[0] for r in self._all("SELECT lead FROM {holdings} WHERE rep = %s ORDER BY since_position", [rep])]

    def owned_around(self, rep: str, low: str, high: str) -> list[str]:
        """The leads with an ownership interval of `rep` that may cover a time between `low`
        and `high` (ISO texts a second or more either side of it: a text with a fraction of a
        second sorts before the whole second, so the bounds leave room for it). Its candidates
        for `holdings --at`; replaying each lead's own stream decides."""
        return [r[0] for r in self._all(
            "SELECT DISTINCT lead FROM {ownership_intervals} WHERE owner = %s AND from_at < %s "
            "AND (to_at IS NULL OR to_at >= %s)", [rep, high, low])]

    def owned_upto(self, rep: str, position: int) -> list[str]:
        """The leads `rep` owned when the log ended at `position` (for `holdings --upto`)."""
        return [r[0] for r in self._all(
            "SELECT DISTINCT lead FROM {ownership_intervals} WHERE owner = %s AND start_position <= %s "
            "AND (end_position IS NULL OR end_position > %s)", [rep, position, position])]

    # --- people and pools ---------------------------------------------------------------

    def pools_of(self, person: str) -> set[str]:
        """The pools a person is a member of."""
        return {r[0] for r in self._all("SELECT pool FROM {pool_members} WHERE person = %s", [person])}

    def people(self) -> list[dict[str, Any]]:
        rows = self._all("SELECT person, name, role, team, active, registered_at, deactivated_at "
                         "FROM {people} ORDER BY person")
        return [{"person": p, "name": n, "role": r, "team": t, "active": bool(a), "registered_at": at,
                 "deactivated_at": d} for p, n, r, t, a, at, d in rows]

    def pools(self) -> list[dict[str, Any]]:
        """Every pool with its counts of members, pooled and held leads (one consistent read)."""
        with self.store.reading() as cur:
            db = Db(cur, self.store, self.views.names())
            rows = db.all("SELECT pool, name, rules_version FROM {pools} ORDER BY pool")
            pooled = dict(db.all("SELECT pool, COUNT(*) FROM {pool_leads} GROUP BY pool"))
            held = dict(db.all("SELECT pool, COUNT(*) FROM {holdings} WHERE status = 'held' GROUP BY pool"))
            members = dict(db.all("SELECT pool, COUNT(*) FROM {pool_members} GROUP BY pool"))
        return [{"pool": p, "name": n, "rules_version": v, "members": members.get(p, 0),
                 "pooled_count": pooled.get(p, 0), "held_count": held.get(p, 0)} for p, n, v in rows]

    def pool_leads(self, pool_id: str) -> tuple[list[str], int, int]:
        """A pool's pooled leads (the longest pooled first), and its counts of held and converted ones."""
        with self.store.reading() as cur:
            db = Db(cur, self.store, self.views.names())
            pooled = [r[0] for r in db.all(
                "SELECT lead FROM {pool_leads} WHERE pool = %s ORDER BY since_position", [pool_id])]
            held = db.one("SELECT COUNT(*) FROM {holdings} WHERE pool = %s AND status = 'held'", [pool_id])[0]
            converted = db.one("SELECT COUNT(*) FROM {holdings} WHERE pool = %s AND status = 'converted'",
                               [pool_id])[0]
        return pooled, held, converted

    # --- disputes -----------------------------------------------------------------------

    def disputes(self, open_only: bool = False) -> list[dict[str, Any]]:
        sql = f"SELECT {', '.join(DISPUTE_COLUMNS)} FROM {{disputes}}"
        if open_only:
            sql += " WHERE status = 'open'"
        return [dict(zip(DISPUTE_COLUMNS, r, strict=True)) for r in self._all(sql + " ORDER BY open_position")]

    # --- export -------------------------------------------------------------------------

    def columns(self, model: str) -> list[str]:
        """The column names of a model's table."""
        table, _ = MODELS[model]
        with self.store.reading() as cur:
            db = Db(cur, self.store, self.views.names())
            cur.execute(db.sql(f"SELECT * FROM {{{table}}} LIMIT 0"))
            columns = [d[0] for d in cur.description]
            cur.fetchall()
        return columns

    def rows(self, model: str, columns: list[str]) -> Iterator[dict[str, Any]]:
        """Every row of a model, read in one transaction (one consistent state), a batch at a time."""
        table, order = MODELS[model]
        with self.store.reading() as cur:
            db = Db(cur, self.store, self.views.names())
            cur.execute(db.sql(f"SELECT {', '.join(columns)} FROM {{{table}}} ORDER BY {order}"))
            while rows := cur.fetchmany(2000):
                for row in rows:
                    yield {c: (bool(v) if c in BOOLEAN_COLUMNS and v is not None else v)
                           for c, v in zip(columns, row, strict=True)}
