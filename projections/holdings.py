"""holdings: each lead a rep holds (or has converted), with its next recycle deadline.

The deadline follows the pool's latest rules: a rule change recomputes it for every lead
held in that pool.
"""

from ledger.decisions import next_deadline
from ledger.events import Rules
from ledger.values import format_time, parse_time
from projections.pools import RULES
from projections.runner import Db, ReadModel


class Holdings(ReadModel):
    name = "holdings"
    tables = {
        "holdings": "lead TEXT PRIMARY KEY, rep TEXT NOT NULL, pool TEXT NOT NULL, "
                    "status TEXT NOT NULL, since TEXT NOT NULL, since_position BIGINT NOT NULL, "
                    "last_follow_up TEXT, recycle_at TEXT, recycle_rule TEXT, deal TEXT",
    }
    indexes = ["holdings:rep, pool", "holdings:pool, status"]

    def _rules(self, db: Db, pool: str) -> Rules:
        """The pool's latest rules, remembered for the rest of the transaction."""
        rules = db.memo.get(("rules", pool))
        if rules is None:
            row = db.one("SELECT " + ", ".join(RULES) + " FROM {pools} WHERE pool = %s", [pool])
            rules = db.memo[("rules", pool)] = Rules(**dict(zip(RULES, row, strict=True)))
        return rules

    def _deadline(self, db: Db, pool: str, since, last_follow_up) -> tuple[str | None, str | None]:
        found = next_deadline(self._rules(db, pool), since, last_follow_up)
        return (format_time(found[1]), found[0]) if found else (None, None)

    def _taken(self, db: Db, stored, e) -> None:
        db.memo[("held", e.lead)] = (e.pool, e.occurred_at, "held")
        at, rule = self._deadline(db, e.pool, e.occurred_at, None)
        db.exec(
            "INSERT INTO {holdings} (lead, rep, pool, status, since, since_position, recycle_at, "
            "recycle_rule) VALUES (%s, %s, %s, 'held', %s, %s, %s, %s)",
            [e.lead, e.rep, e.pool, format_time(e.occurred_at), stored.position, at, rule],
        )

    on_LeadClaimed = on_LeadAssigned = _taken  # from the pool: no row yet

    def on_LeadReassigned(self, db: Db, stored, e) -> None:
        row = self._row(db, e.lead)
        if row is not None and row[2] == "converted":
            db.exec("UPDATE {holdings} SET rep = %s WHERE lead = %s", [e.rep, e.lead])
            return
        db.exec("DELETE FROM {holdings} WHERE lead = %s", [e.lead])
        self._taken(db, stored, e)

    def _left(self, db: Db, stored, e) -> None:
        db.memo[("held", e.lead)] = None
        db.exec("DELETE FROM {holdings} WHERE lead = %s", [e.lead])

    on_LeadReleased = on_LeadReturned = on_LeadRecycled = _left

    def _row(self, db: Db, lead: str) -> tuple | None:
        """(pool, since, status) of a holdings row: as written earlier in this transaction,
        or as stored."""
        key = ("held", lead)
        if key not in db.memo:
            row = db.one("SELECT pool, since, status FROM {holdings} WHERE lead = %s", [lead])
            db.memo[key] = (row[0], parse_time(row[1]), row[2]) if row else None
        return db.memo[key]

    def on_FollowUpLogged(self, db: Db, stored, e) -> None:
        row = self._row(db, e.lead)
        if row is None:
            return
        at, rule = (None, None)
        if row[2] == "held":
            at, rule = self._deadline(db, row[0], row[1], e.occurred_at)
        db.exec("UPDATE {holdings} SET last_follow_up = %s, recycle_at = %s, recycle_rule = %s "
                "WHERE lead = %s", [format_time(e.occurred_at), at, rule, e.lead])

    def on_LeadConverted(self, db: Db, stored, e) -> None:
        row = db.memo.get(("held", e.lead))
        if row is not None:
            db.memo[("held", e.lead)] = (row[0], row[1], "converted")
        db.exec("UPDATE {holdings} SET status = 'converted', deal = %s, recycle_at = NULL, "
                "recycle_rule = NULL WHERE lead = %s", [e.deal, e.lead])

    def on_PoolRulesChanged(self, db: Db, stored, e) -> None:
        db.memo[("rules", e.pool)] = e.rules
        rows = db.all("SELECT lead, since, last_follow_up FROM {holdings} "
                      "WHERE pool = %s AND status = 'held'", [e.pool])
        updates = []
        for lead, since, last in rows:
            found = next_deadline(e.rules, parse_time(since), parse_time(last) if last else None)
            updates.append((format_time(found[1]) if found else None, found[0] if found else None, lead))
        db.many("UPDATE {holdings} SET recycle_at = %s, recycle_rule = %s WHERE lead = %s", updates)
