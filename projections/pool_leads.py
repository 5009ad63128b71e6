"""pool_leads: each unowned lead, the pool it sits in, and since when."""

from projections.batch import Batch, Table
from projections.model import ReadModel, occurred


class PoolLeads(ReadModel):
    name = "pool_leads"
    tables = {
        "pool_leads": Table("lead TEXT PRIMARY KEY, pool TEXT NOT NULL, since TEXT NOT NULL, "
                            "since_position BIGINT NOT NULL"),
    }
    indexes = ["pool_leads:pool, since_position"]

    def _pooled(self, batch: Batch, position: int, e) -> None:
        batch.rows("pool_leads").add(
            {"lead": e.lead, "pool": e.pool, "since": occurred(e), "since_position": position})

    on_LeadAdded = on_LeadReleased = on_LeadReturned = on_LeadRecycled = _pooled

    def _taken(self, batch: Batch, position: int, e) -> None:
        batch.rows("pool_leads").delete(e.lead)

    on_LeadClaimed = on_LeadAssigned = _taken

    def on_LeadMoved(self, batch: Batch, position: int, e) -> None:
        batch.rows("pool_leads").update(e.lead, pool=e.pool, since=occurred(e),
                                        since_position=position)
