"""`report --from T1 --to T2`: what happened in a business-time period [T1, T2).

One pass over the log. Each lead's place (pool, owner) is followed twice: with the events done
before T1 (the start) and with those done before T2 (the end); within one lead events never go
back in time, so applying them in log order gives both, backdated events included. Events
inside the period are counted for their rep and pool, and each change of a pool's size inside
the period is kept (time, pool, +1/-1) for the chart of its size.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime, timedelta
from typing import Any

from ledger import events as ev
from ledger.errors import InvalidInput
from ledger.i18n import _
from ledger.repository import Repository
from ledger.store import Store, Stored
from ledger.values import format_time, parse_time

BACKDATED = timedelta(minutes=5)
REP_COUNTS = ("claims", "assigned_in", "reassigned_in", "reassigned_out", "released", "converted", "follow_ups",
              "backdated")
POOL_COUNTS = ("added", "claimed", "returned", "moved_in", "moved_out")
RETURNS = (ev.LeadReleased, ev.LeadRecycled, ev.LeadReturned)
BATCH = 5000


class _Places:
    """Where each lead is (pool, owner), as the events applied so far leave it."""

    def __init__(self) -> None:
        self.pool: dict[str, str] = {}
        self.owner: dict[str, str] = {}

    def apply(self, e: ev.Event) -> tuple[str | None, bool, bool]:
        """Apply one event; (the lead's pool, whether it was pooled before, and after)."""
        lead = getattr(e, "lead", None)
        if lead is None or not isinstance(e, (ev.LeadAdded, ev.LeadMoved, *ev.OWNERSHIP_STARTS, *RETURNS)):
            return None, False, False
        before = lead in self.pool and lead not in self.owner
        old_pool = self.pool.get(lead)
        self.pool[lead] = e.pool
        if isinstance(e, ev.OWNERSHIP_STARTS):
            self.owner[lead] = e.rep
        elif isinstance(e, RETURNS):
            self.owner.pop(lead, None)
        after = lead not in self.owner
        return old_pool, before, after

    def held(self) -> Counter:
        return Counter(self.owner.values())

    def pooled(self) -> Counter:
        return Counter(p for lead, p in self.pool.items() if lead not in self.owner)


class Period:
    def __init__(self, store: Store, repo: Repository) -> None:
        self.store = store
        self.repo = repo

    def report(self, start: Any, end: Any, pool: str | None = None, rep: str | None = None) -> dict[str, Any]:
        self.repo.ready()
        t1, t2 = parse_time(start, "--from"), parse_time(end, "--to")
        if t1 is None or t2 is None or t1 >= t2:
            raise InvalidInput(_("give --from and --to, with --from before --to"))
        if pool is not None:
            self.repo.pool(pool)
        if rep is not None:
            self.repo.known_person(rep)
        tally = _Tally(t1, t2, pool)
        position = 0
        while batch := self.store.read_log(after=position, limit=BATCH):
            for stored in batch:
                tally.add(stored)
            position = batch[-1].position
        return tally.result(rep)


class _Tally:
    def __init__(self, t1: datetime, t2: datetime, pool: str | None) -> None:
        self.t1, self.t2, self.only_pool = t1, t2, pool
        self.start, self.end = _Places(), _Places()
        self.reps: dict[str, Counter] = defaultdict(Counter)
        self.pools: dict[str, Counter] = defaultdict(Counter)
        self.changes: list[tuple[datetime, str, int]] = []  # a pool's size changing in the period
        self.lead_pool: dict[str, str] = {}  # the pool a lead is in, as the log goes

    def add(self, s: Stored) -> None:
        e = s.event
        if isinstance(e, ev.PoolCreated) and e.occurred_at < self.t2:
            self.pools[e.pool]  # every pool of the period is listed, even one nothing happened in  # noqa: B018
        lead_pool = getattr(e, "pool", None) or self.lead_pool.get(getattr(e, "lead", None) or "")
        if getattr(e, "lead", None) and lead_pool:
            self.lead_pool[e.lead] = lead_pool
        if self.only_pool is not None and lead_pool != self.only_pool and not (
                isinstance(e, ev.LeadMoved) and e.from_pool == self.only_pool):
            return
        if e.occurred_at < self.t1:
            self.start.apply(e)
        if e.occurred_at < self.t2:
            old_pool, before, after = self.end.apply(e)
            if e.occurred_at >= self.t1:
                self._count(s, e)
                if old_pool is not None or after:
                    self._size_change(e, old_pool, before, after)

    def _size_change(self, e: ev.Event, old_pool: str | None, before: bool, after: bool) -> None:
        if before and old_pool is not None and (not after or old_pool != e.pool):
            self.changes.append((e.occurred_at, old_pool, -1))
        if after and (not before or old_pool != e.pool):
            self.changes.append((e.occurred_at, e.pool, +1))

    def _count(self, s: Stored, e: ev.Event) -> None:
        reps, pools = self.reps, self.pools
        if (s.recorded_at - e.occurred_at > BACKDATED and e.actor_kind == "person"
                and not isinstance(e, (ev.HoldingsChanged, ev.HoldingsClosed))):  # a claim's own book-keeping
            reps[e.actor]["backdated"] += 1
        if isinstance(e, ev.LeadAdded):
            pools[e.pool]["added"] += 1
        elif isinstance(e, ev.LeadClaimed):
            reps[e.rep]["claims"] += 1
            pools[e.pool]["claimed"] += 1
        elif isinstance(e, ev.Refusal):
            reps[e.rep]["refused:" + e.reason] += 1
        elif isinstance(e, ev.LeadAssigned):
            reps[e.rep]["assigned_in"] += 1
        elif isinstance(e, ev.LeadReassigned):
            reps[e.rep]["reassigned_in"] += 1
            reps[e.from_rep]["reassigned_out"] += 1
        elif isinstance(e, RETURNS):
            pools[e.pool]["returned"] += 1
            if isinstance(e, ev.LeadReleased):
                reps[e.rep]["released"] += 1
            elif isinstance(e, ev.LeadRecycled):
                reps[e.rep]["recycled:" + e.rule] += 1
            else:
                reps[e.rep]["returned"] += 1
        elif isinstance(e, ev.LeadConverted):
            reps[e.rep]["converted"] += 1
        elif isinstance(e, ev.FollowUpLogged):
            reps[e.rep]["follow_ups"] += 1
        elif isinstance(e, ev.LeadMoved):
            pools[e.pool]["moved_in"] += 1
            pools[e.from_pool]["moved_out"] += 1

    def result(self, only_rep: str | None) -> dict[str, Any]:
        held_start, held_end = self.start.held(), self.end.held()
        pooled_start, pooled_end = self.start.pooled(), self.end.pooled()
        names = set(self.reps) | set(held_start) | set(held_end)
        reps = [_rep_row(name, self.reps[name], held_start[name], held_end[name])
                for name in sorted(names) if only_rep in (None, name)]
        pool_names = sorted({*self.pools, *pooled_start, *pooled_end} - {None})
        if self.only_pool is not None:
            pool_names = [self.only_pool]
        pools = [{"pool": p, "pooled_at_start": pooled_start[p], "pooled_at_end": pooled_end[p],
                  **{k: self.pools[p][k] for k in POOL_COUNTS},
                  "sizes": _sizes(self.t1, pooled_start[p], [(t, d) for t, q, d in self.changes if q == p])}
                 for p in pool_names]
        return {"from": format_time(self.t1), "to": format_time(self.t2), "pool": self.only_pool,
                "rep": only_rep, "reps": reps, "pools": pools}


def _rep_row(rep: str, counts: Counter, held_start: int, held_end: int) -> dict[str, Any]:
    refused = {k.split(":", 1)[1]: n for k, n in sorted(counts.items()) if k.startswith("refused:")}
    return {"rep": rep, "held_at_start": held_start, "held_at_end": held_end,
            "claims": counts["claims"], "refused": refused,
            "assigned_in": counts["assigned_in"], "reassigned_in": counts["reassigned_in"],
            "reassigned_out": counts["reassigned_out"], "released": counts["released"],
            "recycled": {"idle_limit": counts["recycled:idle_limit"], "hold_limit": counts["recycled:hold_limit"]},
            "returned": counts["returned"], "converted": counts["converted"], "follow_ups": counts["follow_ups"],
            "backdated": counts["backdated"]}


def _sizes(t1: datetime, start: int, changes: list[tuple[datetime, int]]) -> list[dict[str, Any]]:
    """The pool's size at the start and after each moment it changed in the period."""
    out = [{"at": format_time(t1), "size": start}]
    size = start
    for at, delta in sorted(changes):
        size += delta
        if out[-1]["at"] == format_time(at):
            out[-1]["size"] = size
        else:
            out.append({"at": format_time(at), "size": size})
    return out
