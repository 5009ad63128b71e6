"""Current state of each stream, rebuilt from its events by `evolve`.

States are frozen dataclasses; `evolve(state, stored)` returns the next one. Each state
knows its stream's version and head hash, which a new event must follow.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import singledispatch
from typing import NamedTuple

from ledger import codec
from ledger import events as ev

HELD, POOLED, CONVERTED = "held", "pooled", "converted"


class Head(NamedTuple):  # a named tuple: made for every event replayed, and quick to make
    stream: str
    version: int = 0
    hash: str = codec.GENESIS


@dataclass(frozen=True)
class Person:
    head: Head
    id: str
    name: str = ""
    role: str = ""
    team: str | None = None
    active: bool = True
    exists: bool = False
    registered_at: datetime | None = None  # a command he performs may not be earlier


@dataclass(frozen=True)
class RuleVersion:
    version: int
    since: datetime
    rules: ev.Rules
    position: int


@dataclass(frozen=True)
class Pool:
    head: Head
    id: str
    name: str = ""
    rule_versions: tuple[RuleVersion, ...] = ()
    members: frozenset[str] = frozenset()
    exists: bool = False
    created_at: datetime | None = None  # a command on the pool may not be earlier
    joined: Mapping[str, datetime] = field(default_factory=dict)  # each member's latest grant

    def member_at(self, person: str, at: datetime) -> bool:
        """Whether `person` is a member now and was one at `at` (a backdated claim or
        assignment is judged by the membership of its own time)."""
        return person in self.members and self.joined.get(person, at) <= at

    @property
    def rules(self) -> ev.Rules:
        return self.rule_versions[-1].rules

    @property
    def rules_version(self) -> int:
        return self.rule_versions[-1].version

    def rules_at(self, at: datetime) -> RuleVersion:
        """The rule version in force at `at` (the first one if `at` is earlier than all)."""
        found = self.rule_versions[0]
        for rv in self.rule_versions:
            if rv.since <= at:
                found = rv
        return found


@dataclass(frozen=True)
class Dispute:
    id: str
    lead: str
    opened_by: str
    opened_at: datetime
    reason: str
    owner_at_open: str | None
    position: int
    outcome: str | None = None
    resolved_by: str | None = None
    resolved_at: datetime | None = None
    rationale: str | None = None
    awarded_to: str | None = None
    resolved_position: int | None = None


@dataclass(frozen=True)
class Lead:
    head: Head
    id: str
    pool: str = ""
    attributes: ev.Attributes = field(default_factory=ev.Attributes)
    status: str = POOLED
    owner: str | None = None
    placed_at: datetime | None = None  # when the lead came to where it is (pool or owner)
    placed_position: int | None = None
    placed_by: str | None = None  # the event type that put it there
    last_follow_up: datetime | None = None
    last_event_at: datetime | None = None
    left_at: tuple[tuple[str, datetime], ...] = ()  # (rep, most recent time it left him)
    warned_for: datetime | None = None  # the deadline a warning was issued for
    deal: str | None = None
    disputes: tuple[Dispute, ...] = ()
    exists: bool = False

    def left(self, rep: str) -> datetime | None:
        for who, when in self.left_at:
            if who == rep:
                return when
        return None

    def dispute(self, dispute_id: str) -> Dispute | None:
        for d in self.disputes:
            if d.id == dispute_id:
                return d
        return None


@dataclass(frozen=True)
class Desk:
    """A rep's holdings in one pool: how many he holds, and his claims on one day."""

    head: Head
    rep: str
    pool: str
    held: int = 0
    day: str = ""
    claims_on_day: int = 0
    last_event_at: datetime | None = None  # an ownership command on it may not be earlier


def person_stream(person_id: str) -> str:
    return f"person:{person_id}"


def pool_stream(pool_id: str) -> str:
    return f"pool:{pool_id}"


def lead_stream(lead_id: str) -> str:
    return f"lead:{lead_id}"


def desk_stream(rep: str, pool: str) -> str:
    return f"desk:{pool}:{rep}"


# --- evolve ---------------------------------------------------------------------------------

def _with(state, **changes):
    """A copy of a state with some fields changed: `dataclasses.replace` without re-running
    `__init__`, which is most of the cost of replaying a stream (states are plain records)."""
    new = object.__new__(type(state))
    new.__dict__.update(state.__dict__, **changes)
    return new


def advance(state, stored):
    """Move a state's head past one stored event, then apply the event."""
    state = _with(state, head=Head(state.head.stream, stored.version, stored.hash))
    return evolve(stored.event, state, stored)


@singledispatch
def evolve(event, state, stored):  # noqa: ARG001
    return state


@evolve.register
def _(e: ev.PersonRegistered, s: Person, stored) -> Person:
    return _with(s, name=e.name, role=e.role, team=e.team, active=True, exists=True,
                 registered_at=e.occurred_at)


@evolve.register
def _(e: ev.PersonDeactivated, s: Person, stored) -> Person:
    return _with(s, active=False)


@evolve.register
def _(e: ev.PoolCreated, s: Pool, stored) -> Pool:
    return _with(
        s, name=e.name, exists=True, created_at=e.occurred_at,
        rule_versions=(RuleVersion(1, e.occurred_at, e.rules, stored.position),),
    )


@evolve.register
def _(e: ev.PoolRulesChanged, s: Pool, stored) -> Pool:
    rv = RuleVersion(e.rules_version, e.occurred_at, e.rules, stored.position)
    return _with(s, rule_versions=(*s.rule_versions, rv))


@evolve.register
def _(e: ev.MembersGranted, s: Pool, stored) -> Pool:
    joined = {**s.joined, **{p: e.occurred_at for p in e.people if p not in s.members}}
    return _with(s, members=s.members | set(e.people), joined=joined)


@evolve.register
def _(e: ev.MembersRevoked, s: Pool, stored) -> Pool:
    joined = {p: t for p, t in s.joined.items() if p not in e.people}
    return _with(s, members=s.members - set(e.people), joined=joined)


def _touch(s: Lead, e: ev.Event) -> Lead:
    return _with(s, last_event_at=e.occurred_at)


def _placed(s: Lead, e: ev.Event, stored) -> Lead:
    return _with(s, placed_at=e.occurred_at, placed_position=stored.position,
                   placed_by=type(e).__name__)


def _take(s: Lead, e, stored) -> Lead:
    return _with(
        _placed(s, e, stored), status=HELD, owner=e.rep, last_follow_up=None, warned_for=None, last_event_at=e.occurred_at,
    )


def _leave(s: Lead, e, stored) -> Lead:
    left = tuple((r, t) for r, t in s.left_at if r != s.owner)
    if s.owner is not None:
        left = (*left, (s.owner, e.occurred_at))
    return _with(
        _placed(s, e, stored), status=POOLED, owner=None, last_follow_up=None, warned_for=None, left_at=left,
        last_event_at=e.occurred_at,
    )


@evolve.register
def _(e: ev.LeadAdded, s: Lead, stored) -> Lead:
    return _with(_placed(s, e, stored), pool=e.pool, attributes=e.attributes, exists=True,
                   last_event_at=e.occurred_at)


@evolve.register
def _(e: ev.LeadClaimed, s: Lead, stored) -> Lead:
    return _take(s, e, stored)


@evolve.register
def _(e: ev.LeadAssigned, s: Lead, stored) -> Lead:
    return _take(s, e, stored)


@evolve.register
def _(e: ev.LeadReassigned, s: Lead, stored) -> Lead:
    taken = _take(_leave(s, e, stored), e, stored)
    return _with(taken, status=CONVERTED, deal=s.deal) if s.status == CONVERTED else taken


@evolve.register(ev.LeadReleased)
@evolve.register(ev.LeadReturned)
@evolve.register(ev.LeadRecycled)
def _(e, s: Lead, stored) -> Lead:
    return _leave(s, e, stored)


@evolve.register
def _(e: ev.FollowUpLogged, s: Lead, stored) -> Lead:
    return _with(s, last_follow_up=e.occurred_at, last_event_at=e.occurred_at)


@evolve.register
def _(e: ev.LeadConverted, s: Lead, stored) -> Lead:
    return _with(s, status=CONVERTED, deal=e.deal, last_event_at=e.occurred_at)


@evolve.register
def _(e: ev.LeadMoved, s: Lead, stored) -> Lead:
    return _with(_placed(s, e, stored), pool=e.pool, last_event_at=e.occurred_at)


@evolve.register
def _(e: ev.RecycleWarned, s: Lead, stored) -> Lead:
    return _with(s, warned_for=e.recycle_at, last_event_at=e.occurred_at)


@evolve.register(ev.ClaimRefused)
@evolve.register(ev.AssignmentRefused)
@evolve.register(ev.PersonalDataErased)
def _(e, s: Lead, stored) -> Lead:
    return _touch(s, e)


@evolve.register
def _(e: ev.DisputeOpened, s: Lead, stored) -> Lead:
    d = Dispute(
        id=e.dispute, lead=e.lead, opened_by=e.actor, opened_at=e.occurred_at,
        reason=e.reason, owner_at_open=e.owner, position=stored.position,
    )
    return _with(s, disputes=(*s.disputes, d), last_event_at=e.occurred_at)


@evolve.register
def _(e: ev.DisputeResolved, s: Lead, stored) -> Lead:
    disputes = tuple(
        _with(
            d, outcome=e.outcome, resolved_by=e.actor, resolved_at=e.occurred_at,
            rationale=e.rationale, awarded_to=e.owner if e.outcome == "awarded" else None,
            resolved_position=stored.position,
        ) if d.id == e.dispute else d
        for d in s.disputes
    )
    return _with(s, disputes=disputes, last_event_at=e.occurred_at)


@evolve.register(ev.HoldingsChanged)
@evolve.register(ev.HoldingsClosed)
def _(e, s: Desk, stored) -> Desk:
    latest = e.occurred_at if s.last_event_at is None else max(s.last_event_at, e.occurred_at)
    return _with(s, held=e.held, day=e.day, claims_on_day=e.claims_on_day, last_event_at=latest)


def replay(state, stored_events):
    for stored in stored_events:
        state = advance(state, stored)
    return state
