"""What auditors ask: why a lead is where it is, and disputes with their evidence.

A mixin of the Ledger: it uses the Ledger's loading and appending.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ledger import decisions
from ledger import events as ev
from ledger.errors import InvalidInput, NotFound, Refused
from ledger.shapes import event_dict, ownership_intervals, rules_dict
from ledger.state import CONVERTED, HELD, Head, Lead, Pool, lead_stream, replay
from ledger.store import Stored
from ledger.values import add, format_duration, format_time, lead_keys, parse_time
from projections.runner import Db


class AuditQueries:
    """explain, dispute open | resolve | show | list."""

    # --- explain ------------------------------------------------------------------------

    def explain(self, lead_id: str, at: datetime | str | None = None) -> dict[str, Any]:
        self._ready()
        now = parse_time(at) or self.clock()
        stored = self.store.read_stream(lead_stream(lead_id))
        if not stored:
            raise NotFound("unknown_lead", f"no lead {lead_id!r}", lead=lead_id)
        lead = replay(Lead(Head(lead_stream(lead_id)), lead_id), stored)
        pool = self._pool(lead.pool)
        rv = pool.rules_at(now)
        by_position = {s.position: s for s in stored}
        placed = by_position[lead.placed_position]
        cause = event_dict(placed)
        facts: dict[str, Any] = {
            "now": format_time(now),
            "placed_at": format_time(lead.placed_at),
            "last_follow_up": format_time(lead.last_follow_up),
        }
        deadlines = []
        due = decisions.deadline(lead, pool, now)
        if due is not None:
            facts["held_since"] = format_time(lead.placed_at)
            for rule, at_, limit in _both_deadlines(rv.rules, lead):
                deadlines.append({"rule": rule, "limit": format_duration(limit), "at": format_time(at_),
                                  "overdue": now >= at_, "governs": rule == due.rule})
            facts["warn_at"] = format_time(due.warn_at)
            facts["warned"] = lead.warned_for == due.at
        cooldowns = [
            {"rep": rep, "left_at": format_time(left), "until": format_time(add(left, rv.rules.cooldown)),
             "active": now < add(left, rv.rules.cooldown)}
            for rep, left in lead.left_at
        ]
        dispute = None
        if isinstance(placed.event, (ev.LeadReassigned, ev.LeadAssigned)) and placed.event.dispute:
            d = lead.dispute(placed.event.dispute)
            dispute = _dispute_brief(d) if d else None
        result = {
            "lead": lead.id, "status": lead.status, "owner": lead.owner, "pool": lead.pool,
            "because": cause, "rules": {"version": rv.version, "since": format_time(rv.since),
                                         **rules_dict(rv.rules)},
            "facts": facts, "deadlines": deadlines, "cooldowns": cooldowns, "dispute": dispute,
            "disputes": [_dispute_brief(d) for d in lead.disputes],
        }
        result["summary"] = _summary(lead, placed, due, now, dispute, rv.version)
        return result

    # --- disputes -----------------------------------------------------------------------

    def open_dispute(self, actor: str, lead_id: str, reason: str, at: datetime | str | None = None) -> dict[str, Any]:
        if not reason or not reason.strip():
            raise InvalidInput("a dispute needs a --reason")
        self._actor(actor, "dispute.open")  # SPEC order: actor and role before --at
        at = self._at(at)

        def attempt() -> dict[str, Any]:
            by = self._actor(actor, "dispute.open")
            lead = self._lead(lead_id)
            decisions.check_time(lead, at)
            dispute_id = f"{lead_id}-D{len(lead.disputes) + 1}"
            stored = self._commit([lead.head], [ev.DisputeOpened(
                occurred_at=at, actor=by.id, dispute=dispute_id, lead=lead_id, reason=reason,
                owner=lead.owner)])
            return {"dispute": dispute_id, "lead": lead_id, "status": "open", "owner": lead.owner,
                    "position": stored[0].position}

        return self._retry(attempt)

    def _dispute_lead(self, dispute_id: str) -> Lead:
        """The lead a dispute is about; its id is LEAD-Dn."""
        lead_id, sep, number = dispute_id.rpartition("-D")
        if not sep or not number.isdigit():
            raise NotFound("unknown_dispute", f"no dispute {dispute_id!r}", dispute=dispute_id)
        lead = self._lead(lead_id, must_exist=False)
        if not lead.exists or lead.dispute(dispute_id) is None:
            raise NotFound("unknown_dispute", f"no dispute {dispute_id!r}", dispute=dispute_id)
        return lead

    def resolve_dispute(self, actor: str, dispute_id: str, *, award: str | None = None, uphold: bool = False,
                        rationale: str, at: datetime | str | None = None) -> dict[str, Any]:
        if bool(award) == bool(uphold):
            raise InvalidInput("give exactly one of --award REP or --uphold")
        if not rationale or not rationale.strip():
            raise InvalidInput("a ruling needs a --rationale")
        self._actor(actor, "dispute.resolve")  # SPEC order: actor and role before --at
        at = self._at(at)

        def attempt() -> dict[str, Any]:
            by = self._actor(actor, "dispute.resolve")
            lead = self._dispute_lead(dispute_id)
            dispute = lead.dispute(dispute_id)
            if dispute.outcome is not None:
                raise Refused("dispute_closed", f"dispute {dispute_id} was already resolved "
                              f"({dispute.outcome}) at {format_time(dispute.resolved_at)}",
                              dispute=dispute_id, outcome=dispute.outcome)
            decisions.check_time(lead, at)
            heads = [lead.head]
            if uphold:
                events: list[ev.Event] = [ev.DisputeResolved(
                    occurred_at=at, actor=by.id, dispute=dispute_id, lead=lead.id, outcome="upheld",
                    owner=lead.owner, rationale=rationale)]
            else:
                rep = self._holder(award)
                events = [ev.DisputeResolved(occurred_at=at, actor=by.id, dispute=dispute_id, lead=lead.id,
                                             outcome="awarded", owner=rep.id, rationale=rationale)]
                if lead.owner != rep.id:
                    pool = self._pool(lead.pool)
                    old = self._desk(lead.owner, lead.pool) if lead.owner else None
                    new = self._desk(rep.id, lead.pool)
                    events += decisions.hand_over(lead, pool, old, new, rep, by, at,
                                                  reason=f"awarded by dispute {dispute_id}", dispute=dispute_id)
                    heads += [new.head] + ([old.head] if old else [])
            stored = self._commit(heads, events)
            owner = events[0].owner
            moved = next((s.position for s in stored if isinstance(s.event, (ev.LeadReassigned, ev.LeadAssigned))),
                         None)
            return {"dispute": dispute_id, "lead": lead.id, "outcome": events[0].outcome, "owner": owner,
                    "position": stored[0].position, "reassignment_position": moved}

        return self._retry(attempt)

    def dispute_show(self, dispute_id: str) -> dict[str, Any]:
        self._ready()
        lead = self._dispute_lead(dispute_id)
        d = lead.dispute(dispute_id)
        stored = self.store.read_stream(lead_stream(lead.id))
        pool = self._pool(lead.pool)
        return {
            **_dispute_brief(d),
            "lead_now": {"status": lead.status, "owner": lead.owner, "pool": lead.pool},
            "evidence": self._evidence(lead, d, stored, pool),
        }

    def _evidence(self, lead: Lead, d: Any, stored: list[Stored], pool: Pool) -> dict[str, Any]:
        attempts, follow_ups, rules_used = [], [], set()
        for s in stored:
            e = s.event
            if isinstance(e, (ev.LeadClaimed, ev.ClaimRefused, ev.LeadAssigned, ev.AssignmentRefused,
                              ev.LeadReassigned)):
                refused = isinstance(e, (ev.ClaimRefused, ev.AssignmentRefused))
                attempts.append({
                    "position": s.position, "type": type(e).__name__, "rep": e.rep, "actor": e.actor,
                    "occurred_at": format_time(e.occurred_at), "recorded_at": format_time(s.recorded_at),
                    "accepted": not refused, "reason": e.reason if refused else getattr(e, "reason", None),
                    "owner_then": e.owner if refused else None,
                    "owner_since_position": e.owner_since_position if refused else None,
                    "rules_version": e.rules_version,
                })
                if e.rules_version:
                    rules_used.add(e.rules_version)
            elif isinstance(e, ev.FollowUpLogged):
                follow_ups.append({"position": s.position, "rep": e.rep, "occurred_at": format_time(e.occurred_at),
                                   "channel": e.channel, "note": e.note})
            elif isinstance(e, (ev.LeadRecycled, ev.RecycleWarned)):
                rules_used.add(e.rules_version)
        involved = sorted({a["rep"] for a in attempts} | {f["rep"] for f in follow_ups}
                          | ({d.opened_by} if d.opened_by else set()) - {None})
        return {
            "ownership": ownership_intervals(stored),
            "attempts": attempts,
            "follow_ups": follow_ups,
            "rules": [
                {"version": rv.version, "since": format_time(rv.since), "position": rv.position,
                 "used": rv.version in rules_used, **rules_dict(rv.rules)}
                for rv in pool.rule_versions
            ],
            "duplicates": self._duplicates(lead, stored),
            "involved": involved,
        }

    def _duplicates(self, lead: Lead, stored: list[Stored]) -> list[dict[str, Any]]:
        """Leads sharing a phone, email or company with this one, either way round."""
        a = lead.attributes
        found = {}
        for k in self.store.find_keys(lead_keys(a.company, a.phone, a.email)):
            if k.lead != lead.id:
                found[(k.lead, k.kind)] = {"lead": k.lead, "field": k.kind, "value": k.value}
        for s in stored:
            if isinstance(s.event, ev.LeadAdded):
                for m in s.event.duplicates:
                    found[(m.lead, m.field)] = {"lead": m.lead, "field": m.field, "value": m.value}
        out = []
        for (other_id, _), row in sorted(found.items()):
            other = self._lead(other_id, must_exist=False)
            out.append({**row, "status": other.status if other.exists else None, "owner": other.owner,
                        "pool": other.pool or None})
        return out

    def dispute_list(self, open_only: bool = False) -> dict[str, Any]:
        self._ready()
        self.views.catch_up()
        sql = ("SELECT dispute, lead, status, opened_by, opened_at, reason, owner_at_open, outcome, owner_after, "
               "resolved_by, resolved_at FROM {disputes}")
        if open_only:
            sql += " WHERE status = 'open'"
        sql += " ORDER BY open_position"
        with self.store.reading() as cur:
            rows = Db(cur, self.store, self.views.names()).all(sql)
        keys = ("dispute", "lead", "status", "opened_by", "opened_at", "reason", "owner_at_open", "outcome",
                "owner_after", "resolved_by", "resolved_at")
        return {"disputes": [dict(zip(keys, r, strict=True)) for r in rows]}


def _both_deadlines(rules: ev.Rules, lead: Lead) -> list[tuple[str, datetime, int]]:
    out = []
    if rules.idle_limit > 0:
        base = max(lead.placed_at, lead.last_follow_up or lead.placed_at)
        out.append(("idle_limit", add(base, rules.idle_limit), rules.idle_limit))
    if rules.hold_limit > 0:
        out.append(("hold_limit", add(lead.placed_at, rules.hold_limit), rules.hold_limit))
    return out


def _dispute_brief(d: Any) -> dict[str, Any]:
    return {
        "dispute": d.id, "lead": d.lead, "status": "resolved" if d.outcome else "open",
        "opened_by": d.opened_by, "opened_at": format_time(d.opened_at), "reason": d.reason,
        "owner_at_open": d.owner_at_open, "open_position": d.position, "outcome": d.outcome,
        "resolved_by": d.resolved_by, "resolved_at": format_time(d.resolved_at), "rationale": d.rationale,
        "awarded_to": d.awarded_to, "resolved_position": d.resolved_position,
    }


def _summary(lead: Lead, placed: Stored, due: Any, now: datetime, dispute: Any, version: int) -> str:
    e = placed.event
    when = f"{format_time(e.occurred_at)} (event #{placed.position}, by {e.actor})"
    if lead.status == CONVERTED:
        text = f"{lead.id} is converted and held by {lead.owner}; {lead.owner} came to hold it by {type(e).__name__} at {when}."
    elif lead.status == HELD:
        how = {"LeadClaimed": "claimed it", "LeadAssigned": "was assigned it",
               "LeadReassigned": "was reassigned it"}.get(type(e).__name__, type(e).__name__)
        text = f"{lead.id} is held by {lead.owner}, who {how} at {when}."
        if dispute:
            text += f" It moved by the ruling on dispute {dispute['dispute']}."
        if due is not None:
            state = "overdue since" if now >= due.at else "due"
            text += (f" Under rules v{version} its recycle by {due.rule} "
                     f"({format_duration(due.limit)}) is {state} {format_time(due.at)}.")
    else:
        how = {"LeadAdded": "was added", "LeadReleased": "was released", "LeadRecycled": "was recycled",
               "LeadReturned": "was returned (owner deactivated)", "LeadMoved": "was moved"}.get(
                   type(e).__name__, type(e).__name__)
        text = f"{lead.id} is in pool {lead.pool}: it {how} at {when}."
        if isinstance(e, ev.LeadRecycled):
            text += (f" Rule {e.rule} (limit {format_duration(e.limit)}, rules v{e.rules_version}) "
                     f"passed its deadline {format_time(e.deadline)}; held since {format_time(e.held_since)}, "
                     f"last follow-up {format_time(e.last_follow_up_at) or 'none'}.")
    return text
