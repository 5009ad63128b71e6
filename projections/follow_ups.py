"""follow_ups: every follow-up logged on a lead.

Notes are stored sealed under their lead's key; a batch opens them with one key read for all
its leads. An erased lead's notes are the empty text here (the column is NOT NULL in tables
made before notes could be erased)."""

from ledger import events as ev
from ledger.disclosure import opened_notes
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

    def __init__(self) -> None:
        self._notes: dict[int, str | None] = {}

    def prepare(self, batch: Batch, events: list[tuple[int, object]]) -> None:
        super().prepare(batch, events)
        self._notes = opened_notes(batch.source, [(p, e) for p, e in events if isinstance(e, ev.FollowUpLogged)])

    def on_FollowUpLogged(self, batch: Batch, position: int, e) -> None:
        batch.rows("follow_ups").add({
            "position": position, "lead": e.lead, "rep": e.rep, "at": format_time(e.occurred_at),
            "channel": e.channel, "note": self._notes.get(position, e.note) or "",
        })
