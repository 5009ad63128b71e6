"""Pure decisions: state + command + time -> events, or an error.

Nothing here reads a clock or touches storage. A refusal that must be
recorded comes back as a `ClaimRefused` / `AssignmentRefused` event; other refusals raise.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ledger import events as ev
from ledger import refusals
from ledger.errors import InvalidInput, LastAdmin, PermissionDenied, Refused
from ledger.i18n import _, english
from ledger.state import CONVERTED, HELD, POOLED, Desk, Lead, Person, Pool, RuleVersion
from ledger.values import add, check_at, day_of, format_duration, format_time

HOLDERS = ("rep", "manager")
ROLES = ("admin", "manager", "rep", "auditor")

# Which roles may run each write command (README: roles).
ALLOWED = {
    "person.add": ("admin",),
    "person.deactivate": ("admin",),
    "pool.create": ("admin",),
    "pool.rules": ("admin",),
    "pool.grant": ("admin",),
    "pool.revoke": ("admin",),
    "lead.add": ("admin", "manager", "rep"),
    "lead.import": ("admin", "manager"),
    "claim": HOLDERS,
    "release": HOLDERS,
    "follow-up": HOLDERS,
    "convert": HOLDERS,
    "assign": ("admin", "manager"),
    "reassign": ("admin", "manager"),
    "move": ("admin", "manager"),
    "sweep": ("admin", "manager"),
    "dispute.open": ("admin", "manager", "rep", "auditor"),
    "dispute.resolve": ("admin", "auditor"),
    "lead.erase": ("admin",),
}


def authorise(actor: Person, command: str) -> None:
    if actor.role not in ALLOWED[command]:
        raise PermissionDenied(
            _("{actor} is {a_role} and may not {action}", actor=actor.id, a_role=refusals.a_role(actor.role),
              action=command.replace(".", " ")),
            actor=actor.id, role=actor.role,
        )


def check_time(lead: Lead, at: datetime) -> None:
    """Within one lead, events may not go back in time."""
    if lead.last_event_at is not None and at < lead.last_event_at:
        raise InvalidInput(
            _("--at {at} is earlier than lead {lead}'s latest event ({latest})", at=format_time(at),
              lead=lead.id, latest=format_time(lead.last_event_at)),
            lead=lead.id, latest=format_time(lead.last_event_at),
        )


def check_when(at: datetime, now: datetime, actor: Person | None = None, pool: Pool | None = None,
               lead: Lead | None = None, *, name: str = "--at") -> datetime:
    """A command's time: not more than 5 minutes after the store's clock `now`, not before the
    actor was registered or the pool created, not before the lead's latest event."""
    floors = []
    if actor is not None and actor.registered_at is not None:
        floors.append((_("the registration of {person}", person=actor.id), actor.registered_at))
    if pool is not None and pool.created_at is not None:
        floors.append((_("the creation of pool {pool}", pool=pool.id), pool.created_at))
    check_at(at, now, not_before=floors, name=name)
    if lead is not None:
        check_time(lead, at)
    return at


def check_not_last_admin(person: Person, active_admins: int) -> None:
    """The last active admin cannot be deactivated: nobody could run the ledger after him.
    `active_admins` counts every active admin, him included."""
    if person.role == "admin" and person.active and active_admins <= 1:
        raise LastAdmin(_("{person} is the last active admin; register another admin first", person=person.id),
                        person=person.id)


def check_member(actor: Person, pool: Pool) -> None:
    """Managers and reps act only on pools they belong to; admins on any."""
    if actor.role != "admin" and actor.id not in pool.members:
        raise Refused("not_pool_member", _("{person} is not a member of pool {pool}", person=actor.id, pool=pool.id),
                      person=actor.id, pool=pool.id)


def check_holder(person: Person) -> None:
    if person.role not in HOLDERS:
        raise InvalidInput(_("{person} is {a_role}; only reps and managers hold leads", person=person.id,
                             a_role=refusals.a_role(person.role)),
                           person=person.id)
    if not person.active:
        raise Refused("actor_inactive", _("{person} is deactivated", person=person.id), person=person.id)


def _holdings_after(desk: Desk, delta: int, at: datetime, lead: str, actor: str,
                    claims: int = 0, kind: str = "person") -> ev.HoldingsChanged:
    """The desk after `delta` held leads and `claims` claims (counted per UTC day)."""
    day, on_day = desk.day, desk.claims_on_day
    if claims:
        day = day_of(at)
        on_day = (on_day if desk.day == day else 0) + claims
    return ev.HoldingsChanged(
        occurred_at=at, actor=actor, actor_kind=kind, rep=desk.rep, pool=desk.pool, lead=lead,
        held=desk.held + delta, day=day, claims_on_day=on_day,
    )


def _facts(details: dict) -> dict:
    return {k: v for k, v in details.items() if k not in ("owner", "owner_since_position")}


def _owned_refusal(lead: Lead) -> tuple[str, str, dict]:
    if lead.status == CONVERTED:
        return "lead_converted", english(refusals.CONVERTED_BY, lead=lead.id, owner=lead.owner), {"owner": lead.owner}
    return (
        "lead_owned",
        english(refusals.OWNED_SINCE, lead=lead.id, owner=lead.owner, position=lead.placed_position,
                since=format_time(lead.placed_at)),
        {"owner": lead.owner, "owner_since_position": lead.placed_position},
    )


def _limit_refusal(desk: Desk, rv: RuleVersion, rep: str) -> tuple[str, str, dict] | None:
    if desk.held >= rv.rules.claim_limit:
        return (
            "claim_limit_reached",
            english(refusals.CLAIM_LIMIT, rep=rep, held=desk.held, pool=desk.pool,
                    claim_limit=rv.rules.claim_limit, version=rv.version),
            {"held": desk.held, "claim_limit": rv.rules.claim_limit},
        )
    return None


def check_desks(at: datetime, *desks: Desk) -> None:
    """A command that changes a rep's holdings may not be dated before their latest change: his
    count and his claims of the day are known as of then, not before (a claim dated earlier
    would be judged on holdings that were not yet his)."""
    for desk in desks:
        if desk.last_event_at is not None and at < desk.last_event_at:
            raise InvalidInput(
                _("--at {at} is earlier than the latest change of {rep}'s holdings in pool {pool} ({latest})",
                  at=format_time(at), rep=desk.rep, pool=desk.pool, latest=format_time(desk.last_event_at)),
                rep=desk.rep, pool=desk.pool, latest=format_time(desk.last_event_at))


def claim(lead: Lead, pool: Pool, desk: Desk, rep: Person, at: datetime) -> list[ev.Event]:
    check_desks(at, desk)
    rv = pool.rules_at(at)
    refusal = None
    if lead.status != POOLED:
        refusal = _owned_refusal(lead)
    elif not pool.member_at(rep.id, at):
        refusal = ("not_pool_member", english(refusals.NOT_MEMBER, person=rep.id, pool=pool.id), {})
    else:
        left = lead.left(rep.id)
        if left is not None and at < add(left, rv.rules.cooldown):
            until = add(left, rv.rules.cooldown)
            refusal = (
                "cooldown_active",
                english(refusals.COOLDOWN, lead=lead.id, rep=rep.id, left_at=format_time(left),
                        cooldown=format_duration(rv.rules.cooldown), until=format_time(until)),
                {"left_at": format_time(left), "cooldown_until": format_time(until)},
            )
        else:
            refusal = _limit_refusal(desk, rv, rep.id)
            daily = rv.rules.daily_claim_limit
            if refusal is None and daily and desk.day == day_of(at) and desk.claims_on_day >= daily:
                refusal = (
                    "daily_limit_reached",
                    english(refusals.DAILY_LIMIT, rep=rep.id, claimed=desk.claims_on_day, pool=pool.id,
                            day=desk.day, daily=daily, version=rv.version),
                    {"claims_today": desk.claims_on_day, "daily_claim_limit": daily},
                )
    if refusal is not None:
        code, message, details = refusal
        return [ev.ClaimRefused(
            occurred_at=at, actor=rep.id, lead=lead.id, pool=lead.pool, rep=rep.id, reason=code,
            message=message, owner=details.get("owner"),
            owner_since_position=details.get("owner_since_position"), rules_version=rv.version,
            facts=_facts(details),
        )]
    return [
        ev.LeadClaimed(
            occurred_at=at, actor=rep.id, lead=lead.id, pool=lead.pool, rep=rep.id,
            rules_version=rv.version, claim_limit=rv.rules.claim_limit, held_before=desk.held,
        ),
        _holdings_after(desk, +1, at, lead.id, rep.id, claims=1),
    ]


def _assignment_refusal(lead: Lead, pool: Pool, desk: Desk, rep: Person, at: datetime,
                        actor: Person, need: str) -> ev.AssignmentRefused | None:
    rv = pool.rules_at(at)
    refusal = None
    if lead.status == CONVERTED or (need == POOLED and lead.status == HELD):
        refusal = _owned_refusal(lead)
    elif need == HELD and lead.status == POOLED:
        refusal = ("lead_pooled", english(refusals.POOLED, lead=lead.id, pool=lead.pool), {})
    elif not pool.member_at(rep.id, at):
        refusal = ("not_pool_member", english(refusals.NOT_MEMBER, person=rep.id, pool=pool.id), {})
    else:
        refusal = _limit_refusal(desk, rv, rep.id)
    if refusal is None:
        return None
    code, message, details = refusal
    return ev.AssignmentRefused(
        occurred_at=at, actor=actor.id, lead=lead.id, pool=lead.pool, rep=rep.id, reason=code,
        message=message, owner=details.get("owner"),
        owner_since_position=details.get("owner_since_position"), rules_version=rv.version,
        facts=_facts(details),
    )


def assign(lead: Lead, pool: Pool, desk: Desk, rep: Person, actor: Person, at: datetime,
           reason: str | None) -> list[ev.Event]:
    check_desks(at, desk)
    refused = _assignment_refusal(lead, pool, desk, rep, at, actor, POOLED)
    if refused:
        return [refused]
    return [
        ev.LeadAssigned(occurred_at=at, actor=actor.id, lead=lead.id, pool=lead.pool, rep=rep.id,
                        reason=reason, rules_version=pool.rules_at(at).version),
        _holdings_after(desk, +1, at, lead.id, actor.id),
    ]


def reassign(lead: Lead, pool: Pool, old_desk: Desk, desk: Desk, rep: Person, actor: Person,
             at: datetime, reason: str) -> list[ev.Event]:
    if lead.owner == rep.id and lead.status == HELD:
        raise InvalidInput(_("lead {lead} is already held by {rep}", lead=lead.id, rep=rep.id))
    check_desks(at, old_desk, desk)
    refused = _assignment_refusal(lead, pool, desk, rep, at, actor, HELD)
    if refused:
        return [refused]
    return [
        ev.LeadReassigned(occurred_at=at, actor=actor.id, lead=lead.id, pool=lead.pool,
                          from_rep=lead.owner, rep=rep.id, reason=reason,
                          rules_version=pool.rules_at(at).version),
        _holdings_after(old_desk, -1, at, lead.id, actor.id),
        _holdings_after(desk, +1, at, lead.id, actor.id),
    ]


def check_import_owner(rep: Person, pool: Pool) -> None:
    """Whom an import may give a lead: an active rep or manager who is a member of the pool."""
    check_holder(rep)
    if rep.id not in pool.members:
        raise Refused("not_pool_member", _("{person} is not a member of pool {pool}", person=rep.id, pool=pool.id),
                      person=rep.id, pool=pool.id)


def import_held(lead_id: str, pool: Pool, desk: Desk, rep: Person, actor: Person, since: datetime,
                follow_up: datetime | None) -> list[ev.Event]:
    """A lead the rep already held before the import: assigned at `since` (reason `import`),
    his holdings one more, then his last follow-up. Not limited by claim_limit: an import
    records the present (the caller lists who is over it)."""
    events: list[ev.Event] = [
        ev.LeadAssigned(occurred_at=since, actor=actor.id, lead=lead_id, pool=pool.id, rep=rep.id,
                        reason="import", rules_version=pool.rules_at(since).version),
        _holdings_after(desk, +1, since, lead_id, actor.id),
    ]
    if follow_up is not None:
        events.append(ev.FollowUpLogged(occurred_at=follow_up, actor=actor.id, lead=lead_id, rep=rep.id,
                                        note="imported", channel="other"))
    return events


def _check_owner(lead: Lead, actor: Person, *, converted_ok: bool = False) -> None:
    if lead.status == POOLED:
        raise Refused("lead_pooled", _("lead {lead} is in pool {pool}, not held", lead=lead.id, pool=lead.pool),
                      lead=lead.id)
    if lead.owner != actor.id:
        raise Refused("not_owner", _("lead {lead} is held by {owner}, not {actor}", lead=lead.id, owner=lead.owner,
                                      actor=actor.id),
                      lead=lead.id, owner=lead.owner)
    if lead.status == CONVERTED and not converted_ok:
        raise Refused("lead_converted", _("lead {lead} is already converted", lead=lead.id), lead=lead.id,
                      owner=lead.owner)


def release(lead: Lead, desk: Desk, actor: Person, at: datetime, reason: str | None) -> list[ev.Event]:
    _check_owner(lead, actor)
    return [
        ev.LeadReleased(occurred_at=at, actor=actor.id, lead=lead.id, pool=lead.pool,
                        rep=actor.id, reason=reason),
        _holdings_after(desk, -1, at, lead.id, actor.id),
    ]


def follow_up(lead: Lead, actor: Person, at: datetime, note: str, channel: str) -> list[ev.Event]:
    _check_owner(lead, actor, converted_ok=True)
    return [ev.FollowUpLogged(occurred_at=at, actor=actor.id, lead=lead.id, rep=actor.id,
                              note=note, channel=channel)]


def convert(lead: Lead, desk: Desk, actor: Person, at: datetime, deal: str | None) -> list[ev.Event]:
    _check_owner(lead, actor)
    return [
        ev.LeadConverted(occurred_at=at, actor=actor.id, lead=lead.id, pool=lead.pool,
                         rep=actor.id, deal=deal),
        _holdings_after(desk, -1, at, lead.id, actor.id),
    ]


def move(lead: Lead, target: Pool, actor: Person, at: datetime, reason: str | None) -> list[ev.Event]:
    if lead.status != POOLED:
        code, message, details = _owned_refusal(lead)
        raise Refused(code, refusals.reword(message), lead=lead.id, **details)
    if target.id == lead.pool:
        raise InvalidInput(_("lead {lead} is already in pool {pool}", lead=lead.id, pool=target.id))
    return [ev.LeadMoved(occurred_at=at, actor=actor.id, lead=lead.id, from_pool=lead.pool,
                         pool=target.id, reason=reason)]


# --- recycling ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Deadline:
    rule: str  # idle_limit | hold_limit
    at: datetime
    limit: int
    rules: RuleVersion
    warn_at: datetime


def next_deadline(rules: ev.Rules, held_since: datetime, last_follow_up: datetime | None
                  ) -> tuple[str, datetime, int] | None:
    """(rule, when, limit) of the earliest recycle deadline, or None if no rule applies."""
    options = []
    if rules.idle_limit > 0:
        base = max(held_since, last_follow_up or held_since)
        options.append(("idle_limit", add(base, rules.idle_limit), rules.idle_limit))
    if rules.hold_limit > 0:
        options.append(("hold_limit", add(held_since, rules.hold_limit), rules.hold_limit))
    return min(options, key=lambda o: (o[1], o[0] != "hold_limit")) if options else None


def deadline(lead: Lead, pool: Pool, now: datetime) -> Deadline | None:
    """The next recycle deadline of a held lead, under the rules in force at `now`."""
    if lead.status != HELD or lead.placed_at is None:
        return None
    rv = pool.rules_at(now)
    found = next_deadline(rv.rules, lead.placed_at, lead.last_follow_up)
    if found is None:
        return None
    rule, at, limit = found
    return Deadline(rule, at, limit, rv, add(at, -rv.rules.warn_before))


def sweep_lead(lead: Lead, pool: Pool, desk: Desk, now: datetime, actor: str) -> list[ev.Event]:
    """Recycle an overdue lead, or warn once before its deadline; else nothing."""
    due = deadline(lead, pool, now)
    if due is None or (lead.last_event_at and now < lead.last_event_at):
        return []
    if now >= due.at:
        return [
            ev.LeadRecycled(
                occurred_at=now, actor=actor, actor_kind="rule", lead=lead.id, pool=lead.pool,
                rep=lead.owner, rule=due.rule, limit=due.limit, rules_version=due.rules.version,
                deadline=due.at, held_since=lead.placed_at, last_follow_up_at=lead.last_follow_up,
            ),
            _holdings_after(desk, -1, now, lead.id, actor, kind="rule"),
        ]
    if now >= due.warn_at and lead.warned_for != due.at:
        return [ev.RecycleWarned(
            occurred_at=now, actor=actor, actor_kind="rule", lead=lead.id, rep=lead.owner,
            rule=due.rule, recycle_at=due.at, rules_version=due.rules.version, limit=due.limit,
        )]
    return []


def return_on_deactivation(lead: Lead, desk: Desk, actor: Person, at: datetime) -> list[ev.Event]:
    return [
        ev.LeadReturned(occurred_at=at, actor=actor.id, lead=lead.id, pool=lead.pool,
                        rep=lead.owner, reason=english(refusals.OWNER_DEACTIVATED, owner=lead.owner)),
        _holdings_after(desk, -1, at, lead.id, actor.id),
    ]


def hand_over(lead: Lead, pool: Pool, old_desk: Desk, desk: Desk, rep: Person, actor: Person,
              at: datetime, reason: str, dispute: str | None = None) -> list[ev.Event]:
    """A ruling (deactivation --reassign-to, dispute award): membership only, no limit."""
    if rep.id not in pool.members:
        raise Refused("not_pool_member", _("{person} is not a member of pool {pool}", person=rep.id, pool=pool.id),
                      person=rep.id, pool=pool.id)
    rv = pool.rules_at(at)
    if lead.status == CONVERTED:  # the deal stays won; only who holds it changes
        return [ev.LeadReassigned(occurred_at=at, actor=actor.id, lead=lead.id, pool=lead.pool,
                                  from_rep=lead.owner, rep=rep.id, reason=reason,
                                  rules_version=rv.version, dispute=dispute)]
    if lead.status == POOLED:
        return [
            ev.LeadAssigned(occurred_at=at, actor=actor.id, lead=lead.id, pool=lead.pool,
                            rep=rep.id, reason=reason, rules_version=rv.version, dispute=dispute),
            _holdings_after(desk, +1, at, lead.id, actor.id),
        ]
    return [
        ev.LeadReassigned(occurred_at=at, actor=actor.id, lead=lead.id, pool=lead.pool,
                          from_rep=lead.owner, rep=rep.id, reason=reason,
                          rules_version=rv.version, dispute=dispute),
        _holdings_after(old_desk, -1, at, lead.id, actor.id),
        _holdings_after(desk, +1, at, lead.id, actor.id),
    ]


def erase_personal_data(by: Person, lead: Lead, at: datetime, reason: str, *, erased: bool,
                        plaintext_in_log: bool) -> ev.PersonalDataErased:
    """Erase a lead's personal data; once only."""
    if erased:
        raise Refused("already_erased", _("the personal data of lead {lead} is already erased", lead=lead.id),
                      lead=lead.id)
    check_time(lead, at)
    return ev.PersonalDataErased(occurred_at=at, actor=by.id, lead=lead.id, reason=reason,
                                 plaintext_in_log=plaintext_in_log)
