"""holdings: each lead a rep holds (or has converted), with its next recycle deadline.

The deadline follows the pool's latest rules: a rule change recomputes it for every lead
held in that pool.
"""

from ledger.decisions import next_deadline
from ledger.events import Rules
from ledger.values import format_time, parse_time
from projections.batch import Batch, Table
from projections.pools import RULES
from projections.runner import ReadModel


class Holdings(ReadModel):
    name = "holdings"
    tables = {
        "holdings": Table("lead TEXT PRIMARY KEY, rep TEXT NOT NULL, pool TEXT NOT NULL, "
                          "status TEXT NOT NULL, since TEXT NOT NULL, since_position BIGINT NOT NULL, "
                          "last_follow_up TEXT, recycle_at TEXT, recycle_rule TEXT, deal TEXT"),
    }
    indexes = ["holdings:rep, pool", "holdings:pool, status"]

    def _rules(self, batch: Batch, pool: str) -> Rules:
        """The pool's latest rules (the pools model has applied the event already)."""
        rules = batch.memo.get(("rules", pool))
        if rules is None:
            row = batch.rows("pools").get(pool)
            rules = batch.memo[("rules", pool)] = Rules(**{r: row[r] for r in RULES})
        return rules

    def _deadline(self, rules: Rules, since, last_follow_up) -> tuple[str | None, str | None]:
        found = next_deadline(rules, since, last_follow_up)
        return (format_time(found[1]), found[0]) if found else (None, None)

    def _taken(self, batch: Batch, position: int, e) -> None:
        at, rule = self._deadline(self._rules(batch, e.pool), e.occurred_at, None)
        batch.rows("holdings").add({
            "lead": e.lead, "rep": e.rep, "pool": e.pool, "status": "held",
            "since": format_time(e.occurred_at), "since_position": position, "last_follow_up": None,
            "recycle_at": at, "recycle_rule": rule, "deal": None,
        })

    on_LeadClaimed = on_LeadAssigned = _taken  # from the pool: no row yet

    def on_LeadReassigned(self, batch: Batch, position: int, e) -> None:
        holdings = batch.rows("holdings")
        row = holdings.get(e.lead)
        if row is not None and row["status"] == "converted":
            holdings.update(e.lead, rep=e.rep)
            return
        holdings.delete(e.lead)
        self._taken(batch, position, e)

    def _left(self, batch: Batch, position: int, e) -> None:
        batch.rows("holdings").delete(e.lead)

    on_LeadReleased = on_LeadReturned = on_LeadRecycled = _left

    def on_FollowUpLogged(self, batch: Batch, position: int, e) -> None:
        holdings = batch.rows("holdings")
        row = holdings.get(e.lead)
        if row is None:
            return
        at, rule = (None, None)
        if row["status"] == "held":
            at, rule = self._deadline(self._rules(batch, row["pool"]), parse_time(row["since"]), e.occurred_at)
        holdings.update(e.lead, last_follow_up=format_time(e.occurred_at), recycle_at=at, recycle_rule=rule)

    def on_LeadConverted(self, batch: Batch, position: int, e) -> None:
        batch.rows("holdings").update(e.lead, status="converted", deal=e.deal, recycle_at=None,
                                      recycle_rule=None)

    def on_PoolRulesChanged(self, batch: Batch, position: int, e) -> None:
        batch.memo[("rules", e.pool)] = e.rules
        holdings = batch.rows("holdings")
        holdings.load_where("pool", [e.pool], "status = 'held'")
        for row in holdings.values():
            if row["pool"] == e.pool and row["status"] == "held":
                last = row["last_follow_up"]
                at, rule = self._deadline(e.rules, parse_time(row["since"]), parse_time(last) if last else None)
                holdings.update(row["lead"], recycle_at=at, recycle_rule=rule)
