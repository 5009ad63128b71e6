"""ownership_intervals: one row per period a rep owned a lead, from the event that started
it to the event that ended it (open intervals have no end)."""

from ledger.values import format_time
from projections.runner import Db, ReadModel


class OwnershipIntervals(ReadModel):
    name = "ownership_intervals"
    tables = {
        "ownership_intervals": "start_position BIGINT PRIMARY KEY, lead TEXT NOT NULL, "
                               "owner TEXT NOT NULL, pool TEXT NOT NULL, from_at TEXT NOT NULL, "
                               "to_at TEXT, end_position BIGINT, started_by TEXT NOT NULL, "
                               "ended_by TEXT, dispute TEXT",
    }
    indexes = ["ownership_intervals:lead, start_position", "ownership_intervals:owner"]

    def _end(self, db: Db, stored, e) -> None:
        db.exec(
            "UPDATE {ownership_intervals} SET to_at = %s, end_position = %s, ended_by = %s "
            "WHERE lead = %s AND end_position IS NULL",
            [format_time(e.occurred_at), stored.position, type(e).__name__, e.lead],
        )

    def _start(self, db: Db, stored, e) -> None:
        db.exec(
            "INSERT INTO {ownership_intervals} (start_position, lead, owner, pool, from_at, "
            "started_by, dispute) VALUES (%s, %s, %s, %s, %s, %s, %s)",
            [stored.position, e.lead, e.rep, e.pool, format_time(e.occurred_at),
             type(e).__name__, getattr(e, "dispute", None)],
        )

    on_LeadClaimed = on_LeadAssigned = _start
    on_LeadReleased = on_LeadReturned = on_LeadRecycled = _end

    def on_LeadReassigned(self, db: Db, stored, e) -> None:
        self._end(db, stored, e)
        self._start(db, stored, e)
