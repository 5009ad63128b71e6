"""Everything that can happen in the ledger, as immutable, past-tense facts.

Each event is a frozen, keyword-only msgspec Struct tagged with its class name, so one
decoder reads any of them. Stored events are never changed: a new field gets a default,
and a field never changes type.
"""

from __future__ import annotations

from datetime import datetime

import msgspec


class Rules(msgspec.Struct, frozen=True, kw_only=True):
    """A pool's rules; durations are whole seconds, 0 meaning 'none' where the rules table allows it."""

    claim_limit: int = 50
    daily_claim_limit: int = 0
    idle_limit: int = 30 * 86400
    hold_limit: int = 90 * 86400
    cooldown: int = 7 * 86400
    warn_before: int = 3 * 86400


class Event(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    occurred_at: datetime
    actor: str
    actor_kind: str = "person"  # "person" or "rule"


# --- people -------------------------------------------------------------------------------

class PersonRegistered(Event, frozen=True, kw_only=True):
    person: str
    name: str
    role: str
    team: str | None = None


class PersonDeactivated(Event, frozen=True, kw_only=True):
    person: str
    reassign_to: str | None = None


# --- pools --------------------------------------------------------------------------------

class PoolCreated(Event, frozen=True, kw_only=True):
    pool: str
    name: str
    rules: Rules


class PoolRulesChanged(Event, frozen=True, kw_only=True):
    pool: str
    rules: Rules
    rules_version: int


class MembersGranted(Event, frozen=True, kw_only=True):
    pool: str
    people: list[str]


class MembersRevoked(Event, frozen=True, kw_only=True):
    pool: str
    people: list[str]


# --- leads --------------------------------------------------------------------------------

class Attributes(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    company: str | None = None
    contact: str | None = None
    phone: str | None = None
    email: str | None = None
    region: str | None = None
    industry: str | None = None
    source: str | None = None


class DuplicateMatch(msgspec.Struct, frozen=True, kw_only=True):
    lead: str
    field: str  # phone | email | company
    # the normalised value both leads share; None since personal data is sealed (a phone or
    # email in the clear would outlive an erasure), so only the field and the lead are kept
    value: str | None = None


class LeadAdded(Event, frozen=True, kw_only=True):
    lead: str
    pool: str
    attributes: Attributes  # contact, phone and email are None here when `sealed` holds them
    duplicates: list[DuplicateMatch] = []
    sealed: str | None = None  # the personal fields, AEAD-sealed under the lead's key (sealing.py)


class LeadClaimed(Event, frozen=True, kw_only=True):
    lead: str
    pool: str
    rep: str
    rules_version: int
    claim_limit: int
    held_before: int


class Refusal(Event, frozen=True, kw_only=True):
    """A claim or assignment refused by a rule, kept as evidence: the reason,
    and for `lead_owned` the owner and the position of the event that made him owner."""

    lead: str
    pool: str
    rep: str
    reason: str
    message: str
    owner: str | None = None
    owner_since_position: int | None = None
    rules_version: int | None = None
    facts: dict[str, str | int] = {}


class ClaimRefused(Refusal, frozen=True, kw_only=True):
    pass


class LeadAssigned(Event, frozen=True, kw_only=True):
    lead: str
    pool: str
    rep: str
    reason: str | None = None
    rules_version: int
    dispute: str | None = None


class AssignmentRefused(Refusal, frozen=True, kw_only=True):
    pass


class LeadReassigned(Event, frozen=True, kw_only=True):
    lead: str
    pool: str
    from_rep: str
    rep: str
    reason: str
    rules_version: int
    dispute: str | None = None


class LeadReleased(Event, frozen=True, kw_only=True):
    lead: str
    pool: str
    rep: str
    reason: str | None = None


class LeadReturned(Event, frozen=True, kw_only=True):
    """A deactivated rep's lead, returned to its pool."""

    lead: str
    pool: str
    rep: str
    reason: str


class FollowUpLogged(Event, frozen=True, kw_only=True):
    lead: str
    rep: str
    note: str | None = None  # in the clear only in events stored before notes were sealed
    channel: str = "other"
    sealed: str | None = None  # the note, AEAD-sealed under the lead's key (sealing.py)


class LeadConverted(Event, frozen=True, kw_only=True):
    lead: str
    pool: str
    rep: str
    deal: str | None = None


class LeadMoved(Event, frozen=True, kw_only=True):
    lead: str
    from_pool: str
    pool: str
    reason: str | None = None


class RecycleWarned(Event, frozen=True, kw_only=True):
    lead: str
    rep: str
    rule: str  # idle_limit | hold_limit
    recycle_at: datetime
    rules_version: int
    limit: int


class LeadRecycled(Event, frozen=True, kw_only=True):
    lead: str
    pool: str
    rep: str
    rule: str  # idle_limit | hold_limit
    limit: int
    rules_version: int
    deadline: datetime
    held_since: datetime
    last_follow_up_at: datetime | None


class PersonalDataErased(Event, frozen=True, kw_only=True):
    """The lead's key and duplicate-check hashes were deleted: its sealed personal fields can
    never be read again. `plaintext_in_log`: events stored before sealing still hold some."""

    lead: str
    reason: str
    plaintext_in_log: bool = False


# --- a rep's holdings in one pool: the stream that makes claim limits hold under races ----

class HoldingsChanged(Event, frozen=True, kw_only=True):
    rep: str
    pool: str
    lead: str
    held: int  # leads of this pool he holds (not converted) after this change
    day: str  # UTC day of the claims counted below
    claims_on_day: int


class HoldingsClosed(Event, frozen=True, kw_only=True):
    """A deactivated rep's holdings in one pool, closed with the counts they end at. Written on
    each of his desks, it makes a claim of his that races with the deactivation collide with
    it: whichever appends second re-reads, and sees him inactive or the lead he took."""

    rep: str
    pool: str
    held: int
    day: str
    claims_on_day: int


# --- disputes -----------------------------------------------------------------------------

class DisputeOpened(Event, frozen=True, kw_only=True):
    dispute: str
    lead: str
    reason: str
    owner: str | None = None


class DisputeResolved(Event, frozen=True, kw_only=True):
    dispute: str
    lead: str
    outcome: str  # awarded | upheld
    owner: str | None
    rationale: str


AnyEvent = (
    PersonRegistered | PersonDeactivated
    | PoolCreated | PoolRulesChanged | MembersGranted | MembersRevoked
    | LeadAdded | LeadClaimed | ClaimRefused | LeadAssigned | AssignmentRefused
    | LeadReassigned | LeadReleased | LeadReturned | FollowUpLogged | LeadConverted
    | LeadMoved | RecycleWarned | LeadRecycled | PersonalDataErased
    | HoldingsChanged | HoldingsClosed
    | DisputeOpened | DisputeResolved
)

# Events that change who owns a lead, and those that end an ownership.
OWNERSHIP_STARTS = (LeadClaimed, LeadAssigned, LeadReassigned)
OWNERSHIP_ENDS = (LeadReleased, LeadReturned, LeadRecycled, LeadReassigned)
