"""pools and pool_members: each pool with the rules in force (latest version), and its members."""

from projections.batch import Batch, Table
from projections.model import ReadModel, occurred

RULES = ("claim_limit", "daily_claim_limit", "idle_limit", "hold_limit", "cooldown", "warn_before")


class Pools(ReadModel):
    name = "pools"
    tables = {
        "pools": Table("pool TEXT PRIMARY KEY, name TEXT NOT NULL, rules_version INTEGER NOT NULL, "
                       + ", ".join(f"{r} BIGINT NOT NULL" for r in RULES)
                       + ", created_at TEXT NOT NULL"),
        "pool_members": Table("pool TEXT NOT NULL, person TEXT NOT NULL, PRIMARY KEY (pool, person)"),
    }

    def on_PoolCreated(self, batch: Batch, position: int, e) -> None:
        batch.rows("pools").add({
            "pool": e.pool, "name": e.name, "rules_version": 1,
            **{r: getattr(e.rules, r) for r in RULES}, "created_at": occurred(e),
        })

    def on_PoolRulesChanged(self, batch: Batch, position: int, e) -> None:
        batch.rows("pools").update(e.pool, rules_version=e.rules_version,
                                   **{r: getattr(e.rules, r) for r in RULES})

    def on_MembersGranted(self, batch: Batch, position: int, e) -> None:
        members = batch.rows("pool_members")
        for person in e.people:
            members.put({"pool": e.pool, "person": person})

    def on_MembersRevoked(self, batch: Batch, position: int, e) -> None:
        members = batch.rows("pool_members")
        for person in e.people:
            members.delete((e.pool, person))
