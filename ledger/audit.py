"""What auditors ask: where a lead was at a time, why it is where it is, and disputes with
their evidence.

A mixin of the Ledger: it uses the Ledger's loading and appending.
"""

from __future__ import annotations

from bisect import bisect_right
from datetime import datetime
from functools import cache
from typing import Any

from ledger import codec, decisions
from ledger import events as ev
from ledger.errors import InvalidInput, NotFound, Refused
from ledger.shapes import event_dict, ownership_intervals, rules_dict
from ledger.state import CONVERTED, HELD, POOLED, Dispute, Head, Lead, Pool, lead_stream, replay
from ledger.store import Stored
from ledger.values import add, format_duration, format_time, lead_keys, parse_time
from projections.runner import Db

ATTEMPTS = (ev.LeadClaimed, ev.LeadAssigned, ev.LeadReassigned, ev.ClaimRefused, ev.AssignmentRefused)

# The events that decide where a lead is (its pool, its owner, whether it is converted).
PLACING = (ev.LeadAdded, ev.LeadMoved, *ev.OWNERSHIP_STARTS, *ev.OWNERSHIP_ENDS)
PLACEMENT_TOPICS = tuple(sorted({c.__name__ for c in (*PLACING, ev.LeadConverted)}))


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


class AuditQueries:
    """explain, dispute open | resolve | show | list."""

    # --- explain ------------------------------------------------------------------------

    def explain(self, lead_id: str, at: datetime | str | None = None) -> dict[str, Any]:
        """Why the lead is where it is: the event that put it there, the rules and facts checked."""
        self._ready()
        now = parse_time(at) or self.clock()
        stored = self.store.read_stream(lead_stream(lead_id))
        if not stored:
            raise NotFound("unknown_lead", f"no lead {lead_id!r}", lead=lead_id)
        lead = replay(Lead(Head(lead_stream(lead_id)), lead_id), stored)
        pool = self._pool(lead.pool)
        rv = pool.rules_at(now)
        placed = next(s for s in stored if s.position == lead.placed_position)
        e = placed.event

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
        converted = _last(stored, ev.LeadConverted) if lead.status == CONVERTED else None
        if converted is not None:
            c = converted.event
            facts.update(converted_by=c.rep, converted_at=format_time(c.occurred_at), deal=c.deal,
                         converted_position=converted.position)

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
            moved_by = _dispute_brief(lead.dispute(e.dispute))
        decided = getattr(e, "rules_version", None)
        result = {
            "lead": lead.id, "status": lead.status, "owner": lead.owner, "pool": lead.pool,
            "because": event_dict(placed),
            "rules": {"version": rv.version, "since": format_time(rv.since), **rules_dict(rv.rules)},
            "decided_under": _rules_row(pool, decided) if decided else None,
            "facts": facts, "deadlines": deadlines, "cooldowns": cooldowns, "dispute": moved_by,
            "disputes": [_dispute_brief(d) for d in lead.disputes],
        }
        result["reasons"] = _reasons(lead, placed, due, now, rv.version, moved_by, converted, cooldowns)
        result["summary"] = " ".join(result["reasons"])
        return result

    # --- disputes -----------------------------------------------------------------------

    def open_dispute(self, actor: str, lead_id: str, reason: str, at: datetime | str | None = None) -> dict[str, Any]:
        if not reason or not reason.strip():
            raise InvalidInput("a dispute needs a --reason")
        self._at(at)  # a malformed --at is refused before anything is read

        def attempt() -> dict[str, Any]:
            by = self._actor(actor, "dispute.open")
            lead = self._lead(lead_id)
            when = self._at(at)  # after the reads: the clock moves on while a retry re-reads
            decisions.check_time(lead, when)
            dispute_id = f"{lead_id}-D{len(lead.disputes) + 1}"
            stored = self._commit([lead.head], [ev.DisputeOpened(
                occurred_at=when, actor=by.id, dispute=dispute_id, lead=lead_id, reason=reason,
                owner=lead.owner)])
            return {"dispute": dispute_id, "lead": lead_id, "status": "open", "owner": lead.owner,
                    "opened_by": by.id, "occurred_at": format_time(when), "position": stored[0].position}

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
        """Rule on a dispute: award the lead to a rep (a reassignment naming the dispute) or uphold."""
        if bool(award) == bool(uphold):
            raise InvalidInput("give exactly one of --award REP or --uphold")
        if not rationale or not rationale.strip():
            raise InvalidInput("a ruling needs a --rationale")
        self._at(at)  # a malformed --at is refused before anything is read

        def attempt() -> dict[str, Any]:
            by = self._actor(actor, "dispute.resolve")
            lead = self._dispute_lead(dispute_id)
            rep = self._holder(award) if award else None
            when = self._at(at)  # after the reads: the clock moves on while a retry re-reads
            decisions.check_time(lead, when)
            dispute = lead.dispute(dispute_id)
            if dispute.outcome is not None:
                raise Refused("dispute_closed", f"dispute {dispute_id} was already resolved "
                              f"({dispute.outcome}) by {dispute.resolved_by} at {format_time(dispute.resolved_at)}",
                              dispute=dispute_id, outcome=dispute.outcome)
            heads = [lead.head]
            owner = rep.id if rep else lead.owner
            events: list[ev.Event] = [ev.DisputeResolved(
                occurred_at=when, actor=by.id, dispute=dispute_id, lead=lead.id,
                outcome="awarded" if rep else "upheld", owner=owner, rationale=rationale)]
            if rep is not None and lead.owner != rep.id:
                pool = self._pool(lead.pool)
                old = self._desk(lead.owner, lead.pool) if lead.owner else None
                new = self._desk(rep.id, lead.pool)
                events += decisions.hand_over(lead, pool, old, new, rep, by, when,
                                              reason=f"awarded by dispute {dispute_id}", dispute=dispute_id)
                heads += [new.head] + ([old.head] if old else [])
            stored = self._commit(heads, events)
            moved = next((s.position for s in stored if isinstance(s.event, ev.OWNERSHIP_STARTS)), None)
            return {"dispute": dispute_id, "lead": lead.id, "outcome": events[0].outcome, "owner": owner,
                    "previous_owner": lead.owner, "resolved_by": by.id, "occurred_at": format_time(when),
                    "position": stored[0].position, "reassignment_position": moved}

        return self._retry(attempt)

    def dispute_show(self, dispute_id: str) -> dict[str, Any]:
        """A dispute with the evidence to settle it (SPEC §1 Disputes)."""
        self._ready()
        lead = self._dispute_lead(dispute_id)
        d = lead.dispute(dispute_id)
        stored = self.store.read_stream(lead_stream(lead.id))
        pool = self._pool(lead.pool)
        return {
            **_dispute_brief(d),
            "lead_now": {"status": lead.status, "owner": lead.owner, "pool": lead.pool,
                         "attributes": {k: v for k, v in _attrs(lead).items() if v}},
            "evidence": self._evidence(lead, d, stored, pool),
        }

    def _evidence(self, lead: Lead, d: Dispute, stored: list[Stored], pool: Pool) -> dict[str, Any]:
        attempts = [_attempt(s) for s in stored if isinstance(s.event, ATTEMPTS)]
        follow_ups = [_follow_up(s) for s in stored if isinstance(s.event, ev.FollowUpLogged)]
        used = {a["rules_version"] for a in attempts} | {
            s.event.rules_version for s in stored if isinstance(s.event, (ev.LeadRecycled, ev.RecycleWarned))}
        duplicates = self._duplicates(lead, stored)
        for dup in duplicates:  # the same customer worked under another lead counts too
            follow_ups += dup.pop("follow_ups")
        follow_ups.sort(key=lambda f: f["position"])
        ownership = _intervals(stored)
        involved = sorted(
            {a["rep"] for a in attempts} | {f["rep"] for f in follow_ups if f["lead"] == lead.id}
            | {i["owner"] for i in ownership} | {d.opened_by} | ({d.awarded_to} if d.awarded_to else set()))
        return {
            "ownership": ownership,
            "attempts": attempts,
            "follow_ups": follow_ups,
            "rules": _rule_rows(pool, used),
            "duplicates": duplicates,
            "involved": involved,
            "by_rep": [_rep_summary(rep, ownership, attempts, follow_ups, lead.id) for rep in involved],
            "dispute_events": [event_dict(s) for s in stored
                               if isinstance(s.event, (ev.DisputeOpened, ev.DisputeResolved))
                               and s.event.dispute == d.id],
            "backdated": [s.position for s in stored if event_dict(s)["backdated"]],
        }

    def _duplicates(self, lead: Lead, stored: list[Stored]) -> list[dict[str, Any]]:
        """Leads sharing a phone, email or company with this one, either way round, with who
        held them when and the follow-ups logged on them."""
        a = lead.attributes
        found: dict[tuple[str, str], dict[str, Any]] = {}
        for k in self.store.find_keys(lead_keys(a.company, a.phone, a.email)):
            if k.lead != lead.id:
                found[(k.lead, k.kind)] = {"lead": k.lead, "field": k.kind, "value": k.value}
        for s in stored:
            if isinstance(s.event, ev.LeadAdded):
                for m in s.event.duplicates:
                    found[(m.lead, m.field)] = {"lead": m.lead, "field": m.field, "value": m.value}
        out, seen = [], set()
        for (other_id, _), row in sorted(found.items()):
            other_stream = self.store.read_stream(lead_stream(other_id))
            other = replay(Lead(Head(lead_stream(other_id)), other_id), other_stream)
            first = other_id not in seen
            seen.add(other_id)
            added = other_stream[0] if other_stream else None
            out.append({
                **row, "status": other.status if other.exists else None, "owner": other.owner,
                "pool": other.pool or None,
                "added_at": format_time(added.event.occurred_at) if added else None,
                "added_position": added.position if added else None,
                "ownership": _intervals(other_stream),
                "follow_ups": [_follow_up(s) for s in other_stream
                               if first and isinstance(s.event, ev.FollowUpLogged)],
            })
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


# --- evidence rows --------------------------------------------------------------------------

def _attrs(lead: Lead) -> dict[str, Any]:
    a = lead.attributes
    return {k: getattr(a, k) for k in ("company", "contact", "phone", "email", "region", "industry", "source")}


def _intervals(stored: list[Stored]) -> list[dict[str, Any]]:
    """Ownership intervals, each with the conversion (deal) made while it lasted, if any."""
    intervals = ownership_intervals(stored)
    for s in stored:
        if isinstance(s.event, ev.LeadConverted):
            for i in intervals:
                if i["start_position"] < s.position and (i["end_position"] is None or s.position < i["end_position"]):
                    i.update(converted_at=format_time(s.event.occurred_at), deal=s.event.deal,
                             converted_position=s.position)
    return intervals


def _attempt(s: Stored) -> dict[str, Any]:
    e = s.event
    refused = isinstance(e, ev.Refusal)
    row = event_dict(s)
    return {
        "position": s.position, "type": type(e).__name__, "rep": e.rep, "actor": e.actor,
        "occurred_at": row["occurred_at"], "recorded_at": row["recorded_at"], "backdated": row["backdated"],
        "accepted": not refused, "reason": getattr(e, "reason", None), "message": e.message if refused else None,
        "owner_then": e.owner if refused else getattr(e, "from_rep", None),
        "owner_since_position": e.owner_since_position if refused else None,
        "facts": dict(e.facts) if refused else {}, "rules_version": e.rules_version,
        "dispute": getattr(e, "dispute", None),
    }


def _follow_up(s: Stored) -> dict[str, Any]:
    row = event_dict(s)
    e = s.event
    return {"position": s.position, "lead": e.lead, "rep": e.rep, "occurred_at": row["occurred_at"],
            "recorded_at": row["recorded_at"], "backdated": row["backdated"], "channel": e.channel,
            "note": e.note}


def _rules_row(pool: Pool, version: int) -> dict[str, Any] | None:
    for rv in pool.rule_versions:
        if rv.version == version:
            return {"version": rv.version, "since": format_time(rv.since), "position": rv.position,
                    **rules_dict(rv.rules)}
    return None


def _rule_rows(pool: Pool, used: set[int | None]) -> list[dict[str, Any]]:
    """Every rule version of the lead's pool: when it was in force, and whether it decided here."""
    rows = []
    versions = pool.rule_versions
    for n, rv in enumerate(versions):
        until = versions[n + 1].since if n + 1 < len(versions) else None
        rows.append({**_rules_row(pool, rv.version), "until": format_time(until), "used": rv.version in used})
    return rows


def _rep_summary(rep: str, ownership: list[dict], attempts: list[dict], follow_ups: list[dict],
                 lead_id: str) -> dict[str, Any]:
    """One rep's part in the story: first attempt, holdings, refusals, contact with the customer."""
    mine = [a for a in attempts if a["rep"] == rep]
    held = [i for i in ownership if i["owner"] == rep]
    fus = [f for f in follow_ups if f["rep"] == rep]
    here = [f for f in fus if f["lead"] == lead_id]

    def first(rows: list[dict]) -> str | None:
        return f"{rows[0]['occurred_at']} (#{rows[0]['position']})" if rows else None

    return {
        "rep": rep,
        "first_attempt": first(mine),
        "first_held": first([{"occurred_at": i["from"], "position": i["start_position"]} for i in held]),
        "times_held": len(held),
        "refused": sum(1 for a in mine if not a["accepted"]),
        "follow_ups": len(here),
        "follow_ups_on_duplicates": len(fus) - len(here),
        "first_follow_up": first(fus),
        "last_follow_up": f"{fus[-1]['occurred_at']} (#{fus[-1]['position']})" if fus else None,
    }


def _both_deadlines(rules: ev.Rules, lead: Lead) -> list[tuple[str, datetime, int]]:
    out = []
    if rules.idle_limit > 0:
        base = max(lead.placed_at, lead.last_follow_up or lead.placed_at)
        out.append(("idle_limit", add(base, rules.idle_limit), rules.idle_limit))
    if rules.hold_limit > 0:
        out.append(("hold_limit", add(lead.placed_at, rules.hold_limit), rules.hold_limit))
    return out


def _last(stored: list[Stored], kind: type) -> Stored | None:
    return next((s for s in reversed(stored) if isinstance(s.event, kind)), None)


def _dispute_brief(d: Dispute) -> dict[str, Any]:
    return {
        "dispute": d.id, "lead": d.lead, "status": "resolved" if d.outcome else "open",
        "opened_by": d.opened_by, "opened_at": format_time(d.opened_at), "reason": d.reason,
        "owner_at_open": d.owner_at_open, "open_position": d.position, "outcome": d.outcome,
        "resolved_by": d.resolved_by, "resolved_at": format_time(d.resolved_at), "rationale": d.rationale,
        "awarded_to": d.awarded_to, "resolved_position": d.resolved_position,
    }


# --- explain in words -----------------------------------------------------------------------

def _reasons(lead: Lead, placed: Stored, due: Any, now: datetime, version: int, dispute: dict | None,
             converted: Stored | None, cooldowns: list[dict]) -> list[str]:
    e = placed.event
    at = f"at {format_time(e.occurred_at)} (event #{placed.position}, by {e.actor})"
    out = []
    if isinstance(e, ev.LeadClaimed):
        out.append(f"{lead.id} is {'converted and ' if converted else ''}held by {e.rep}, who claimed it {at} "
                   f"under rules v{e.rules_version} (claim_limit {e.claim_limit}; "
                   f"{e.rep} held {e.held_before} of pool {e.pool} before).")
    elif isinstance(e, ev.LeadAssigned):
        why = f" by the ruling on dispute {e.dispute}" if e.dispute else (f" ({e.reason})" if e.reason else "")
        out.append(f"{lead.id} is {'converted and ' if converted else ''}held by {e.rep}, who was assigned it "
                   f"from pool {e.pool}{why} {at} under rules v{e.rules_version}.")
    elif isinstance(e, ev.LeadReassigned):
        why = f"by the ruling on dispute {e.dispute}" if e.dispute else f"because: {e.reason}"
        out.append(f"{lead.id} is {'converted and ' if lead.status == CONVERTED else ''}held by {e.rep}: it was "
                   f"reassigned from {e.from_rep} {why}, {at}, under rules v{e.rules_version}.")
    elif isinstance(e, ev.LeadRecycled):
        out.append(f"{lead.id} is in pool {lead.pool}: it was recycled from {e.rep} {at}, because rule {e.rule} "
                   f"(limit {format_duration(e.limit)}, rules v{e.rules_version}) passed its deadline "
                   f"{format_time(e.deadline)}; {e.rep} had held it since {format_time(e.held_since)}, "
                   f"last follow-up {format_time(e.last_follow_up_at) or 'none'}.")
    elif isinstance(e, ev.LeadReturned):
        out.append(f"{lead.id} is in pool {lead.pool}: it was returned from {e.rep} {at}, because {e.reason}.")
    elif isinstance(e, ev.LeadReleased):
        why = f" ({e.reason})" if e.reason else ""
        out.append(f"{lead.id} is in pool {lead.pool}: {e.rep} released it{why} {at}.")
    elif isinstance(e, ev.LeadMoved):
        out.append(f"{lead.id} is in pool {lead.pool}: it was moved from pool {e.from_pool} {at}"
                   + (f" ({e.reason})." if e.reason else "."))
    else:
        out.append(f"{lead.id} is in pool {lead.pool}: it was added {at} and has never been held.")
    if dispute is not None:
        out.append(f"Dispute {dispute['dispute']} (opened by {dispute['opened_by']}: \"{dispute['reason']}\") "
                   f"was {dispute['outcome']} by {dispute['resolved_by']} at {dispute['resolved_at']}: "
                   f"\"{dispute['rationale']}\".")
    if converted is not None:
        c = converted.event
        deal = f" under deal {c.deal}" if c.deal else ""
        out.append(f"{c.rep} converted it{deal} at {format_time(c.occurred_at)} (event #{converted.position}); "
                   f"a converted lead is never recycled.")
    if due is not None:
        base = "its last follow-up" if due.rule == "idle_limit" and lead.last_follow_up else "the time it was taken"
        state = "was due" if now >= due.at else "is due"
        out.append(f"Under rules v{version} its recycle by {due.rule} ({format_duration(due.limit)} from {base}) "
                   f"{state} at {format_time(due.at)}" + (" — OVERDUE: the next sweep will recycle it."
                                                           if now >= due.at else f"; a warning goes out at "
                                                           f"{format_time(due.warn_at)}."))
    active = [c for c in cooldowns if c["active"]]
    if active:
        out.append("Cooldown: " + "; ".join(f"{c['rep']} may not claim it again until {c['until']}"
                                            for c in active) + ".")
    return out
