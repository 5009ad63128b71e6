"""init, person add | deactivate | list."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from ledger import decisions
from ledger import events as ev
from ledger import refusals
from ledger.acting import When
from ledger.context import Concern
from ledger.errors import InvalidInput, Refused
from ledger.repository import Holdings, holdings_stream
from ledger.state import HELD, Head, Lead, Person
from ledger.values import check_at, check_id
from ledger.i18n import N_, _, english


class People(Concern):
    def init(self, admin: str, name: str, at: When = None) -> dict[str, Any]:
        """Create the store (idempotent) and register its first admin."""
        check_id(admin, N_("admin id"))
        when = self.acting.time(at)  # a malformed --at is refused before the store is made
        check_at(when, self.acting.clock())
        store = self.repo.store
        store.init()
        self.views.ensure()

        def attempt() -> dict[str, Any]:
            person = self.repo.person(admin)
            if person.exists:
                return {"store": safe_url(store.url), "admin": admin, "created": False}
            if store.read_log(after=0, limit=1):
                raise Refused("already_exists", _("the store is already initialised; add people with "
                                                    "`leadledger person add`"), admin=admin)
            event = ev.PersonRegistered(occurred_at=when, actor=admin, person=admin, name=name, role="admin")
            self.repo.commit([person.head], [event])
            return {"store": safe_url(store.url), "admin": admin, "created": True}

        return self.repo.retry(attempt)

    def add(self, actor: str, person_id: str, name: str, role: str, team: str | None = None,
            at: When = None) -> dict[str, Any]:
        def check() -> None:
            check_id(person_id, N_("person id"))
            if role not in decisions.ROLES:
                raise InvalidInput(_("invalid role {role}: use one of {roles}", role=repr(role),
                                     roles=", ".join(decisions.ROLES)))
            if not name.strip():
                raise InvalidInput(_("a person needs a --name"))

        def attempt(by: Person, when: datetime) -> dict[str, Any]:
            person = self.repo.person(person_id)
            when = self.acting.when(when, at, by)
            if person.exists:
                raise Refused("already_exists", _("person {person} already exists", person=person_id), person=person_id)
            event = ev.PersonRegistered(occurred_at=when, actor=by.id, person=person_id, name=name,
                                        role=role, team=team)
            stored = self.repo.commit([person.head], [event])
            return {"person": person_id, "name": name, "role": role, "team": team,
                    "active": True, "position": stored[0].position}

        return self.acting.run(actor, "person.add", at, attempt, check)

    def deactivate(self, actor: str, person_id: str, reassign_to: str | None = None,
                   at: When = None) -> dict[str, Any]:
        """Deactivate a person; each lead he holds goes back to its pool (or to `reassign_to`)."""
        def attempt(by: Person, _now: datetime) -> dict[str, Any]:
            person = self.repo.known_person(person_id)
            target = self.acting.holder(reassign_to) if reassign_to else None
            if target is not None and target.id == person_id:
                raise InvalidInput(_("--reassign-to must name someone else"))
            when = self.acting.when(self.acting.time(at), at, by)
            when = self.acting.when(when, at, person)  # nor before the person was registered
            if not person.active:
                raise Refused("actor_inactive", _("{person} is already deactivated", person=person_id), person=person_id)
            admins = self._active_admins(person)
            decisions.check_not_last_admin(person, len(admins))
            # His holdings first, then his leads: a claim of his that commits after the holdings
            # are read moves them on (the append below then conflicts); one before is in his leads.
            self.views.catch_up()
            holdings = {holdings_stream(person_id, p): self.repo.holdings(person_id, p)
                        for p in sorted(self.models.pools_of(person_id))}
            self.views.catch_up()
            held = [lead for lead in map(self.repo.lead, self.models.held_by(person_id))
                    if lead.owner == person_id and lead.status == HELD]
            if at is None:  # after the reads: the clock moves on while a retry re-reads
                now = self.acting.time(at)
                when = max([self.acting.when(now, at, by), self.acting.when(now, at, person),
                            *(lead.last_event_at for lead in held if lead.last_event_at)])
            events: list[ev.Event] = [ev.PersonDeactivated(
                occurred_at=when, actor=by.id, person=person_id, reassign_to=reassign_to)]
            # The other admins' streams are expected unchanged: two admins deactivating each
            # other at once cannot both pass the last-admin check.
            heads = [person.head, *(a.head for a in admins if a.id != person_id)]
            moved = [self._hand_back(lead, holdings, target, by, when, events, heads) for lead in held]
            events += self._close_holdings(person_id, holdings, by, when)
            heads.extend(h.head for h in holdings.values())  # as first read: the counts came from them
            stored = self.repo.commit(heads, events)
            return {"person": person_id, "active": False, "position": stored[0].position,
                    "returned": [m for m in moved if m["to"] is None],
                    "reassigned": [m for m in moved if m["to"] is not None]}

        return self.acting.run(actor, "person.deactivate", at, attempt)

    def _active_admins(self, person: Person) -> list[Person]:
        """Every active admin, each read from his own stream (the read model only names them)."""
        if person.role != "admin":
            return []
        self.views.catch_up()
        named = {p["person"] for p in self.models.people() if p.get("role") == "admin"} | {person.id}
        return [a for a in map(self.repo.person, sorted(named)) if a.active and a.role == "admin"]

    def _hand_back(self, lead: Lead, holdings: dict[str, Holdings], target: Person | None, by: Person,
                   when: datetime, events: list[ev.Event], heads: list[Head]) -> dict[str, Any]:
        """Return one of a leaving rep's leads to its pool, or hand it to `target`; the
        holdings met are updated in `holdings` as the events decided change them."""
        person_id = lead.owner
        decisions.check_time(lead, when)
        pool = self.repo.pool(lead.pool)
        old = holdings.get(holdings_stream(person_id, lead.pool)) or self.repo.holdings(person_id, lead.pool)
        new = None
        if target is not None:
            new = holdings.get(holdings_stream(target.id, lead.pool)) or self.repo.holdings(target.id, lead.pool)
            decided = decisions.hand_over(lead, pool, old, new, target, by, when,
                                          reason=english(refusals.OWNER_DEACTIVATED, owner=person_id))
        else:
            decided = decisions.return_on_deactivation(lead, old, by, when)
        for e in decided:
            if isinstance(e, ev.HoldingsChanged):
                stream = holdings_stream(e.rep, e.pool)
                base = holdings.get(stream) or (old if e.rep == person_id else new)
                holdings[stream] = replace(base, held=e.held, day=e.day, claims_on_day=e.claims_on_day)
        heads.append(lead.head)
        if target is not None:  # membership must still hold when the hand-over is recorded
            heads.append(pool.head)
        events.extend(decided)
        return {"lead": lead.id, "to": target.id if target else None, "pool": lead.pool}

    def _close_holdings(self, person_id: str, holdings: dict[str, Holdings], by: Person,
                        when: datetime) -> list[ev.Event]:
        """Close the leaving rep's holdings in every pool he was in or held leads of."""
        events: list[ev.Event] = []
        for pool_id in sorted(self.models.pools_of(person_id) | {h.pool for h in holdings.values()}):
            found = holdings.get(holdings_stream(person_id, pool_id)) or self.repo.holdings(person_id, pool_id)
            holdings.setdefault(holdings_stream(person_id, pool_id), found)
            events.append(ev.HoldingsClosed(occurred_at=when, actor=by.id, rep=person_id, pool=pool_id,
                                            held=found.held, day=found.day, claims_on_day=found.claims_on_day))
        return events

    def listing(self) -> dict[str, Any]:
        self.repo.ready()
        self.views.catch_up()
        return {"people": self.models.people()}


def safe_url(url: str) -> str:
    """A store URL without its password."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        return f"{scheme}://{creds.split(':')[0]}@{host}"
    return url
