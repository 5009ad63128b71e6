"""people: every registered person, with role and whether still active."""

from ledger.values import format_time
from projections.runner import Db, ReadModel


class People(ReadModel):
    name = "people"
    tables = {
        "people": "person TEXT PRIMARY KEY, name TEXT NOT NULL, role TEXT NOT NULL, team TEXT, "
                  "active BOOLEAN NOT NULL, registered_at TEXT NOT NULL, deactivated_at TEXT",
    }

    def on_PersonRegistered(self, db: Db, stored, e) -> None:
        db.exec(
            "INSERT INTO {people} (person, name, role, team, active, registered_at) "
            "VALUES (%s, %s, %s, %s, TRUE, %s)",
            [e.person, e.name, e.role, e.team, format_time(e.occurred_at)],
        )

    def on_PersonDeactivated(self, db: Db, stored, e) -> None:
        db.exec("UPDATE {people} SET active = FALSE, deactivated_at = %s WHERE person = %s",
                [format_time(e.occurred_at), e.person])
