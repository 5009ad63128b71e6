"""pool_leads: each unowned lead, the pool it sits in, and since when."""

from ledger.values import format_time
from projections.runner import Db, ReadModel


class PoolLeads(ReadModel):
    name = "pool_leads"
    tables = {
        "pool_leads": "lead TEXT PRIMARY KEY, pool TEXT NOT NULL, since TEXT NOT NULL, "
                      "since_position BIGINT NOT NULL",
    }
    indexes = ["pool_leads:pool, since_position"]

    def _pooled(self, db: Db, stored, e) -> None:
        db.exec(
            "INSERT INTO {pool_leads} (lead, pool, since, since_position) VALUES (%s, %s, %s, %s)",
            [e.lead, e.pool, format_time(e.occurred_at), stored.position],
        )

    on_LeadAdded = on_LeadReleased = on_LeadReturned = on_LeadRecycled = _pooled

    def _taken(self, db: Db, stored, e) -> None:
        db.exec("DELETE FROM {pool_leads} WHERE lead = %s", [e.lead])

    on_LeadClaimed = on_LeadAssigned = _taken

    def on_LeadMoved(self, db: Db, stored, e) -> None:
        db.exec("UPDATE {pool_leads} SET pool = %s, since = %s, since_position = %s WHERE lead = %s",
                [e.pool, format_time(e.occurred_at), stored.position, e.lead])
