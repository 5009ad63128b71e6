"""What auditors ask of one lead or rep: owner at a time, history, holdings, explain."""

from __future__ import annotations

from bisect import bisect_right
from datetime import UTC, datetime
from functools import cache
from typing import Any

import msgspec

from ledger import codec, decisions, refusals
from ledger import events as ev
from ledger.acting import When
from ledger.context import Concern
from ledger.disclosure import is_erased, opened, shown
from ledger.i18n import _, gettext
from ledger.moments import Moment, resolve
from ledger.shapes import dispute_brief, event_dict, ownership_intervals, rules_dict, rules_row
from ledger.state import CONVERTED, HELD, POOLED, Lead, Pool, lead_stream
from ledger.store import Stored
from ledger.values import add, format_duration, format_time, unknown_lead

# The events that decide where a lead is (its pool, its owner, whether it is converted).
PLACING = (ev.LeadAdded, ev.LeadMoved, *ev.OWNERSHIP_STARTS, *ev.OWNERSHIP_ENDS)
PLACEMENT_TOPICS = tuple(sorted({c.__name__ for c in (*PLACING, ev.LeadConverted)}))
LATEST = datetime.max.replace(tzinfo=UTC)  # later than any event: the whole of a log prefix


# --- owner at a time ----------------------------------------------------------------------

def placement_at(rows: list[tuple[int, int, bytes]], when: datetime) -> dict[str, Any]:
    """Where a lead was at `when`, from its placement rows (`Store.read_stream_rows`).

    Within one lead events never go back in time, so the events done by `when` (an event at
    `when` counts as done) are a prefix of the stream. Bisect it by time, decoding only the
    rows probed, then walk back from the last done event to the one that placed the lead:
    O(log n) decodes however long the lead's history is.
    """
    @cache
    def event(i: int) -> ev.Event:
        return codec.decode(rows[i][2]).event

    done = bisect_right(range(len(rows)), when, key=lambda i: event(i).occurred_at)
    if done == 0:
        return {"owner": None, "pool": None, "status": None, "since": None, "position": None, "event": None}
    i = done - 1
    while i > 0 and isinstance(event(i), ev.LeadConverted):
        i -= 1
    placed = event(i)
    if not isinstance(placed, ev.OWNERSHIP_STARTS):
        status = POOLED
    elif i < done - 1 or _taken_converted(event, i):
        status = CONVERTED
    else:
        status = HELD
    return {
        "owner": placed.rep if status != POOLED else None, "pool": event(done - 1).pool, "status": status,
        "since": format_time(placed.occurred_at), "position": rows[i][0], "event": type(placed).__name__,
    }


def _taken_converted(event: Any, i: int) -> bool:
    """A reassignment keeps a converted lead converted: look back along a chain of them."""
    while i > 0 and isinstance(event(i), ev.LeadReassigned):
        i -= 1
        if isinstance(event(i), ev.LeadConverted):
            return True
    return False


class Queries(Concern):
    def owner(self, lead_id: str, at: When = None, upto: int | str | None = None) -> dict[str, Any]:
        """Who owned the lead at `at` (default now), or when the log ended at position `upto`;
        an event at `at` counts as done."""
        self.repo.ready()
        moment = resolve(self.repo.store, self.acting.clock, at, upto) if upto is not None else None
        when = self.acting.time(at)
        rows = self.repo.store.read_stream_rows(lead_stream(lead_id), PLACEMENT_TOPICS)
        if not rows:
            raise unknown_lead(lead_id)
        if moment is not None:
            placed = placement_at([r for r in rows if r[0] <= moment.upto], LATEST)
            return {"lead": lead_id, "at": format_time(moment.now), **placed, "upto": moment.upto}
        return {"lead": lead_id, "at": format_time(when), **placement_at(rows, when)}

    def history(self, lead_id: str) -> dict[str, Any]:
        self.repo.ready()
        stored = self.repo.store.read_stream(lead_stream(lead_id))
        if not stored:
            raise unknown_lead(lead_id)
        erased = is_erased(stored)
        return {
            "lead": lead_id,
            **({"erased": True} if erased else {}),  # only then: earlier answers stay the same
            "events": [shown(event_dict(s), erased) for s in opened(self.repo.store, stored, erased=erased)],
            "ownership": ownership_intervals(stored),
            "refused": [
                {"position": s.position, "type": type(s.event).__name__, "actor": s.event.actor,
                 "rep": s.event.rep, "reason": s.event.reason, "occurred_at": format_time(s.event.occurred_at),
                 "owner": s.event.owner, "owner_since_position": s.event.owner_since_position}
                for s in stored if isinstance(s.event, ev.Refusal)
            ],
        }

    def holdings(self, rep: str, at: When = None, upto: int | str | None = None) -> dict[str, Any]:
        """What a rep holds now, or as of `at` (business time) or `upto` (a log position)."""
        self.repo.ready()
        person = self.repo.known_person(rep)
        moment = resolve(self.repo.store, self.acting.clock, at, upto)
        if moment is not None:
            return self._holdings_then(rep, moment)
        now = self.acting.clock()
        leads, counts = [], {}
        pools: dict[str, Pool] = {}
        self.views.catch_up()
        for lead_id in self.models.leads_of(rep):
            lead = self.repo.lead(lead_id)
            if lead.owner != person.id:
                continue
            pool = pools.get(lead.pool) or self.repo.pool(lead.pool)
            pools[lead.pool] = pool
            due = decisions.deadline(lead, pool, now)
            leads.append(_holding(lead, due, now))
            if lead.status == HELD:
                counts[lead.pool] = counts.get(lead.pool, 0) + 1
        return {"rep": rep, "active": person.active, "now": format_time(now), "leads": leads,
                "count_by_pool": counts}

    def _holdings_then(self, rep: str, moment: Moment) -> dict[str, Any]:
        """Holdings as of a moment, from the ownership intervals (an index: the leads the rep
        may have held then) and each candidate's own stream replayed to the moment."""
        self.views.catch_up()
        models = self.models
        if moment.at is not None:
            second = moment.at.replace(microsecond=0)
            found = models.owned_around(rep, format_time(add(second, -1)), format_time(add(second, 1)))
        else:
            found = models.owned_upto(rep, moment.upto)
        person = moment.person(self.repo, rep)
        leads: list[Lead] = [lead for lead in (moment.lead(self.repo, i) for i in found) if lead.owner == rep]
        leads.sort(key=lambda lead: lead.placed_position)
        pools = {p: moment.pool(self.repo, p) for p in {lead.pool for lead in leads}}
        rows, counts = [], {}
        for lead in leads:
            # A lead may be held in a pool not created yet then (history stated before the pool
            # was): no rules were in force, so no deadline.
            due = decisions.deadline(lead, pools[lead.pool], moment.now) if pools[lead.pool].exists else None
            rows.append(_holding(lead, due, moment.now))
            if lead.status == HELD:
                counts[lead.pool] = counts.get(lead.pool, 0) + 1
        return {"rep": rep, "active": person.exists and person.active, "now": format_time(moment.now),
                "leads": rows, "count_by_pool": counts, **moment.label()}

    def explain(self, lead_id: str, at: When = None) -> dict[str, Any]:
        """Why the lead is where it is: the event that put it there, the rules and facts checked."""
        self.repo.ready()
        now = self.acting.time(at)
        stored = self.repo.store.read_stream(lead_stream(lead_id))
        if not stored:
            raise unknown_lead(lead_id)
        lead = self.repo.lead(lead_id, stored=stored, must_exist=False)
        pool = self.repo.pool(lead.pool)
        rv = pool.rules_at(now)
        placed = next(s for s in stored if s.position == lead.placed_position)
        e = placed.event

        converted = _last(stored, ev.LeadConverted) if lead.status == CONVERTED else None
        facts = _facts(lead, e, now, converted)

        due = decisions.deadline(lead, pool, now)
        deadlines = []
        if due is not None:
            facts.update(warn_at=format_time(due.warn_at), warned=lead.warned_for == due.at)
            for rule, when, limit in _both_deadlines(rv.rules, lead):
                deadlines.append({"rule": rule, "limit": format_duration(limit), "at": format_time(when),
                                  "rules_version": rv.version, "overdue": now >= when,
                                  "governs": rule == due.rule})
        cooldowns = []
        for rep, left in lead.left_at:
            until = add(left, rv.rules.cooldown)
            cooldowns.append({"rep": rep, "left_at": format_time(left), "cooldown": format_duration(rv.rules.cooldown),
                              "until": format_time(until), "active": now < until})
        moved_by = None
        if getattr(e, "dispute", None) and lead.dispute(e.dispute):
            moved_by = dispute_brief(lead.dispute(e.dispute))
        decided = getattr(e, "rules_version", None)
        result = {
            "lead": lead.id, "status": lead.status, "owner": lead.owner, "pool": lead.pool,
            "because": shown(event_dict(opened(self.repo.store, [placed], erased=(erased := is_erased(stored)))[0]),
                             erased),
            "rules": {"version": rv.version, "since": format_time(rv.since), **rules_dict(rv.rules)},
            "decided_under": rules_row(pool, decided) if decided else None,
            "facts": facts, "deadlines": deadlines, "cooldowns": cooldowns, "dispute": moved_by,
            "disputes": [dispute_brief(d) for d in lead.disputes],
        }
        result["reasons"] = _reasons(lead, placed, due, now, rv.version, moved_by, converted, cooldowns)
        result["summary"] = " ".join(result["reasons"])
        return result


def _holding(lead: Lead, due: Any, now: datetime) -> dict[str, Any]:
    return {
        "lead": lead.id, "pool": lead.pool, "status": lead.status,
        "since": format_time(lead.placed_at), "last_follow_up": format_time(lead.last_follow_up),
        "recycle_at": format_time(due.at) if due else None, "recycle_rule": due.rule if due else None,
        "rules_version": due.rules.version if due else None, "overdue": bool(due and now >= due.at),
    }


def _facts(lead: Lead, e: ev.Event, now: datetime, converted: Stored | None) -> dict[str, Any]:
    """The facts behind where a lead is: its times, what placed it, its conversion."""
    facts: dict[str, Any] = {"now": format_time(now), "since": format_time(lead.placed_at),
                             "last_follow_up": format_time(lead.last_follow_up),
                             "last_event_at": format_time(lead.last_event_at)}
    if isinstance(e, ev.LeadClaimed):
        facts.update(claimed_at=format_time(e.occurred_at), claim_limit=e.claim_limit,
                     held_before_claim=e.held_before)
    if isinstance(e, ev.LeadRecycled):
        facts.update(held_since=format_time(e.held_since), last_follow_up_then=format_time(e.last_follow_up_at),
                     recycle_rule=e.rule, recycle_limit=format_duration(e.limit),
                     recycle_deadline=format_time(e.deadline))
    if converted is not None:
        c = converted.event
        facts.update(converted_by=c.rep, converted_at=format_time(c.occurred_at), deal=c.deal,
                     converted_position=converted.position)
    return facts


def _both_deadlines(rules: ev.Rules, lead: Lead) -> list[tuple[str, datetime, int]]:
    """Each recycle deadline on its own (idle, then hold), as `next_deadline` finds it with
    the other rule off."""
    out = []
    for off in ("hold_limit", "idle_limit"):
        found = decisions.next_deadline(msgspec.structs.replace(rules, **{off: 0}), lead.placed_at,
                                        lead.last_follow_up)
        if found is not None:
            out.append(found)
    return out


def _last(stored: list[Stored], kind: type) -> Stored | None:
    return next((s for s in reversed(stored) if isinstance(s.event, kind)), None)


# --- explain in words -----------------------------------------------------------------------

def _reasons(lead: Lead, placed: Stored, due: Any, now: datetime, version: int, dispute: dict | None,
             converted: Stored | None, cooldowns: list[dict]) -> list[str]:
    e = placed.event
    at = _("at {time} (event #{position}, by {actor})", time=format_time(e.occurred_at), position=placed.position,
           actor=e.actor)
    out = [_placed(lead, e, at, converted is not None)]
    if dispute is not None:
        out.append(_('Dispute {dispute} (opened by {opened_by}: "{reason}") was {outcome} by {resolved_by} at '
                     '{resolved_at}: "{rationale}".', dispute=dispute["dispute"], opened_by=dispute["opened_by"],
                     reason=dispute["reason"], outcome=gettext(dispute["outcome"]),
                     resolved_by=dispute["resolved_by"], resolved_at=dispute["resolved_at"],
                     rationale=dispute["rationale"]))
    if converted is not None:
        c = converted.event
        values = {"rep": c.rep, "deal": c.deal, "at": format_time(c.occurred_at), "position": converted.position}
        out.append(_("{rep} converted it under deal {deal} at {at} (event #{position}); a converted lead is "
                     "never recycled.", **values) if c.deal else
                   _("{rep} converted it at {at} (event #{position}); a converted lead is never recycled.", **values))
    if due is not None:
        out.append(_due(lead, due, now, version))
    active = [c for c in cooldowns if c["active"]]
    if active:
        out.append(_("Cooldown: {reps}.", reps="; ".join(
            _("{rep} may not claim it again until {until}", rep=c["rep"], until=c["until"]) for c in active)))
    return out


def _placed(lead: Lead, e: Any, at: str, converted: bool) -> str:  # noqa: PLR0911 - one sentence per event type
    """Why the lead is where it is: the event that put it there, in words."""
    values = {"lead": lead.id, "pool": lead.pool, "rep": getattr(e, "rep", None), "at": at,
              "version": getattr(e, "rules_version", None), "reason": refusals.reword(getattr(e, "reason", None))}
    if isinstance(e, ev.LeadClaimed):
        values.update(claim_limit=e.claim_limit, held=e.held_before, pool=e.pool)
        return (_("{lead} is converted and held by {rep}, who claimed it {at} under rules v{version} (claim_limit "
                  "{claim_limit}; {rep} held {held} of pool {pool} before).", **values) if converted else
                _("{lead} is held by {rep}, who claimed it {at} under rules v{version} (claim_limit {claim_limit}; "
                  "{rep} held {held} of pool {pool} before).", **values))
    if isinstance(e, ev.LeadAssigned):
        why = (_(" by the ruling on dispute {dispute}", dispute=e.dispute) if e.dispute else
               _(" ({reason})", reason=values["reason"]) if e.reason else "")
        values.update(why=why, pool=e.pool)
        return (_("{lead} is converted and held by {rep}, who was assigned it from pool {pool}{why} {at} under "
                  "rules v{version}.", **values) if converted else
                _("{lead} is held by {rep}, who was assigned it from pool {pool}{why} {at} under rules v{version}.",
                  **values))
    if isinstance(e, ev.LeadReassigned):
        values.update(from_rep=e.from_rep, why=_("by the ruling on dispute {dispute}", dispute=e.dispute)
                      if e.dispute else _("because: {reason}", reason=values["reason"]))
        return (_("{lead} is converted and held by {rep}: it was reassigned from {from_rep} {why}, {at}, under "
                  "rules v{version}.", **values) if lead.status == CONVERTED else
                _("{lead} is held by {rep}: it was reassigned from {from_rep} {why}, {at}, under rules v{version}.",
                  **values))
    if isinstance(e, ev.LeadRecycled):
        return _("{lead} is in pool {pool}: it was recycled from {rep} {at}, because rule {rule} (limit {limit}, "
                 "rules v{version}) passed its deadline {deadline}; {rep} had held it since {since}, last "
                 "follow-up {last}.", **values, rule=e.rule, limit=format_duration(e.limit),
                 deadline=format_time(e.deadline), since=format_time(e.held_since),
                 last=format_time(e.last_follow_up_at) or _("none"))
    if isinstance(e, ev.LeadReturned):
        return _("{lead} is in pool {pool}: it was returned from {rep} {at}, because {reason}.", **values)
    if isinstance(e, ev.LeadReleased):
        return (_("{lead} is in pool {pool}: {rep} released it ({reason}) {at}.", **values) if e.reason else
                _("{lead} is in pool {pool}: {rep} released it {at}.", **values))
    if isinstance(e, ev.LeadMoved):
        return (_("{lead} is in pool {pool}: it was moved from pool {from_pool} {at} ({reason}).", **values,
                  from_pool=e.from_pool) if e.reason else
                _("{lead} is in pool {pool}: it was moved from pool {from_pool} {at}.", **values,
                  from_pool=e.from_pool))
    return _("{lead} is in pool {pool}: it was added {at} and has never been held.", **values)


def _due(lead: Lead, due: Any, now: datetime, version: int) -> str:
    values = {"version": version, "rule": due.rule, "limit": format_duration(due.limit),
              "at": format_time(due.at), "warn_at": format_time(due.warn_at)}
    since_follow_up = due.rule == "idle_limit" and lead.last_follow_up
    if now >= due.at:
        return (_("Under rules v{version} its recycle by {rule} ({limit} from its last follow-up) was due at {at}"
                  " — OVERDUE: the next sweep will recycle it.", **values) if since_follow_up else
                _("Under rules v{version} its recycle by {rule} ({limit} from the time it was taken) was due at "
                  "{at} — OVERDUE: the next sweep will recycle it.", **values))
    return (_("Under rules v{version} its recycle by {rule} ({limit} from its last follow-up) is due at {at}; "
              "a warning goes out at {warn_at}.", **values) if since_follow_up else
            _("Under rules v{version} its recycle by {rule} ({limit} from the time it was taken) is due at {at}; "
              "a warning goes out at {warn_at}.", **values))
