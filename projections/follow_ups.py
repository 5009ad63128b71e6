"""follow_ups: every follow-up logged on a lead."""

from ledger.values import format_time
from projections.runner import Db, ReadModel


class FollowUps(ReadModel):
    name = "follow_ups"
    tables = {
        "follow_ups": "position BIGINT PRIMARY KEY, lead TEXT NOT NULL, rep TEXT NOT NULL, "
                      "at TEXT NOT NULL, channel TEXT NOT NULL, note TEXT NOT NULL",
    }
    indexes = ["follow_ups:lead, position", "follow_ups:rep"]

    def on_FollowUpLogged(self, db: Db, stored, e) -> None:
        db.exec(
            "INSERT INTO {follow_ups} (position, lead, rep, at, channel, note) "
            "VALUES (%s, %s, %s, %s, %s, %s)",
            [stored.position, e.lead, e.rep, format_time(e.occurred_at), e.channel, e.note],
        )
