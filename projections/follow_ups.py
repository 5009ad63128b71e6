"""follow_ups: every follow-up logged on a lead."""

from ledger.values import format_time
from projections.batch import Batch, Table
from projections.model import ReadModel


class FollowUps(ReadModel):
    name = "follow_ups"
    tables = {
        "follow_ups": Table("position BIGINT PRIMARY KEY, lead TEXT NOT NULL, rep TEXT NOT NULL, "
                            "at TEXT NOT NULL, channel TEXT NOT NULL, note TEXT NOT NULL", fresh_keys=True),
    }
    indexes = ["follow_ups:lead, position", "follow_ups:rep"]

    def on_FollowUpLogged(self, batch: Batch, position: int, e) -> None:
        batch.rows("follow_ups").add({
            "position": position, "lead": e.lead, "rep": e.rep, "at": format_time(e.occurred_at),
            "channel": e.channel, "note": e.note,
        })
