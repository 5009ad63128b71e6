"""pools and pool_members: each pool with the rules in force (latest version), and its members."""

from ledger.values import format_time
from projections.runner import Db, ReadModel

RULES = ("claim_limit", "daily_claim_limit", "idle_limit", "hold_limit", "cooldown", "warn_before")


class Pools(ReadModel):
    name = "pools"
    tables = {
        "pools": "pool TEXT PRIMARY KEY, name TEXT NOT NULL, rules_version INTEGER NOT NULL, "
                 + ", ".join(f"{r} BIGINT NOT NULL" for r in RULES)
                 + ", created_at TEXT NOT NULL",
        "pool_members": "pool TEXT NOT NULL, person TEXT NOT NULL, PRIMARY KEY (pool, person)",
    }

    def on_PoolCreated(self, db: Db, stored, e) -> None:
        db.exec(
            "INSERT INTO {pools} (pool, name, rules_version, " + ", ".join(RULES) + ", created_at) "
            "VALUES (%s, %s, 1, " + ", ".join(["%s"] * len(RULES)) + ", %s)",
            [e.pool, e.name, *(getattr(e.rules, r) for r in RULES), format_time(e.occurred_at)],
        )

    def on_PoolRulesChanged(self, db: Db, stored, e) -> None:
        db.exec(
            "UPDATE {pools} SET rules_version = %s, " + ", ".join(f"{r} = %s" for r in RULES)
            + " WHERE pool = %s",
            [e.rules_version, *(getattr(e.rules, r) for r in RULES), e.pool],
        )

    def on_MembersGranted(self, db: Db, stored, e) -> None:
        db.many(
            "INSERT INTO {pool_members} (pool, person) VALUES (%s, %s) ON CONFLICT DO NOTHING",
            [(e.pool, p) for p in e.people],
        )

    def on_MembersRevoked(self, db: Db, stored, e) -> None:
        db.many("DELETE FROM {pool_members} WHERE pool = %s AND person = %s",
                [(e.pool, p) for p in e.people])
