"""claim, release, follow-up, convert, assign, reassign, move, sweep: who holds a lead."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from ledger import decisions
from ledger import events as ev
from ledger import refusals
from ledger.acting import When
from ledger.context import Concern, Context
from ledger.errors import InvalidInput, Refused
from ledger.i18n import _
from ledger.repository import Holdings
from ledger.state import Head, Lead, Person, Pool, lead_stream, person_stream, replay
from ledger.store import Stored
from ledger.values import format_time, parse_time

CHANNELS = ("call", "visit", "email", "message", "meeting", "other")

Decided = tuple[list[Head], list[ev.Event]]  # the heads the events follow (the lead's aside), and the events


class Ownership(Concern):
    def __init__(self, context: Context):
        super().__init__(context)
        self.last_pool: str | None = None  # where the next command probably acts (a read-ahead guess)

    def _on_lead(self, actor: str, command: str, lead_id: str, at: When, decide: Callable[..., Decided],
                 named: Callable[[], Any] | None = None, with_holdings: bool = False) -> dict[str, Any]:
        """The common shape of a command on one lead: actor, lead, time, decide, append.

        `named` looks up the other ids the command names, so they are checked before --at.
        With `with_holdings`, `decide` also gets the lead's pool and the actor's holdings in it.
        The actor and the lead are read in one round trip, together with the pool (and the
        actor's holdings in it, unless remembered) this ledger last worked in: a guess, checked
        against the lead's pool, so a wrong guess costs one more read, never a wrong decision.
        """
        def attempt() -> dict[str, Any]:
            got: dict[str, list[Stored]] = {}
            if actor:
                self.repo.ready()
                got = self.repo.read_for_lead(actor, lead_id, self.last_pool if with_holdings else None)
            by = self.acting.actor(actor, command, got.get(person_stream(actor or "")))
            lead = self.repo.lead(lead_id, stored=got.get(lead_stream(lead_id)))
            if named is not None:
                named()
            # The lead's pool was created before the lead was added, so checking the lead
            # checks its pool too.
            when = self.acting.time(at)
            if with_holdings:
                pool, (mine,) = self.repo.pool_and_holdings(lead.pool, by.id, got=got, actor=by)
                self.last_pool = lead.pool
                when = self.acting.when(when, at, by, lead=lead, holdings=(mine,))
                heads, events = decide(by, lead, when, pool, mine)
            else:
                heads, events = decide(by, lead, self.acting.when(when, at, by, lead=lead))
            return _result(lead, self.repo.commit([lead.head, *heads], events))

        return self.repo.retry(attempt)

    def claim(self, actor: str, lead_id: str, at: When = None) -> dict[str, Any]:
        def decide(by: Person, lead: Lead, at: datetime, pool: Pool, mine: Holdings) -> Decided:
            # The pool is expected unchanged though not written: a grant, revoke or rule change
            # recorded after it was read makes the claim be decided again (membership and
            # claim_limit then hold under any concurrency, as ownership does).
            return [mine.head, pool.head], decisions.claim(lead, pool, mine, by, at)

        return self._on_lead(actor, "claim", lead_id, at, decide, with_holdings=True)

    def release(self, actor: str, lead_id: str, reason: str | None = None, at: When = None) -> dict[str, Any]:
        def decide(by: Person, lead: Lead, at: datetime, pool: Pool, mine: Holdings) -> Decided:
            return [mine.head], decisions.release(lead, mine, by, at, reason)

        return self._on_lead(actor, "release", lead_id, at, decide, with_holdings=True)

    def follow_up(self, actor: str, lead_id: str, note: str, channel: str = "other",
                  at: When = None) -> dict[str, Any]:
        if channel not in CHANNELS:
            raise InvalidInput(_("invalid channel {channel}: use one of {channels}", channel=repr(channel),
                                 channels=", ".join(CHANNELS)))
        if not note or not note.strip():
            raise InvalidInput(_("a follow-up needs a --note"))
        return self._on_lead(actor, "follow-up", lead_id, at,
                             lambda by, lead, at: ([], decisions.follow_up(lead, by, at, note, channel)))

    def convert(self, actor: str, lead_id: str, deal: str | None = None, at: When = None) -> dict[str, Any]:
        def decide(by: Person, lead: Lead, at: datetime, pool: Pool, mine: Holdings) -> Decided:
            return [mine.head], decisions.convert(lead, mine, by, at, deal)

        result = self._on_lead(actor, "convert", lead_id, at, decide, with_holdings=True)
        result["deal"] = deal
        return result

    def _to_rep(self, by: Person, lead: Lead, to: str) -> tuple[Person, Pool, Holdings]:
        """The rep a manager gives a lead to, the lead's pool (the manager's to act in), his holdings there."""
        rep = self.acting.holder(to)
        pool = self.repo.pool(lead.pool)
        decisions.check_member(by, pool)
        return rep, pool, self.repo.holdings(rep.id, lead.pool)

    def assign(self, actor: str, lead_id: str, to: str, reason: str | None = None,
               at: When = None) -> dict[str, Any]:
        def decide(by: Person, lead: Lead, when: datetime) -> Decided:
            rep, pool, new = self._to_rep(by, lead, to)
            when = self.acting.when(when, at, rep, holdings=(new,))  # nor before the rep was registered
            return [new.head, pool.head], decisions.assign(lead, pool, new, rep, by, when, reason)

        return self._on_lead(actor, "assign", lead_id, at, decide, named=lambda: self.repo.known_person(to))

    def reassign(self, actor: str, lead_id: str, to: str, reason: str, at: When = None) -> dict[str, Any]:
        if not reason or not reason.strip():
            raise InvalidInput(_("reassign needs a --reason"))

        def decide(by: Person, lead: Lead, when: datetime) -> Decided:
            rep, pool, new = self._to_rep(by, lead, to)
            old = self.repo.holdings(lead.owner, lead.pool) if lead.owner else new
            when = self.acting.when(when, at, rep, holdings=(old, new))  # nor before the rep was registered
            heads = [new.head] if old.head == new.head else [old.head, new.head]
            return [*heads, pool.head], decisions.reassign(lead, pool, old, new, rep, by, when, reason)

        return self._on_lead(actor, "reassign", lead_id, at, decide, named=lambda: self.repo.known_person(to))

    def move(self, actor: str, lead_id: str, to_pool: str, reason: str | None = None,
             at: When = None) -> dict[str, Any]:
        at_given = at

        def decide(by: Person, lead: Lead, at: datetime) -> Decided:
            source = self.repo.pool(lead.pool)
            target = self.repo.pool(to_pool)
            self.acting.when(at, at_given, by, source, target, lead=lead)
            decisions.check_member(by, source)
            return [source.head], decisions.move(lead, target, by, at, reason)

        return self._on_lead(actor, "move", lead_id, at, decide, named=lambda: self.repo.pool(to_pool))

    def sweep(self, actor: str, now: When = None, dry_run: bool = False) -> dict[str, Any]:
        """Issue due recycle warnings and recycle overdue leads, each lead on its own."""
        by = self.acting.actor(actor, "sweep")
        now = parse_time(now, "--now") or self.acting.clock()
        # a dry run may look ahead; a real sweep records at a time that has come; neither is
        # before the sweeper was registered
        decisions.check_when(now, now if dry_run else self.acting.clock(), by, name="--now")
        self.views.catch_up()
        warned, recycled = [], []
        pools: dict[str, Pool] = {}
        for lead_id in self.models.held_leads():
            for e in self.repo.retry(lambda lead_id=lead_id: self._sweep_lead(lead_id, pools, now, by, dry_run)):
                if isinstance(e, ev.RecycleWarned):
                    warned.append({"lead": e.lead, "owner": e.rep, "recycle_at": format_time(e.recycle_at),
                                   "rule": e.rule})
                elif isinstance(e, ev.LeadRecycled):
                    recycled.append({"lead": e.lead, "from": e.rep, "rule": e.rule,
                                     "deadline": format_time(e.deadline), "pool": e.pool})
        return {"now": format_time(now), "dry_run": dry_run, "warned": warned, "recycled": recycled}

    def _sweep_lead(self, lead_id: str, pools: dict[str, Pool], now: datetime, by: Person,
                    dry_run: bool) -> list[ev.Event]:
        lead = self.repo.lead(lead_id)
        if lead.pool not in pools:
            pools[lead.pool] = self.repo.pool(lead.pool)
        if not lead.owner:
            return []
        held = self.repo.holdings(lead.owner, lead.pool)
        events = decisions.sweep_lead(lead, pools[lead.pool], held, now, by.id)
        if events and not dry_run:
            self.repo.commit([lead.head, held.head], events)
        return events


def _result(lead: Lead, stored: list[Stored]) -> dict[str, Any]:
    """The result of an ownership command; a recorded refusal is raised instead."""
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
        raise Refused(e.reason, refusals.reword(e.message), **details)  # stored in English
    after = replay(lead, mine)
    return {
        "lead": lead.id, "event": type(first.event).__name__, "position": first.position,
        "owner": after.owner, "pool": after.pool, "status": after.status,
        "occurred_at": format_time(first.event.occurred_at),
    }
