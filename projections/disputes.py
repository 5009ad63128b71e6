"""disputes: every dispute, open or resolved, with its outcome."""

from ledger.values import format_time
from projections.runner import Db, ReadModel


class Disputes(ReadModel):
    name = "disputes"
    tables = {
        "disputes": "dispute TEXT PRIMARY KEY, lead TEXT NOT NULL, status TEXT NOT NULL, "
                    "opened_by TEXT NOT NULL, opened_at TEXT NOT NULL, reason TEXT NOT NULL, "
                    "owner_at_open TEXT, open_position BIGINT NOT NULL, outcome TEXT, "
                    "owner_after TEXT, resolved_by TEXT, resolved_at TEXT, rationale TEXT",
    }
    indexes = ["disputes:lead", "disputes:status"]

    def on_DisputeOpened(self, db: Db, stored, e) -> None:
        db.exec(
            "INSERT INTO {disputes} (dispute, lead, status, opened_by, opened_at, reason, "
            "owner_at_open, open_position) VALUES (%s, %s, 'open', %s, %s, %s, %s, %s)",
            [e.dispute, e.lead, e.actor, format_time(e.occurred_at), e.reason, e.owner,
             stored.position],
        )

    def on_DisputeResolved(self, db: Db, stored, e) -> None:
        db.exec(
            "UPDATE {disputes} SET status = 'resolved', outcome = %s, owner_after = %s, "
            "resolved_by = %s, resolved_at = %s, rationale = %s WHERE dispute = %s",
            [e.outcome, e.owner, e.actor, format_time(e.occurred_at), e.rationale, e.dispute],
        )
