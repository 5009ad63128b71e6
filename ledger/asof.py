"""`lead show` and `pool show`, now or as of a moment, on any store.

As of a moment, a lead is its own stream replayed to that moment, judged against its pool's
stream replayed alike; a pool's pooled leads come from the read models replayed over the
events of that moment (`projections.replay`). Now, the pool's counts come from the read
models (which answer from a replay when the store may not be written: `Fallback`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from ledger import decisions
from ledger.context import Concern
from ledger.disclosure import with_personal
from ledger.moments import Moment, resolve
from ledger.shapes import pool_view
from ledger.state import HELD, Lead, Pool, lead_stream
from ledger.values import format_time
from projections.replay import Replay


class AsOf(Concern):
    def moment(self, at: Any, upto: Any) -> Moment | None:
        return resolve(self.repo.store, self.acting.clock, at, upto)

    def lead_show(self, lead_id: str, at: Any = None, upto: Any = None) -> dict[str, Any]:
        """A lead as `lead show` prints it, as of `--at`/`--upto`."""
        self.repo.ready()
        moment = self.moment(at, upto)
        stored = self.repo.store.read_stream(lead_stream(lead_id))
        if moment is None:
            lead = self.repo.lead(lead_id, stored=stored)
            answer = lead_view(lead, self.repo.pool(lead.pool) if lead.status == HELD else None, self.acting.clock())
        else:
            lead = moment.lead(self.repo, lead_id, stored)
            pool = moment.pool(self.repo, lead.pool) if lead.status == HELD and lead.exists else None
            answer = {**lead_view(lead, pool, moment.now), **moment.label()}
        return with_personal(self.repo.store, answer, stored) if lead.exists else answer

    def pool_show(self, pool_id: str, at: Any = None, upto: Any = None) -> dict[str, Any]:
        """A pool as `pool show` prints it, as of `--at`/`--upto`."""
        self.repo.ready()
        moment = self.moment(at, upto)
        if moment is None:
            pool = self.repo.pool(pool_id)
            self.views.catch_up()
            return pool_view(pool, *self.models.pool_leads(pool_id))
        pool = moment.pool(self.repo, pool_id)
        replayed = Replay(self.repo.store, moment.keep, moment.upto)
        try:
            counts = replayed.run().pool_leads(pool_id)
        finally:
            replayed.close()
        return {**pool_view(pool, *counts), **moment.label()}


def lead_view(lead: Lead, pool: Pool | None, now: datetime) -> dict[str, Any]:
    """The shape of `lead show`; a lead not added yet has no pool, status or attributes."""
    due = decisions.deadline(lead, pool, now) if pool is not None and pool.exists else None
    return {
        "lead": lead.id, "pool": lead.pool or None, "status": lead.status if lead.exists else None,
        "owner": lead.owner, "since": format_time(lead.placed_at), "since_position": lead.placed_position,
        "last_follow_up": format_time(lead.last_follow_up), "deal": lead.deal,
        "recycle_at": format_time(due.at) if due else None, "recycle_rule": due.rule if due else None,
        "overdue": bool(due and now >= due.at),
        "attributes": msgspec.to_builtins(lead.attributes) if lead.exists else {},
        "version": lead.head.version, "disputes": [d.id for d in lead.disputes],
        **({} if lead.exists else {"exists": False}),
    }


