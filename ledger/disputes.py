"""dispute open | resolve: the writes (the evidence and lists are in `ledger.evidence`)."""

from __future__ import annotations

from typing import Any

from ledger import decisions
from ledger import events as ev
from ledger import refusals
from ledger.acting import When
from ledger.context import Concern
from ledger.errors import InvalidInput, Refused
from ledger.values import format_time
from ledger.i18n import _, english, gettext


class Disputes(Concern):
    def open(self, actor: str, lead_id: str, reason: str, at: When = None) -> dict[str, Any]:
        if not reason or not reason.strip():
            raise InvalidInput(_("a dispute needs a --reason"))
        self.acting.time(at)  # a malformed --at is refused before anything is read

        def attempt() -> dict[str, Any]:
            by = self.acting.actor(actor, "dispute.open")
            lead = self.repo.lead(lead_id)
            # after the reads: the clock moves on while a retry re-reads
            when = self.acting.when(self.acting.time(at), at, by, lead=lead)
            dispute_id = f"{lead_id}-D{len(lead.disputes) + 1}"
            stored = self.repo.commit([lead.head], [ev.DisputeOpened(
                occurred_at=when, actor=by.id, dispute=dispute_id, lead=lead_id, reason=reason,
                owner=lead.owner)])
            return {"dispute": dispute_id, "lead": lead_id, "status": "open", "owner": lead.owner,
                    "opened_by": by.id, "occurred_at": format_time(when), "position": stored[0].position}

        return self.repo.retry(attempt)

    def resolve(self, actor: str, dispute_id: str, *, award: str | None = None, uphold: bool = False,
                rationale: str, at: When = None) -> dict[str, Any]:
        """Rule on a dispute: award the lead to a rep (a reassignment naming the dispute) or uphold."""
        if bool(award) == bool(uphold):
            raise InvalidInput(_("give exactly one of --award REP or --uphold"))
        if not rationale or not rationale.strip():
            raise InvalidInput(_("a ruling needs a --rationale"))
        self.acting.time(at)  # a malformed --at is refused before anything is read
        return self.repo.retry(lambda: self._resolve(actor, dispute_id, award, rationale, at))

    def _resolve(self, actor: str, dispute_id: str, award: str | None, rationale: str, at: When) -> dict[str, Any]:
        by = self.acting.actor(actor, "dispute.resolve")
        lead = self.repo.disputed_lead(dispute_id)
        rep = self.acting.holder(award) if award else None
        # after the reads: the clock moves on while a retry re-reads
        when = self.acting.when(self.acting.time(at), at, by, lead=lead)
        dispute = lead.dispute(dispute_id)
        if dispute.outcome is not None:
            raise Refused("dispute_closed", _("dispute {dispute} was already resolved ({outcome}) by {resolved_by} at "
                                              "{resolved_at}", dispute=dispute_id, outcome=gettext(dispute.outcome) if dispute.outcome else "",
                                              resolved_by=dispute.resolved_by,
                                              resolved_at=format_time(dispute.resolved_at)),
                          dispute=dispute_id, outcome=dispute.outcome)
        heads = [lead.head]
        owner = rep.id if rep else lead.owner
        events: list[ev.Event] = [ev.DisputeResolved(
            occurred_at=when, actor=by.id, dispute=dispute_id, lead=lead.id,
            outcome="awarded" if rep else "upheld", owner=owner, rationale=rationale)]
        if rep is not None and lead.owner != rep.id:
            pool = self.repo.pool(lead.pool)
            old = self.repo.holdings(lead.owner, lead.pool) if lead.owner else None
            new = self.repo.holdings(rep.id, lead.pool)
            events += decisions.hand_over(lead, pool, old, new, rep, by, when,
                                          reason=english(refusals.AWARDED, dispute=dispute_id), dispute=dispute_id)
            heads += [new.head, pool.head] + ([old.head] if old else [])  # the pool: membership holds
        stored = self.repo.commit(heads, events)
        moved = next((s.position for s in stored if isinstance(s.event, ev.OWNERSHIP_STARTS)), None)
        return {"dispute": dispute_id, "lead": lead.id, "outcome": events[0].outcome, "owner": owner,
                "previous_owner": lead.owner, "resolved_by": by.id, "occurred_at": format_time(when),
                "position": stored[0].position, "reassignment_position": moved}
