"""The Ledger application: load state, decide, append with expected versions, retry a lost race.

Every CLI command is one call here, and other apps may call these methods directly. Write
methods take the acting person's id first and an optional `at` (business time); they return
plain dicts shaped as SPEC §3 describes, or raise a `LedgerError`.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import msgspec

from ledger import decisions
from ledger.codec import GENESIS
from ledger import events as ev
from ledger.errors import InvalidInput, LedgerError, NotFound, Refused, StoreUnavailable
from ledger.state import (
    CONVERTED, HELD, POOLED, Desk, Head, Lead, Person, Pool, desk_stream, lead_stream,
    advance, person_stream, pool_stream, replay,
)
from ledger.store import Conflict, LeadKey, NewEvent, Store, Stored, open_store
from ledger.values import format_time, lead_keys, parse_duration, parse_time
from ledger.audit import PLACEMENT_TOPICS, AuditQueries, placement_at
from ledger.feeds import Feeds
from ledger.integrity import Integrity
from ledger.shapes import DURATION_RULES, RULE_NAMES, event_dict, ownership_intervals, rules_dict
from projections.runner import Db, Projector, collector_paused

ATTRIBUTES = ("company", "contact", "phone", "email", "region", "industry", "source")
_ATTRIBUTE_SET = frozenset(ATTRIBUTES)
IMPORT_BATCH = 10_000  # leads per appended (all-or-nothing) batch of an import
CHANNELS = ("call", "visit", "email", "message", "meeting", "other")
MAX_ATTEMPTS = 60

_Row = tuple[int, str, ev.Attributes, list[tuple[str, str]]]  # an import row: line, lead, attributes, keys


def stream_of(event: ev.Event) -> str:
    if isinstance(event, (ev.HoldingsChanged, ev.HoldingsClosed)):
        return desk_stream(event.rep, event.pool)
    if isinstance(event, (ev.PersonRegistered, ev.PersonDeactivated)):
        return person_stream(event.person)
    if isinstance(event, (ev.PoolCreated, ev.PoolRulesChanged, ev.MembersGranted, ev.MembersRevoked)):
        return pool_stream(event.pool)
    return lead_stream(event.lead)


class Ledger(AuditQueries, Integrity, Feeds):
    """An ownership ledger over one store (a SQLite file or a PostgreSQL database)."""

    def __init__(self, store: Store | str | None = None, *, clock: Callable[[], datetime] | None = None):
        self.store = store if isinstance(store, Store) else open_store(store)
        self.clock = clock or (lambda: datetime.now(UTC))
        self.views = Projector(self.store)
        self._last_pool: str | None = None  # where the next command probably acts (a read-ahead guess)
        self._known_states: dict[str, Person | Pool | Desk] = {}  # as last read or written here

    def close(self) -> None:
        self.views.close()
        self.store.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- loading ------------------------------------------------------------------------

    def _ready(self) -> None:
        self.store.ensure_ready()

    def _since(self, *streams: str) -> dict[str, int]:
        """The versions up to which these person and pool streams are known: a read asks
        only for their events after that (see `_remembered`)."""
        return {s: found.head.version for s in streams if (found := self._known_states.get(s))}

    def _remembered(self, stream: str, initial: Callable[[], Person | Pool], stored: list[Stored] | None) -> Any:
        """A person or pool: the state remembered from an earlier read (or `initial()`), moved
        on by the events stored after it (`stored`, from a read that asked for those; read here
        when None). People and pools change rarely but are read by every command, and a pool's
        stream grows with each grant and rule change: replaying it whole each time would
        make commands slower as the ledger ages. The store is append-only, so a state once
        read stays true up to its version; events at or below the version remembered now
        (another thread may have moved it on meanwhile) are skipped."""
        if stored is None:
            stored = self.store.read_stream(stream, after_version=self._since(stream).get(stream, 0))
        state = self._known_states.get(stream)
        if state is None:
            state = initial()
        elif not stored:
            return state
        state = replay(state, [s for s in stored if s.version > state.head.version])
        self._keep(state)
        return state

    def _person(self, person_id: str, stored: list[Stored] | None = None) -> Person:
        stream = person_stream(person_id)
        return self._remembered(stream, lambda: Person(Head(stream), person_id), stored)

    def _pool(self, pool_id: str, stored: list[Stored] | None = None) -> Pool:
        stream = pool_stream(pool_id)
        pool = self._remembered(stream, lambda: Pool(Head(stream), pool_id), stored)
        if not pool.exists:
            raise NotFound("unknown_pool", f"no pool {pool_id!r}", pool=pool_id)
        return pool

    def _lead(self, lead_id: str, *, upto: int | None = None, must_exist: bool = True,
              stored: list[Stored] | None = None) -> Lead:
        stream = lead_stream(lead_id)
        if stored is None:
            stored = self.store.read_stream(stream, upto_position=upto)
        lead = replay(Lead(Head(stream), lead_id), stored)
        if must_exist and not lead.exists:
            raise NotFound("unknown_lead", f"no lead {lead_id!r}", lead=lead_id)
        return lead

    def _desk(self, rep: str, pool: str, last: list[Stored] | None = None) -> Desk:
        stream = desk_stream(rep, pool)
        if last is None:
            found = self.store.read_last(stream)
            last = [found] if found else []
        return replay(Desk(Head(stream), rep, pool), last)

    def _pool_and_desks(self, pool_id: str, *reps: str, got: dict[str, list[Stored]] | None = None,
                        actor: Person | None = None) -> tuple[Pool, list[Desk]]:
        """A pool and the holdings of some reps in it, read in one round trip (none if `got`,
        read ahead, holds them). Read afresh, they come with the `actor` again: if he changed
        since he was read (deactivated, say), the decision would mix two moments, so the
        attempt starts over (Conflict).

        A rep's holdings as this ledger last read or wrote them are not read again: a decision
        made from a desk that moved on since cannot be recorded, because every command that
        reads a desk either appends to it (at the next version, taken by then) or checks, under
        the append lock, that it has not moved (`_commit`'s `expect`). Either way the attempt
        ends in a Conflict, the desks remembered are forgotten, and it starts over."""
        got = {} if got is None else got
        desks = [desk_stream(rep, pool_id) for rep in reps]
        unread = [d for d in desks if d not in got and d not in self._known_states]
        if pool_stream(pool_id) not in got or unread:
            again = [person_stream(actor.id)] if actor else []
            got = self.store.read_streams([pool_stream(pool_id), *again], last=unread,
                                          after=self._since(pool_stream(pool_id), *again))
            if actor and self._person(actor.id, got[again[0]]).head != actor.head:
                raise Conflict(f"{actor.id} changed while the command read")
        found = []
        for rep, d in zip(reps, desks, strict=True):
            if d in got:
                self._keep(self._desk(rep, pool_id, got[d]))
            found.append(self._known_states[d])
        return self._pool(pool_id, got[pool_stream(pool_id)]), found

    def _keep(self, state: Person | Pool | Desk) -> None:
        """Remember a state unless one at least as new is remembered already."""
        known = self._known_states.get(state.head.stream)
        if known is None or state.head.version > known.head.version:
            self._known_states[state.head.stream] = state

    def _known(self, person_id: str, stored: list[Stored] | None = None) -> Person:
        person = self._person(person_id, stored)
        if not person.exists:
            raise NotFound("unknown_person", f"no person {person_id!r}", person=person_id)
        return person

    def _actor(self, actor_id: str | None, command: str, stored: list[Stored] | None = None) -> Person:
        """SPEC order: the actor is known and active, then the role allows the command."""
        if not actor_id:
            raise InvalidInput(f"{command.replace('.', ' ')} needs an actor: pass --as ID (or set LEADLEDGER_ACTOR)")
        self._ready()
        actor = self._known(actor_id, stored)
        if not actor.active:
            raise Refused("actor_inactive", f"{actor_id} is deactivated and may not act", actor=actor_id)
        decisions.authorise(actor, command)
        return actor

    def check_reader(self, actor_id: str | None) -> None:
        """Read commands need no actor; when one is named he must be known and active."""
        self._ready()
        if actor_id:
            actor = self._known(actor_id)
            if not actor.active:
                raise Refused("actor_inactive", f"{actor_id} is deactivated", actor=actor_id)

    def _holder(self, person_id: str) -> Person:
        person = self._known(person_id)
        decisions.check_holder(person)
        return person

    def _at(self, at: datetime | str | None) -> datetime:
        return parse_time(at) or self.clock()

    # --- appending ----------------------------------------------------------------------

    def _commit(self, heads: Iterable[Head], events: list[ev.Event], *,
                keys: Iterable[LeadKey] = (), unique_keys: bool = True) -> list[Stored]:
        known = {h.stream: h for h in heads}
        versions = {s: h.version for s, h in known.items()}
        new = []
        for event in events:
            stream = stream_of(event)
            head = known[stream]
            versions[stream] += 1
            new.append(NewEvent(stream, versions[stream], head.hash, event))
        # A stream the decision read but does not write (the desk behind a recorded refusal)
        # must not have moved on either, or the decision is re-made on fresh state.
        unchanged = [(s, h.version) for s, h in known.items() if versions[s] == h.version]
        stored = self.store.append(new, keys=list(keys), unique_keys=unique_keys, expect=unchanged)
        for s in stored:  # what is remembered moves on with what this ledger wrote
            state = self._known_states.get(s.stream)
            if state is not None and state.head.version == s.version - 1:
                self._keep(advance(state, s))
        return stored

    def _retry(self, attempt: Callable[[], Any]) -> Any:
        """Run load-decide-append until it appends without losing a race."""
        for n in range(MAX_ATTEMPTS):
            try:
                return attempt()
            except Conflict:
                for stream, state in list(self._known_states.items()):
                    if isinstance(state, Desk):  # it may have moved on: read it again
                        self._known_states.pop(stream, None)
                time.sleep(random.uniform(0, min(0.002 * (n + 1), 0.05)))
        raise StoreUnavailable("the store is too busy: gave up after many conflicting writes")

    def _ownership(self, lead: Lead, stored: list[Stored]) -> dict[str, Any]:
        """SPEC result of an ownership command; a recorded refusal is raised instead."""
        mine = [s for s in stored if s.stream == lead.head.stream]
        first = mine[0]
        if isinstance(first.event, ev.Refusal):
            e = first.event
            details: dict[str, Any] = {"lead": e.lead}
            if e.owner is not None:
                details["owner"] = e.owner
            if e.owner_since_position is not None:
                details["owner_since_position"] = e.owner_since_position
            details.update(e.facts)
            details["refusal_position"] = first.position
            raise Refused(e.reason, e.message, **details)
        after = replay(lead, mine)
        return {
            "lead": lead.id, "event": type(first.event).__name__, "position": first.position,
            "owner": after.owner, "pool": after.pool, "status": after.status,
            "occurred_at": format_time(first.event.occurred_at),
        }

    # --- set-up and people --------------------------------------------------------------

    def init(self, admin: str, name: str, at: datetime | str | None = None) -> dict[str, Any]:
        """Create the store (idempotent) and register its first admin."""
        _check_id(admin, "admin id")
        self.store.init()
        self.views.ensure()
        at = self._at(at)

        def attempt() -> dict[str, Any]:
            person = self._person(admin)
            if person.exists:
                return {"store": _safe_url(self.store.url), "admin": admin, "created": False}
            people = self.store.read_log(after=0, limit=1)
            if people:
                raise Refused("already_exists", "the store is already initialised; add people with "
                              "`leadledger person add`", admin=admin)
            event = ev.PersonRegistered(occurred_at=at, actor=admin, person=admin, name=name, role="admin")
            self._commit([person.head], [event])
            return {"store": _safe_url(self.store.url), "admin": admin, "created": True}

        return self._retry(attempt)

    def add_person(self, actor: str, person_id: str, name: str, role: str, team: str | None = None,
                   at: datetime | str | None = None) -> dict[str, Any]:
        self._actor(actor, "person.add")  # SPEC order: actor and role before --at
        at = self._at(at)
        _check_id(person_id, "person id")
        if role not in decisions.ROLES:
            raise InvalidInput(f"invalid role {role!r}: use one of {', '.join(decisions.ROLES)}")
        if not name.strip():
            raise InvalidInput("a person needs a --name")

        def attempt() -> dict[str, Any]:
            by = self._actor(actor, "person.add")
            person = self._person(person_id)
            if person.exists:
                raise Refused("already_exists", f"person {person_id} already exists", person=person_id)
            event = ev.PersonRegistered(occurred_at=at, actor=by.id, person=person_id, name=name,
                                        role=role, team=team)
            stored = self._commit([person.head], [event])
            return {"person": person_id, "name": name, "role": role, "team": team,
                    "active": True, "position": stored[0].position}

        return self._retry(attempt)

    def deactivate_person(self, actor: str, person_id: str, reassign_to: str | None = None,
                          at: datetime | str | None = None) -> dict[str, Any]:
        """Deactivate a person; each lead he holds goes back to its pool (or to `reassign_to`)."""
        self._actor(actor, "person.deactivate")  # SPEC order: actor and role before --at
        self._at(at)  # a malformed --at is refused before anything is read

        def attempt() -> dict[str, Any]:
            by = self._actor(actor, "person.deactivate")
            person = self._known(person_id)
            target = self._holder(reassign_to) if reassign_to else None
            if target is not None and target.id == person_id:
                raise InvalidInput("--reassign-to must name someone else")
            if not person.active:
                raise Refused("actor_inactive", f"{person_id} is already deactivated", person=person_id)
            # His desks first, then his leads: a claim of his that commits after the desks are
            # read moves one on (the append below then conflicts); one before is in his leads.
            self.views.catch_up()
            desks: dict[str, Desk] = {desk_stream(person_id, p): self._desk(person_id, p)
                                      for p in sorted(self._pools_of(person_id))}
            held = [lead for lead in map(self._lead, self._held_by(person_id))
                    if lead.owner == person_id and lead.status == HELD]
            when = self._at(at)  # after the reads: the clock moves on while a retry re-reads
            events: list[ev.Event] = [ev.PersonDeactivated(
                occurred_at=when, actor=by.id, person=person_id, reassign_to=reassign_to)]
            heads = [person.head]
            moved = []
            for lead in held:
                decisions.check_time(lead, when)
                pool = self._pool(lead.pool)
                old = desks.get(desk_stream(person_id, lead.pool)) or self._desk(person_id, lead.pool)
                if target is not None:
                    new = desks.get(desk_stream(target.id, lead.pool)) or self._desk(target.id, lead.pool)
                    decided = decisions.hand_over(lead, pool, old, new, target, by, when,
                                                  reason=f"owner {person_id} deactivated")
                else:
                    decided = decisions.return_on_deactivation(lead, old, by, when)
                for e in decided:
                    if isinstance(e, ev.HoldingsChanged):
                        stream = desk_stream(e.rep, e.pool)
                        base = desks.get(stream) or (old if e.rep == person_id else new)
                        desks[stream] = replace(base, held=e.held, day=e.day, claims_on_day=e.claims_on_day)
                heads.append(lead.head)
                events.extend(decided)
                moved.append({"lead": lead.id, "to": target.id if target else None, "pool": lead.pool})
            for pool_id in sorted(self._pools_of(person_id) | {d.pool for d in desks.values()}):
                desk = desks.get(desk_stream(person_id, pool_id)) or self._desk(person_id, pool_id)
                desks.setdefault(desk_stream(person_id, pool_id), desk)
                events.append(ev.HoldingsClosed(occurred_at=when, actor=by.id, rep=person_id, pool=pool_id,
                                                held=desk.held, day=desk.day, claims_on_day=desk.claims_on_day))
            heads.extend(desk.head for desk in desks.values())  # as first read: the counts came from them
            stored = self._commit(heads, events)
            return {"person": person_id, "active": False, "position": stored[0].position,
                    "returned": [m for m in moved if m["to"] is None],
                    "reassigned": [m for m in moved if m["to"] is not None]}

        return self._retry(attempt)

    def _pools_of(self, person_id: str) -> set[str]:
        with self.store.reading() as cur:
            rows = Db(cur, self.store, self.views.names()).all(
                "SELECT pool FROM {pool_members} WHERE person = %s", [person_id])
        return {r[0] for r in rows}

    def _held_by(self, rep: str) -> list[str]:
        self.views.catch_up()
        with self.store.reading() as cur:
            rows = Db(cur, self.store, self.views.names()).all(
                "SELECT lead FROM {holdings} WHERE rep = %s AND status = 'held' ORDER BY since_position",
                [rep])
        return [r[0] for r in rows]

    def person_list(self) -> dict[str, Any]:
        self._ready()
        self.views.catch_up()
        with self.store.reading() as cur:
            rows = Db(cur, self.store, self.views.names()).all(
                "SELECT person, name, role, team, active, registered_at, deactivated_at "
                "FROM {people} ORDER BY person")
        return {"people": [
            {"person": p, "name": n, "role": r, "team": t, "active": bool(a), "registered_at": at,
             "deactivated_at": d} for p, n, r, t, a, at, d in rows
        ]}

    # --- pools --------------------------------------------------------------------------

    def _rules(self, base: ev.Rules, changes: dict[str, Any]) -> ev.Rules:
        values = {}
        for name, value in changes.items():
            if value is None:
                continue
            if name not in RULE_NAMES:
                raise InvalidInput(f"unknown rule {name!r}")
            if name in DURATION_RULES:
                values[name] = parse_duration(value, f"--{name.replace('_', '-')}")
            else:
                try:
                    values[name] = int(value)
                except (TypeError, ValueError):
                    raise InvalidInput(f"--{name.replace('_', '-')} must be a whole number, not {value!r}") from None
                if values[name] < 0 or (name == "claim_limit" and values[name] < 1):
                    raise InvalidInput(f"--{name.replace('_', '-')} must be {'at least 1' if name == 'claim_limit' else 'zero or more'}")
        return msgspec.structs.replace(base, **values)

    def create_pool(self, actor: str, pool_id: str, name: str, at: datetime | str | None = None,
                    **rules: Any) -> dict[str, Any]:
        self._actor(actor, "pool.create")  # SPEC order: actor and role before --at
        at = self._at(at)
        _check_id(pool_id, "pool id")
        chosen = self._rules(ev.Rules(), rules)

        def attempt() -> dict[str, Any]:
            by = self._actor(actor, "pool.create")
            stream = pool_stream(pool_id)
            existing = replay(Pool(Head(stream), pool_id), self.store.read_stream(stream))
            if existing.exists:
                raise Refused("already_exists", f"pool {pool_id} already exists", pool=pool_id)
            stored = self._commit([existing.head], [ev.PoolCreated(
                occurred_at=at, actor=by.id, pool=pool_id, name=name, rules=chosen)])
            return {"pool": pool_id, "name": name, "rules": rules_dict(chosen), "rules_version": 1,
                    "position": stored[0].position}

        return self._retry(attempt)

    def change_rules(self, actor: str, pool_id: str, at: datetime | str | None = None,
                     **rules: Any) -> dict[str, Any]:
        self._actor(actor, "pool.rules")  # SPEC order: actor and role before --at
        at = self._at(at)
        if all(v is None for v in rules.values()):
            raise InvalidInput("name at least one rule to change, e.g. --claim-limit 20")

        def attempt() -> dict[str, Any]:
            by = self._actor(actor, "pool.rules")
            pool = self._pool(pool_id)
            if at < pool.rule_versions[-1].since:
                raise InvalidInput(f"--at is before the pool's latest rule version "
                                   f"({format_time(pool.rule_versions[-1].since)})")
            chosen = self._rules(pool.rules, rules)
            version = pool.rules_version + 1
            stored = self._commit([pool.head], [ev.PoolRulesChanged(
                occurred_at=at, actor=by.id, pool=pool_id, rules=chosen, rules_version=version)])
            return {"pool": pool_id, "rules": rules_dict(chosen), "rules_version": version,
                    "since": format_time(at), "position": stored[0].position}

        return self._retry(attempt)

    def grant(self, actor: str, pool_id: str, people: list[str], at: datetime | str | None = None) -> dict[str, Any]:
        return self._membership(actor, pool_id, people, at, grant=True)

    def revoke(self, actor: str, pool_id: str, people: list[str], at: datetime | str | None = None) -> dict[str, Any]:
        return self._membership(actor, pool_id, people, at, grant=False)

    def _membership(self, actor: str, pool_id: str, people: list[str], at: Any, *, grant: bool) -> dict[str, Any]:
        self._actor(actor, "pool.grant" if grant else "pool.revoke")  # SPEC order: actor and role before --at
        at = self._at(at)
        if not people:
            raise InvalidInput("name at least one person")

        def attempt() -> dict[str, Any]:
            by = self._actor(actor, "pool.grant" if grant else "pool.revoke")
            pool = self._pool(pool_id)
            for person_id in people:
                person = self._known(person_id)
                if grant:
                    decisions.check_holder(person)
            changed = [p for p in dict.fromkeys(people) if (p in pool.members) != grant]
            position = None
            if changed:
                cls = ev.MembersGranted if grant else ev.MembersRevoked
                stored = self._commit([pool.head], [cls(occurred_at=at, actor=by.id, pool=pool_id, people=changed)])
                position = stored[0].position
            members = (pool.members | set(changed)) if grant else (pool.members - set(changed))
            return {"pool": pool_id, "members": sorted(members), "changed": changed, "position": position}

        return self._retry(attempt)

    def pool_list(self) -> dict[str, Any]:
        self._ready()
        self.views.catch_up()
        with self.store.reading() as cur:
            db = Db(cur, self.store, self.views.names())
            rows = db.all("SELECT pool, name, rules_version FROM {pools} ORDER BY pool")
            pooled = dict(db.all("SELECT pool, COUNT(*) FROM {pool_leads} GROUP BY pool"))
            held = dict(db.all("SELECT pool, COUNT(*) FROM {holdings} WHERE status = 'held' GROUP BY pool"))
            members = dict(db.all("SELECT pool, COUNT(*) FROM {pool_members} GROUP BY pool"))
        return {"pools": [
            {"pool": p, "name": n, "rules_version": v, "members": members.get(p, 0),
             "pooled_count": pooled.get(p, 0), "held_count": held.get(p, 0)}
            for p, n, v in rows
        ]}

    def pool_show(self, pool_id: str) -> dict[str, Any]:
        self._ready()
        pool = self._pool(pool_id)
        self.views.catch_up()
        with self.store.reading() as cur:
            db = Db(cur, self.store, self.views.names())
            pooled = [r[0] for r in db.all(
                "SELECT lead FROM {pool_leads} WHERE pool = %s ORDER BY since_position", [pool_id])]
            held = db.one("SELECT COUNT(*) FROM {holdings} WHERE pool = %s AND status = 'held'", [pool_id])[0]
            converted = db.one("SELECT COUNT(*) FROM {holdings} WHERE pool = %s AND status = 'converted'",
                               [pool_id])[0]
        return {
            "pool": pool.id, "name": pool.name, "rules": rules_dict(pool.rules),
            "rules_version": pool.rules_version, "members": sorted(pool.members),
            "pooled": pooled, "held_count": held, "converted_count": converted,
            "rule_versions": [
                {"version": rv.version, "since": format_time(rv.since), "position": rv.position,
                 "rules": rules_dict(rv.rules)} for rv in pool.rule_versions
            ],
        }

    # --- leads --------------------------------------------------------------------------

    def _new_lead(self, by: Person, lead_id: str, pool: Pool, fields: dict[str, Any],
                  at: datetime, allow_duplicate: bool) -> tuple[ev.LeadAdded, list[LeadKey], list[dict]]:
        """Decide a LeadAdded: the duplicate check against the key index."""
        attributes = _attributes(fields)
        keys = lead_keys(attributes.company, attributes.phone, attributes.email)
        matches = [k for k in self.store.find_keys(keys) if k.lead != lead_id]
        found = [ev.DuplicateMatch(lead=k.lead, field=k.kind, value=k.value) for k in matches]
        if found and not allow_duplicate:
            first = found[0]
            other = self._lead(first.lead)
            where = {"owner": other.owner} if other.owner else {"pool": other.pool}
            raise Refused(
                "duplicate_lead",
                f"lead {lead_id} has the same {first.field} as lead {first.lead} "
                + (f"(held by {other.owner})" if other.owner else f"(in pool {other.pool})"),
                lead=lead_id, existing=first.lead, field=first.field, **where,
                matches=[msgspec.to_builtins(m) for m in found],
            )
        event = ev.LeadAdded(occurred_at=at, actor=by.id, lead=lead_id, pool=pool.id,
                             attributes=attributes, duplicates=found)
        return event, [LeadKey(k, v, lead_id) for k, v in keys], [msgspec.to_builtins(m) for m in found]

    def add_lead(self, actor: str, lead_id: str, pool_id: str, *, allow_duplicate: bool = False,
                 claim: bool = False, at: datetime | str | None = None, **fields: Any) -> dict[str, Any]:
        self._actor(actor, "lead.add")  # SPEC order: actor and role before --at
        at = self._at(at)
        _check_id(lead_id, "lead id")

        def attempt() -> dict[str, Any]:
            by = self._actor(actor, "lead.add")
            pool = self._pool(pool_id)
            decisions.check_member(by, pool)
            lead = self._lead(lead_id, must_exist=False)
            if lead.exists:
                raise Refused("already_exists", f"lead {lead_id} already exists (pool {lead.pool})",
                              lead=lead_id)
            event, keys, found = self._new_lead(by, lead_id, pool, fields, at, allow_duplicate)
            # A key taken meanwhile raises DuplicateKeys, a Conflict: the retry re-checks and refuses.
            stored = self._commit([lead.head], [event], keys=keys, unique_keys=not allow_duplicate)
            return {"lead": lead_id, "event": "LeadAdded", "position": stored[0].position, "owner": None,
                    "pool": pool_id, "status": POOLED, "occurred_at": format_time(at), "duplicates": found}

        added = self._retry(attempt)
        if claim:
            added["claim"] = self.claim(actor, lead_id, at=at)
        return added

    def import_leads(self, actor: str, pool_id: str, rows: Iterable[tuple[int, dict[str, Any] | str]],
                     *, allow_duplicate: bool = False, at: datetime | str | None = None,
                     batch: int = IMPORT_BATCH, progress: Callable[[int], None] | None = None) -> dict[str, Any]:
        """Import (line, fields) rows; a row given as a string is a parse error for that line.

        Rows are appended in batches, each all or nothing; a re-run skips leads that already exist.
        """
        by = self._actor(actor, "lead.import")
        at = self._at(at)
        pool = self._pool(pool_id)
        decisions.check_member(by, pool)
        report: dict[str, Any] = {"imported": 0, "skipped_existing": 0, "duplicates": [], "rejected": []}
        rejected = report["rejected"]
        seen_ids: set[str] = set()
        chunk: list[_Row] = []

        def flush() -> None:
            self._retry(lambda: self._import_chunk(by, pool, chunk, at, allow_duplicate, report))
            if progress:
                progress(len(chunk))
            chunk.clear()

        with collector_paused():  # the rows and batches make no cycles to collect
            for line, fields in rows:
                if isinstance(fields, str):
                    rejected.append({"line": line, "error": fields})
                    continue
                try:
                    lead_id = str(fields.get("id") or fields.get("lead") or "").strip()
                    _check_id(lead_id, "lead id")
                    attrs = _attributes(fields, skip=("id", "lead"))
                except InvalidInput as e:
                    rejected.append({"line": line, "error": e.message})
                    continue
                if lead_id in seen_ids:
                    report["skipped_existing"] += 1
                    continue
                seen_ids.add(lead_id)
                chunk.append((line, lead_id, attrs, lead_keys(attrs.company, attrs.phone, attrs.email)))
                if len(chunk) >= batch:
                    flush()
            if chunk:
                flush()
        return report

    def _import_chunk(self, by: Person, pool: Pool, chunk: list[_Row], at: datetime,
                      allow_duplicate: bool, report: dict[str, Any]) -> None:
        """Append one batch of new leads (or none, on a lost race: Conflict, and the batch is redone).

        The key index (which holds the keys of the file's earlier batches too) is read once,
        outside the append lock, to name each duplicate; the append then checks under the lock
        that no lead was stored since that read (else it looks at the keys again there), so a
        lead added meanwhile is never duplicated. The report changes only once the batch is in.
        """
        checked_at = self.store.max_position()  # before the reads below: what they see at least
        existing = self.store.existing_streams([lead_stream(lead_id) for _, lead_id, _, _ in chunk])
        candidates = [row for row in chunk if lead_stream(row[1]) not in existing]
        indexed = {(k.kind, k.value): k.lead for k in self.store.find_keys(
            [key for *_, keys in candidates for key in keys])}
        events, new_keys, dups = [], [], []
        batch_keys: dict[tuple[str, str], str] = {}
        for line, lead_id, attrs, keys in candidates:
            matches = [ev.DuplicateMatch(lead=other, field=k[0], value=k[1]) for k in keys
                       if (other := indexed.get(k) or batch_keys.get(k))]
            if matches and not allow_duplicate:
                dups.append({"line": line, "lead": lead_id, "duplicate_of": matches[0].lead,
                             "field": matches[0].field, "value": matches[0].value})
                continue
            events.append(NewEvent(lead_stream(lead_id), 1, GENESIS, ev.LeadAdded(
                occurred_at=at, actor=by.id, lead=lead_id, pool=pool.id, attributes=attrs, duplicates=matches)))
            new_keys.extend([(kind, value, lead_id) for kind, value in keys])
            for k in keys:
                batch_keys.setdefault(k, lead_id)
        if events:
            self.store.append_bulk(events, keys=new_keys, unique_keys=not allow_duplicate, checked_at=checked_at)
        report["imported"] += len(events)
        report["skipped_existing"] += len(chunk) - len(candidates)
        report["duplicates"].extend(dups)

    def lead_show(self, lead_id: str) -> dict[str, Any]:
        self._ready()
        lead = self._lead(lead_id)
        due = decisions.deadline(lead, self._pool(lead.pool), self.clock()) if lead.status == HELD else None
        return {
            "lead": lead.id, "pool": lead.pool, "status": lead.status, "owner": lead.owner,
            "since": format_time(lead.placed_at), "since_position": lead.placed_position,
            "last_follow_up": format_time(lead.last_follow_up), "deal": lead.deal,
            "recycle_at": format_time(due.at) if due else None, "recycle_rule": due.rule if due else None,
            "attributes": msgspec.to_builtins(lead.attributes), "version": lead.head.version,
            "disputes": [d.id for d in lead.disputes],
        }

    # --- ownership ----------------------------------------------------------------------

    def _on_lead(self, actor: str, command: str, lead_id: str, at: Any,
                 decide: Callable[..., tuple[list[Head], list[ev.Event]]],
                 named: Callable[[], Any] | None = None, with_desk: bool = False) -> dict[str, Any]:
        """The common shape of a command on one lead: actor, lead, time, decide, append.

        `named` looks up the other ids the command names, so they are checked before --at.
        With `with_desk`, `decide` also gets the lead's pool and the actor's holdings in it.
        The actor and the lead are read in one round trip, together with the pool (and the
        actor's desk in it, unless remembered) this ledger last worked in: a guess, checked
        against the lead's pool, so a wrong guess costs one more read, never a wrong decision.
        """
        def attempt() -> dict[str, Any]:
            got: dict[str, list[Stored]] = {}
            if actor:
                self._ready()
                guess = self._last_pool if with_desk else None
                remembered = [person_stream(actor), *([pool_stream(guess)] if guess else [])]
                unread = [desk_stream(actor, guess)] if guess else []
                got = self.store.read_streams([*remembered, lead_stream(lead_id)],
                                              last=[d for d in unread if d not in self._known_states],
                                              after=self._since(*remembered))
            by = self._actor(actor, command, got.get(person_stream(actor or "")))
            lead = self._lead(lead_id, stored=got.get(lead_stream(lead_id)))
            if named is not None:
                named()
            when = self._at(at)
            decisions.check_time(lead, when)
            if with_desk:
                pool, (desk,) = self._pool_and_desks(lead.pool, by.id, got=got, actor=by)
                self._last_pool = lead.pool
                heads, events = decide(by, lead, when, pool, desk)
            else:
                heads, events = decide(by, lead, when)
            return self._ownership(lead, self._commit([lead.head, *heads], events))

        return self._retry(attempt)

    def claim(self, actor: str, lead_id: str, at: datetime | str | None = None) -> dict[str, Any]:
        def decide(by: Person, lead: Lead, at: datetime, pool: Pool, desk: Desk):
            return [desk.head], decisions.claim(lead, pool, desk, by, at)

        return self._on_lead(actor, "claim", lead_id, at, decide, with_desk=True)

    def release(self, actor: str, lead_id: str, reason: str | None = None,
                at: datetime | str | None = None) -> dict[str, Any]:
        def decide(by: Person, lead: Lead, at: datetime, pool: Pool, desk: Desk):
            return [desk.head], decisions.release(lead, desk, by, at, reason)

        return self._on_lead(actor, "release", lead_id, at, decide, with_desk=True)

    def follow_up(self, actor: str, lead_id: str, note: str, channel: str = "other",
                  at: datetime | str | None = None) -> dict[str, Any]:
        if channel not in CHANNELS:
            raise InvalidInput(f"invalid channel {channel!r}: use one of {', '.join(CHANNELS)}")
        if not note or not note.strip():
            raise InvalidInput("a follow-up needs a --note")
        return self._on_lead(actor, "follow-up", lead_id, at,
                             lambda by, lead, at: ([], decisions.follow_up(lead, by, at, note, channel)))

    def convert(self, actor: str, lead_id: str, deal: str | None = None,
                at: datetime | str | None = None) -> dict[str, Any]:
        def decide(by: Person, lead: Lead, at: datetime, pool: Pool, desk: Desk):
            return [desk.head], decisions.convert(lead, desk, by, at, deal)

        result = self._on_lead(actor, "convert", lead_id, at, decide, with_desk=True)
        result["deal"] = deal
        return result

    def assign(self, actor: str, lead_id: str, to: str, reason: str | None = None,
               at: datetime | str | None = None) -> dict[str, Any]:
        def decide(by: Person, lead: Lead, at: datetime):
            rep = self._holder(to)
            pool = self._pool(lead.pool)
            decisions.check_member(by, pool)
            desk = self._desk(rep.id, lead.pool)
            return [desk.head], decisions.assign(lead, pool, desk, rep, by, at, reason)

        return self._on_lead(actor, "assign", lead_id, at, decide, named=lambda: self._known(to))

    def reassign(self, actor: str, lead_id: str, to: str, reason: str,
                 at: datetime | str | None = None) -> dict[str, Any]:
        if not reason or not reason.strip():
            raise InvalidInput("reassign needs a --reason")

        def decide(by: Person, lead: Lead, at: datetime):
            rep = self._holder(to)
            pool = self._pool(lead.pool)
            decisions.check_member(by, pool)
            desk = self._desk(rep.id, lead.pool)
            old = self._desk(lead.owner, lead.pool) if lead.owner else desk
            heads = [desk.head] if old.head == desk.head else [old.head, desk.head]
            return heads, decisions.reassign(lead, pool, old, desk, rep, by, at, reason)

        return self._on_lead(actor, "reassign", lead_id, at, decide, named=lambda: self._known(to))

    def move(self, actor: str, lead_id: str, to_pool: str, reason: str | None = None,
             at: datetime | str | None = None) -> dict[str, Any]:
        def decide(by: Person, lead: Lead, at: datetime):
            source = self._pool(lead.pool)
            target = self._pool(to_pool)
            decisions.check_member(by, source)
            return [], decisions.move(lead, target, by, at, reason)

        return self._on_lead(actor, "move", lead_id, at, decide, named=lambda: self._pool(to_pool))

    def sweep(self, actor: str, now: datetime | str | None = None, dry_run: bool = False) -> dict[str, Any]:
        """Issue due recycle warnings and recycle overdue leads, each lead on its own."""
        by = self._actor(actor, "sweep")
        now = parse_time(now, "--now") or self.clock()
        self.views.catch_up()
        with self.store.reading() as cur:
            candidates = [r[0] for r in Db(cur, self.store, self.views.names()).all(
                "SELECT lead FROM {holdings} WHERE status = 'held' ORDER BY since_position")]
        warned, recycled = [], []
        pools: dict[str, Pool] = {}
        for lead_id in candidates:
            def attempt(lead_id: str = lead_id) -> list[ev.Event]:
                lead = self._lead(lead_id)
                if lead.pool not in pools:
                    pools[lead.pool] = self._pool(lead.pool)
                desk = self._desk(lead.owner, lead.pool) if lead.owner else None
                if desk is None:
                    return []
                events = decisions.sweep_lead(lead, pools[lead.pool], desk, now, by.id)
                if events and not dry_run:
                    self._commit([lead.head, desk.head], events)
                return events

            for e in self._retry(attempt):
                if isinstance(e, ev.RecycleWarned):
                    warned.append({"lead": e.lead, "owner": e.rep, "recycle_at": format_time(e.recycle_at),
                                   "rule": e.rule})
                elif isinstance(e, ev.LeadRecycled):
                    recycled.append({"lead": e.lead, "from": e.rep, "rule": e.rule,
                                     "deadline": format_time(e.deadline), "pool": e.pool})
        return {"now": format_time(now), "dry_run": dry_run, "warned": warned, "recycled": recycled}

    # --- queries ------------------------------------------------------------------------

    def owner(self, lead_id: str, at: datetime | str | None = None) -> dict[str, Any]:
        """Who owned the lead at `at` (default now); an event at `at` counts as done."""
        self._ready()
        when = parse_time(at) or self.clock()
        rows = self.store.read_stream_rows(lead_stream(lead_id), PLACEMENT_TOPICS)
        if not rows:
            raise NotFound("unknown_lead", f"no lead {lead_id!r}", lead=lead_id)
        return {"lead": lead_id, "at": format_time(when), **placement_at(rows, when)}

    def history(self, lead_id: str) -> dict[str, Any]:
        self._ready()
        stored = self.store.read_stream(lead_stream(lead_id))
        if not stored:
            raise NotFound("unknown_lead", f"no lead {lead_id!r}", lead=lead_id)
        return {
            "lead": lead_id,
            "events": [event_dict(s) for s in stored],
            "ownership": ownership_intervals(stored),
            "refused": [
                {"position": s.position, "type": type(s.event).__name__, "actor": s.event.actor,
                 "rep": s.event.rep, "reason": s.event.reason, "occurred_at": format_time(s.event.occurred_at),
                 "owner": s.event.owner, "owner_since_position": s.event.owner_since_position}
                for s in stored if isinstance(s.event, ev.Refusal)
            ],
        }

    def holdings(self, rep: str) -> dict[str, Any]:
        self._ready()
        person = self._known(rep)
        now = self.clock()
        self.views.catch_up()
        with self.store.reading() as cur:
            rows = Db(cur, self.store, self.views.names()).all(
                "SELECT lead FROM {holdings} WHERE rep = %s ORDER BY since_position", [rep])
        leads, counts = [], {}
        pools: dict[str, Pool] = {}
        for (lead_id,) in rows:
            lead = self._lead(lead_id)
            if lead.owner != person.id:
                continue
            pool = pools.get(lead.pool) or self._pool(lead.pool)
            pools[lead.pool] = pool
            due = decisions.deadline(lead, pool, now)
            leads.append({
                "lead": lead.id, "pool": lead.pool, "status": lead.status,
                "since": format_time(lead.placed_at), "last_follow_up": format_time(lead.last_follow_up),
                "recycle_at": format_time(due.at) if due else None,
                "recycle_rule": due.rule if due else None,
                "rules_version": due.rules.version if due else None,
                "overdue": bool(due and now >= due.at),
            })
            if lead.status == HELD:
                counts[lead.pool] = counts.get(lead.pool, 0) + 1
        return {"rep": rep, "active": person.active, "now": format_time(now), "leads": leads,
                "count_by_pool": counts}

    def iter_events(self, since: int = 0, batch: int = 5000) -> Iterator[dict[str, Any]]:
        """The change feed: every event after position `since`, in position order."""
        self._ready()
        position = since
        while events := self.store.read_log(after=position, limit=batch):
            for s in events:
                row = event_dict(s)
                row["stream"] = s.stream
                yield row
            position = events[-1].position


def _attributes(fields: dict[str, Any], skip: tuple[str, ...] = ()) -> ev.Attributes:
    """A lead's attributes from its fields (those named in `skip` aside): known names only,
    text (or a number), trimmed, empty ones left out; an email must have an '@'."""
    values = {}
    unknown, wrong = [], []
    for k, v in fields.items():
        if k not in _ATTRIBUTE_SET:
            if k not in skip and v is not None and v != "":
                unknown.append(k)
        elif v is not None:
            if type(v) is not str:
                if not isinstance(v, (str, int)):
                    wrong.append(k)
                    continue
                v = str(v)
            v = v.strip()
            if v:
                values[k] = v
    if unknown:
        raise InvalidInput(f"unknown lead field(s): {', '.join(sorted(unknown))}")
    if wrong:
        raise InvalidInput(f"lead field {min(wrong, key=ATTRIBUTES.index)} must be text")
    if "email" in values and "@" not in values["email"]:
        raise InvalidInput(f"invalid email {values['email']!r}")
    return ev.Attributes(**values)


def _check_id(value: str, what: str) -> None:
    if not value or not value.strip() or value != value.strip() or ":" in value or len(value) > 200:
        raise InvalidInput(f"invalid {what} {value!r}: a non-empty name without spaces at the ends or ':'")


def _safe_url(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        return f"{scheme}://{creds.split(':')[0]}@{host}"
    return url


__all__ = ["CONVERTED", "HELD", "POOLED", "Ledger", "LedgerError", "event_dict"]
