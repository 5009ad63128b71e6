"""holdings: each lead a rep holds (or has converted), with its next recycle deadline.

The deadline follows the pool's latest rules: a rule change recomputes it for every lead
held in that pool. It is computed once per batch for each lead the batch touched, at the
end, from the rules in force then: what computing it at each event and again at each rule
change comes to.
"""

from ledger.decisions import next_deadline
from ledger.events import Rules
from ledger.values import format_time, parse_time
from projections.batch import Batch, Table
from projections.model import ReadModel, occurred
from projections.pools import RULES


class Holdings(ReadModel):
    name = "holdings"
    tables = {
        "holdings": Table("lead TEXT PRIMARY KEY, rep TEXT NOT NULL, pool TEXT NOT NULL, "
                          "status TEXT NOT NULL, since TEXT NOT NULL, since_position BIGINT NOT NULL, "
                          "last_follow_up TEXT, recycle_at TEXT, recycle_rule TEXT, deal TEXT"),
    }
    indexes = ["holdings:rep, pool", "holdings:pool, status"]
    lookups = ["holdings:pool, status"]  # a rule change reads the pool's held leads

    def prepare(self, batch: Batch, events) -> None:
        super().prepare(batch, events)
        pools = {getattr(e, "pool", None) for _, e in events}
        pools.discard(None)
        batch.rows("pools").load(pools)  # their rules
        batch.memo["due"] = set()  # the leads whose deadline the end of the batch computes

    def _taken(self, batch: Batch, position: int, e) -> None:
        batch.rows("holdings").add({
            "lead": e.lead, "rep": e.rep, "pool": e.pool, "status": "held",
            "since": occurred(e), "since_position": position, "last_follow_up": None,
            "recycle_at": None, "recycle_rule": None, "deal": None,
        })
        batch.memo["due"].add(e.lead)

    on_LeadClaimed = on_LeadAssigned = _taken  # from the pool: no row yet

    def on_LeadReassigned(self, batch: Batch, position: int, e) -> None:
        holdings = batch.rows("holdings")
        row = holdings.get(e.lead)
        if row is not None and row["status"] == "converted":  # the deal stays; its holder and his start change
            holdings.update(e.lead, rep=e.rep, since=occurred(e), since_position=position, last_follow_up=None)
            return
        holdings.delete(e.lead)
        self._taken(batch, position, e)

    def _left(self, batch: Batch, position: int, e) -> None:
        batch.rows("holdings").delete(e.lead)

    on_LeadReleased = on_LeadReturned = on_LeadRecycled = _left

    def on_FollowUpLogged(self, batch: Batch, position: int, e) -> None:
        if batch.rows("holdings").update(e.lead, last_follow_up=occurred(e)) is not None:
            batch.memo["due"].add(e.lead)

    def on_LeadConverted(self, batch: Batch, position: int, e) -> None:
        batch.rows("holdings").update(e.lead, status="converted", deal=e.deal, recycle_at=None,
                                      recycle_rule=None)

    def on_PoolRulesChanged(self, batch: Batch, position: int, e) -> None:
        holdings, due = batch.rows("holdings"), batch.memo["due"]
        holdings.load_where("pool", [e.pool], "status = 'held'")
        due.update(row["lead"] for row in holdings.values()
                   if row["pool"] == e.pool and row["status"] == "held")

    def finish(self, batch: Batch) -> None:
        holdings, pools, rules = batch.rows("holdings"), batch.rows("pools"), {}
        for lead in batch.memo["due"]:
            row = holdings.get(lead)
            if row is None:
                continue
            at = rule = None
            if row["status"] == "held":
                pool, last = row["pool"], row["last_follow_up"]
                if pool not in rules:
                    rules[pool] = _rules(pools.get(pool))
                found = rules[pool] and next_deadline(rules[pool], parse_time(row["since"]),
                                                      parse_time(last) if last else None)
                if found:
                    at, rule = format_time(found[1]), found[0]
            holdings.update(lead, recycle_at=at, recycle_rule=rule)


def _rules(pool: dict | None) -> Rules | None:
    """A pool row's rules; None when there is no row: a replay as of a moment before the pool
    was created (a lead's history may be stated earlier), when no rules were in force."""
    return Rules(**{r: pool[r] for r in RULES}) if pool is not None else None
