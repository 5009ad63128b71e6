"""disputes: every dispute, open or resolved, with its outcome."""

from projections.batch import Batch, Table
from projections.model import ReadModel, occurred


class Disputes(ReadModel):
    name = "disputes"
    tables = {
        "disputes": Table("dispute TEXT PRIMARY KEY, lead TEXT NOT NULL, status TEXT NOT NULL, "
                          "opened_by TEXT NOT NULL, opened_at TEXT NOT NULL, reason TEXT NOT NULL, "
                          "owner_at_open TEXT, open_position BIGINT NOT NULL, outcome TEXT, "
                          "owner_after TEXT, resolved_by TEXT, resolved_at TEXT, rationale TEXT"),
    }
    indexes = ["disputes:lead", "disputes:status"]

    def on_DisputeOpened(self, batch: Batch, position: int, e) -> None:
        batch.rows("disputes").add({
            "dispute": e.dispute, "lead": e.lead, "status": "open", "opened_by": e.actor,
            "opened_at": occurred(e), "reason": e.reason, "owner_at_open": e.owner,
            "open_position": position, "outcome": None, "owner_after": None, "resolved_by": None,
            "resolved_at": None, "rationale": None,
        })

    def on_DisputeResolved(self, batch: Batch, position: int, e) -> None:
        batch.rows("disputes").update(
            e.dispute, status="resolved", outcome=e.outcome, owner_after=e.owner, resolved_by=e.actor,
            resolved_at=occurred(e), rationale=e.rationale)
