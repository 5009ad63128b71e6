"""lead add | show (import: ledger/importer.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from ledger import decisions, inputs
from ledger import events as ev
from ledger.acting import When
from ledger.context import Concern
from ledger.disclosure import with_personal
from ledger.errors import Refused
from ledger.state import HELD, POOLED, Person, Pool, lead_stream
from ledger.store import LeadKey
from ledger.values import check_id, format_time, lead_keys
from ledger.i18n import N_, _


class Leads(Concern):
    def add(self, actor: str, lead_id: str, pool_id: str, *, allow_duplicate: bool = False,
            at: When = None, **fields: Any) -> dict[str, Any]:
        def attempt(by: Person, when: datetime) -> dict[str, Any]:
            pool = self.repo.pool(pool_id)
            when = self.acting.when(when, at, by, pool)
            decisions.check_member(by, pool)
            lead = self.repo.lead(lead_id, must_exist=False)
            if lead.exists:
                raise Refused("already_exists", _("lead {lead} already exists (pool {pool})", lead=lead_id, pool=lead.pool),
                              lead=lead_id)
            event, keys, found = self._new_lead(by, lead_id, pool, fields, when, allow_duplicate)
            # A key taken meanwhile raises DuplicateKeys, a Conflict: the retry re-checks and refuses.
            stored = self.repo.commit([lead.head], [event], keys=keys, unique_keys=not allow_duplicate)
            return {"lead": lead_id, "event": "LeadAdded", "position": stored[0].position, "owner": None,
                    "pool": pool_id, "status": POOLED, "occurred_at": format_time(when), "duplicates": found}

        return self.acting.run(actor, "lead.add", at, attempt, lambda: check_id(lead_id, N_("lead id")))

    def _new_lead(self, by: Person, lead_id: str, pool: Pool, fields: dict[str, Any],
                  at: datetime, allow_duplicate: bool) -> tuple[ev.LeadAdded, list[LeadKey], list[dict]]:
        """Decide a LeadAdded: the duplicate check against the key index."""
        attributes = inputs.attributes(fields)
        keys = lead_keys(attributes.company, attributes.phone, attributes.email)
        matches = [k for k in self.repo.store.find_keys(keys) if k.lead != lead_id]
        found = [ev.DuplicateMatch(lead=k.lead, field=k.kind, value=k.value) for k in matches]
        if found and not allow_duplicate:
            first = found[0]
            other = self.repo.lead(first.lead)
            where = {"owner": other.owner} if other.owner else {"pool": other.pool}
            raise Refused(
                "duplicate_lead",
                _("lead {lead} has the same {field} as lead {other} (held by {owner})", lead=lead_id,
                  field=first.field, other=first.lead, owner=other.owner) if other.owner else
                _("lead {lead} has the same {field} as lead {other} (in pool {pool})", lead=lead_id,
                  field=first.field, other=first.lead, pool=other.pool),
                lead=lead_id, existing=first.lead, field=first.field, **where,
                matches=[msgspec.to_builtins(m) for m in found],
            )
        event = ev.LeadAdded(occurred_at=at, actor=by.id, lead=lead_id, pool=pool.id,
                             attributes=attributes, duplicates=found)
        return event, [LeadKey(k, v, lead_id) for k, v in keys], [msgspec.to_builtins(m) for m in found]

    def show(self, lead_id: str) -> dict[str, Any]:
        self.repo.ready()
        stored = self.repo.store.read_stream(lead_stream(lead_id))
        lead = self.repo.lead(lead_id, stored=stored)
        due = (decisions.deadline(lead, self.repo.pool(lead.pool), self.acting.clock())
               if lead.status == HELD else None)
        return with_personal(self.repo.store, {
            "lead": lead.id, "pool": lead.pool, "status": lead.status, "owner": lead.owner,
            "since": format_time(lead.placed_at), "since_position": lead.placed_position,
            "last_follow_up": format_time(lead.last_follow_up), "deal": lead.deal,
            "recycle_at": format_time(due.at) if due else None, "recycle_rule": due.rule if due else None,
            "attributes": msgspec.to_builtins(lead.attributes), "version": lead.head.version,
            "disputes": [d.id for d in lead.disputes],
        }, stored)

