"""Streams in and out of the store: load states, remember them, commit with expected
versions, and re-run a decision that lost a race.

A rep's holdings in a pool have a stream of their own (its events are `HoldingsChanged` and
`HoldingsClosed`); `Holdings` is their state, and `holdings_stream` names the stream.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from ledger import events as ev
from ledger.errors import NotFound, StoreUnavailable
from ledger.i18n import N_, _
from ledger.state import Desk as Holdings
from ledger.state import Head, Lead, Person, Pool, advance, lead_stream, person_stream, pool_stream, replay
from ledger.state import desk_stream as holdings_stream
from ledger.store import Conflict, LeadKey, NewEvent, Store, Stored
from ledger.values import check_id, quote, unknown_lead

MAX_ATTEMPTS = 60
T = TypeVar("T")
Remembered = Person | Pool | Holdings


def stream_of(event: ev.Event) -> str:
    """The stream an event is appended to."""
    if isinstance(event, (ev.HoldingsChanged, ev.HoldingsClosed)):
        return holdings_stream(event.rep, event.pool)
    if isinstance(event, (ev.PersonRegistered, ev.PersonDeactivated)):
        return person_stream(event.person)
    if isinstance(event, (ev.PoolCreated, ev.PoolRulesChanged, ev.MembersGranted, ev.MembersRevoked)):
        return pool_stream(event.pool)
    return lead_stream(event.lead)


class Repository:
    """The states of one store, as this process last read or wrote them."""

    def __init__(self, store: Store, append_step: Callable[..., list[Stored]] | None = None):
        """`append_step` replaces `Repository.append` as the step every `commit` takes (called
        with this repository first), so that an owner may wrap it: to hold or count appends."""
        self.store = store
        self.append_step = append_step or Repository.append
        # People, pools and holdings as last read or written here, by stream. People and pools
        # change rarely but are read by every command, and a pool's stream grows with each
        # grant and rule change: replaying it whole each time would make commands slower as
        # the ledger ages. The store is append-only, so a state once read stays true up to
        # its version; only the events after it are read again.
        self.remembered: dict[str, Remembered] = {}

    def ready(self) -> None:
        self.store.ensure_ready()

    # --- remembered states --------------------------------------------------------------

    def remembered_versions(self, *streams: str) -> dict[str, int]:
        """The versions up to which these streams are remembered: a read asks only for the
        events after them."""
        return {s: found.head.version for s in streams if (found := self.remembered.get(s))}

    def remember(self, state: Remembered) -> None:
        """Remember a state unless one at least as new is remembered already."""
        known = self.remembered.get(state.head.stream)
        if known is None or state.head.version > known.head.version:
            self.remembered[state.head.stream] = state

    def forget_holdings(self) -> None:
        """Holdings may have moved on after a lost race: read them again."""
        for stream, state in list(self.remembered.items()):
            if isinstance(state, Holdings):
                self.remembered.pop(stream, None)

    def _remembered_now(self, stream: str, initial: Callable[[], Person | Pool], stored: list[Stored] | None) -> Any:
        """A person or pool: the state remembered (or `initial()`), moved on by the events
        stored after it (`stored`, from a read that asked for those; read here when None).
        Events at or below the version remembered now (another thread may have moved it on
        meanwhile) are skipped."""
        if stored is None:
            stored = self.store.read_stream(stream, after_version=self.remembered_versions(stream).get(stream, 0))
        state = self.remembered.get(stream)
        if state is None:
            state = initial()
        elif not stored:
            return state
        state = replay(state, [s for s in stored if s.version > state.head.version])
        self.remember(state)
        return state

    # --- loading ------------------------------------------------------------------------

    def person(self, person_id: str, stored: list[Stored] | None = None) -> Person:
        """A person, registered or not (`exists`)."""
        stream = person_stream(person_id)
        return self._remembered_now(stream, lambda: Person(Head(stream), person_id), stored)

    def known_person(self, person_id: str, stored: list[Stored] | None = None) -> Person:
        person = self.person(person_id, stored)
        if not person.exists:
            check_id(person_id, N_("person id"))  # an id nobody could have is bad input, not unknown
            raise NotFound("unknown_person", _("no person {person}", person=quote(person_id)), person=person_id)
        return person

    def pool(self, pool_id: str, stored: list[Stored] | None = None) -> Pool:
        stream = pool_stream(pool_id)
        pool = self._remembered_now(stream, lambda: Pool(Head(stream), pool_id), stored)
        if not pool.exists:
            check_id(pool_id, N_("pool id"))
            raise NotFound("unknown_pool", _("no pool {pool}", pool=quote(pool_id)), pool=pool_id)
        return pool

    def fresh_pool(self, pool_id: str) -> Pool:
        """A pool read whole from the store, existing or not (nothing remembered is used)."""
        stream = pool_stream(pool_id)
        return replay(Pool(Head(stream), pool_id), self.store.read_stream(stream))

    def lead(self, lead_id: str, *, upto: int | None = None, must_exist: bool = True,
             stored: list[Stored] | None = None) -> Lead:
        stream = lead_stream(lead_id)
        if stored is None:
            stored = self.store.read_stream(stream, upto_position=upto)
        lead = replay(Lead(Head(stream), lead_id), stored)
        if must_exist and not lead.exists:
            raise unknown_lead(lead_id)
        return lead

    def disputed_lead(self, dispute_id: str) -> Lead:
        """The lead a dispute is about; its id is LEAD-Dn."""
        lead_id, sep, number = dispute_id.rpartition("-D")
        if not sep or not number.isdigit():
            raise NotFound("unknown_dispute", _("no dispute {dispute}", dispute=quote(dispute_id)), dispute=dispute_id)
        lead = self.lead(lead_id, must_exist=False)
        if not lead.exists or lead.dispute(dispute_id) is None:
            raise NotFound("unknown_dispute", _("no dispute {dispute}", dispute=quote(dispute_id)), dispute=dispute_id)
        return lead

    def holdings(self, rep: str, pool: str, last: list[Stored] | None = None) -> Holdings:
        """A rep's holdings in a pool, from the last event of their stream (which carries them whole)."""
        stream = holdings_stream(rep, pool)
        if last is None:
            found = self.store.read_last(stream)
            last = [found] if found else []
        return replay(Holdings(Head(stream), rep, pool), last)

    def read_for_lead(self, actor_id: str, lead_id: str, pool_guess: str | None) -> dict[str, list[Stored]]:
        """The actor, a lead and (a guess) a pool with the actor's holdings in it, in one round trip."""
        remembered = [person_stream(actor_id), *([pool_stream(pool_guess)] if pool_guess else [])]
        unread = [holdings_stream(actor_id, pool_guess)] if pool_guess else []
        return self.store.read_streams([*remembered, lead_stream(lead_id)],
                                       last=[h for h in unread if h not in self.remembered],
                                       after=self.remembered_versions(*remembered))

    def pool_and_holdings(self, pool_id: str, *reps: str, got: dict[str, list[Stored]] | None = None,
                          actor: Person | None = None) -> tuple[Pool, list[Holdings]]:
        """A pool and the holdings of some reps in it, read in one round trip (none if `got`,
        read ahead, holds them). Read afresh, they come with the `actor` again: if he changed
        since he was read (deactivated, say), the decision would mix two moments, so the
        attempt starts over (Conflict).

        Holdings remembered are not read again: a decision made from holdings that moved on
        since cannot be recorded, because every command that reads holdings either appends
        to them (at the next version, taken by then) or checks, under the append lock, that
        they have not moved (`commit`'s expected versions). Either way the attempt ends in a
        Conflict, the holdings remembered are forgotten, and it starts over."""
        got = {} if got is None else got
        streams = [holdings_stream(rep, pool_id) for rep in reps]
        unread = [h for h in streams if h not in got and h not in self.remembered]
        if pool_stream(pool_id) not in got or unread:
            again = [person_stream(actor.id)] if actor else []
            got = self.store.read_streams([pool_stream(pool_id), *again], last=unread,
                                          after=self.remembered_versions(pool_stream(pool_id), *again))
            if actor and self.person(actor.id, got[again[0]]).head != actor.head:
                raise Conflict(f"{actor.id} changed while the command read")
        found = []
        for rep, stream in zip(reps, streams, strict=True):
            if stream in got:
                self.remember(self.holdings(rep, pool_id, got[stream]))
            found.append(self.remembered[stream])
        return self.pool(pool_id, got[pool_stream(pool_id)]), found

    # --- appending ----------------------------------------------------------------------

    def commit(self, heads: Iterable[Head], events: list[ev.Event], *,
               keys: Iterable[LeadKey] = (), unique_keys: bool = True, **also: Any) -> list[Stored]:
        """Append events after the heads read; Conflict if any of those streams moved on.
        `also=fn(cursor)` does more in the append's transaction (an erasure)."""
        return self.append_step(self, heads, events, keys=keys, unique_keys=unique_keys, **also)

    def append(self, heads: Iterable[Head], events: list[ev.Event], *,
               keys: Iterable[LeadKey] = (), unique_keys: bool = True, also: Any = None) -> list[Stored]:
        """`commit`'s step: number the events after the heads and append them."""
        known = {h.stream: h for h in heads}
        versions = {s: h.version for s, h in known.items()}
        new = []
        for event in events:
            stream = stream_of(event)
            head = known[stream]
            versions[stream] += 1
            new.append(NewEvent(stream, versions[stream], head.hash, event))
        # A stream the decision read but does not write (the holdings behind a recorded
        # refusal) must not have moved on either, or the decision is re-made on fresh state.
        unchanged = [(s, h.version) for s, h in known.items() if versions[s] == h.version]
        stored = self.store.append(new, keys=list(keys), unique_keys=unique_keys, expect=unchanged, also=also)
        for s in stored:  # what is remembered moves on with what was written here
            state = self.remembered.get(s.stream)
            if state is not None and state.head.version == s.version - 1:
                self.remember(advance(state, s))
        return stored

    def retry(self, attempt: Callable[[], T]) -> T:
        """Run load-decide-append until it appends without losing a race."""
        for n in range(MAX_ATTEMPTS):
            try:
                return attempt()
            except Conflict:
                self.forget_holdings()
                time.sleep(random.uniform(0, min(0.002 * (n + 1), 0.05)))
        raise StoreUnavailable(_("the store is too busy: gave up after many conflicting writes"))


__all__ = ["MAX_ATTEMPTS", "Holdings", "Repository", "holdings_stream", "stream_of"]
