"""people: every registered person, with role and whether still active."""

from projections.batch import Batch, Table
from projections.model import ReadModel, occurred


class People(ReadModel):
    name = "people"
    tables = {
        "people": Table("person TEXT PRIMARY KEY, name TEXT NOT NULL, role TEXT NOT NULL, team TEXT, "
                        "active BOOLEAN NOT NULL, registered_at TEXT NOT NULL, deactivated_at TEXT"),
    }

    def on_PersonRegistered(self, batch: Batch, position: int, e) -> None:
        batch.rows("people").add({
            "person": e.person, "name": e.name, "role": e.role, "team": e.team, "active": True,
            "registered_at": occurred(e), "deactivated_at": None,
        })

    def on_PersonDeactivated(self, batch: Batch, position: int, e) -> None:
        batch.rows("people").update(e.person, active=False, deactivated_at=occurred(e))
