"""ownership_intervals: one row per period a rep owned a lead, from the event that started
it to the event that ended it (open intervals have no end)."""

from projections.batch import Batch, Table
from projections.model import ReadModel, occurred

TABLE = "ownership_intervals"
OPEN = "open_intervals"  # batch memo: lead -> the start positions of its open intervals


class OwnershipIntervals(ReadModel):
    name = "ownership_intervals"
    tables = {
        TABLE: Table("start_position BIGINT PRIMARY KEY, lead TEXT NOT NULL, "
                     "owner TEXT NOT NULL, pool TEXT NOT NULL, from_at TEXT NOT NULL, "
                     "to_at TEXT, end_position BIGINT, started_by TEXT NOT NULL, "
                     "ended_by TEXT, dispute TEXT", fresh_keys=True),
    }
    # The last two are the index of the past: a rep's intervals that end after a moment (or are
    # open), with what `holdings --at` / `--upto` check in them, read from the index alone.
    indexes = ["ownership_intervals:lead, start_position", "ownership_intervals:owner",
               "ownership_intervals:owner, to_at, from_at, lead",
               "ownership_intervals:owner, end_position, start_position, lead"]
    lookups = ["ownership_intervals:lead, start_position"]  # each batch reads its leads' open intervals

    def prepare(self, batch: Batch, events) -> None:
        batch.memo[OPEN] = {}
        self._load_open(batch, {e.lead for _, e in events})

    def _load_open(self, batch: Batch, leads) -> None:
        """Remember the start positions of these leads' open intervals."""
        opens = batch.memo[OPEN]
        leads = [lead for lead in leads if lead not in opens]
        for lead in leads:
            opens[lead] = []
        for row in batch.rows(TABLE).load_where("lead", leads, "end_position IS NULL"):
            if row["end_position"] is None:
                opens[row["lead"]].append(row["start_position"])

    def _open(self, batch: Batch, lead: str) -> list[int]:
        opens = batch.memo[OPEN]
        if lead not in opens:
            self._load_open(batch, [lead])
        return opens[lead]

    def _end(self, batch: Batch, position: int, e) -> None:
        intervals, started = batch.rows(TABLE), self._open(batch, e.lead)
        for start in started:
            intervals.update(start, to_at=occurred(e), end_position=position,
                             ended_by=type(e).__name__)
        started.clear()

    def _start(self, batch: Batch, position: int, e) -> None:
        batch.rows(TABLE).add({
            "start_position": position, "lead": e.lead, "owner": e.rep, "pool": e.pool,
            "from_at": occurred(e), "to_at": None, "end_position": None,
            "started_by": type(e).__name__, "ended_by": None, "dispute": getattr(e, "dispute", None),
        })
        self._open(batch, e.lead).append(position)

    on_LeadClaimed = on_LeadAssigned = _start
    on_LeadReleased = on_LeadReturned = on_LeadRecycled = _end

    def on_LeadReassigned(self, batch: Batch, position: int, e) -> None:
        self._end(batch, position, e)
        self._start(batch, position, e)
