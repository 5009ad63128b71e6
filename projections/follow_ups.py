"""follow_ups: every follow-up logged on a lead.

Notes are stored sealed under their lead's key; a batch opens them with one key read for all
its leads. An erased lead's notes are the empty text here (the column is NOT NULL in tables
made before notes could be erased)."""

from typing import Any

from ledger import events as ev
from ledger import sealing
from ledger.state import lead_stream
from ledger.store.personal import ERASED
from projections.batch import Batch, Table
from projections.model import ReadModel, occurred


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
        self._notes = self._opened(batch, [(p, e) for p, e in events if isinstance(e, ev.FollowUpLogged)])

    @staticmethod
    def _opened(batch: Batch, events: list[tuple[int, ev.FollowUpLogged]]) -> dict[int, str | None]:
        """The notes of these follow-ups: opened with one key read for all their leads and one
        cipher per lead; None once erased. Nothing else of a lead is opened."""
        if not events:
            return {}
        keys = batch.source.personal.keys_of([e.lead for _, e in events])
        versions = batch.versions
        openers: dict[str, tuple[Any, str]] = {}  # each lead's opener, and its stream
        notes: dict[int, str | None] = {}
        for position, e in events:
            lead = e.lead
            key = keys.get(lead)
            if key == ERASED:
                notes[position] = None
            elif e.sealed and key:
                opener = openers.get(lead)
                if opener is None:
                    opener = openers[lead] = (sealing.note_opener(key), lead_stream(lead))
                notes[position] = opener[0](e, opener[1], versions[position])
        return notes

    def on_FollowUpLogged(self, batch: Batch, position: int, e) -> None:
        batch.rows("follow_ups").add({
            "position": position, "lead": e.lead, "rep": e.rep, "at": occurred(e),
            "channel": e.channel, "note": self._notes.get(position, e.note) or "",
        })
