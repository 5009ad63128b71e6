"""Who acts and when: the checks every writing command makes before it decides.

The order is fixed: the actor is known and active, his role allows the command, then `--at`
parses, then the command's own input; each attempt (a lost race runs it again) checks the
actor once more, since he may have been deactivated meanwhile.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from ledger import decisions
from ledger.errors import InvalidInput, Refused
from ledger.repository import Repository
from ledger.state import Desk, Lead, Person, Pool
from ledger.store import Stored
from ledger.values import parse_time
from ledger.i18n import _

T = TypeVar("T")
When = datetime | str | None


class Acting:
    def __init__(self, repo: Repository, clock: Callable[[], datetime]):
        self.repo = repo
        self.clock = clock

    def time(self, at: When) -> datetime:
        """`--at` (a malformed one is refused), or now."""
        return parse_time(at) or self.clock()

    def when(self, when: datetime, at: When, actor: Person | None, *pools: Pool,
             lead: Lead | None = None, holdings: tuple[Desk, ...] = ()) -> datetime:
        """The command's time `when` (from `at`), checked against the store's clock and what
        the command concerns: not in the future, not before the actor was registered or a
        pool created, not before the lead's latest event. A default time (no `at`) is never
        refused for being early: it moves up to the latest of those, and of the latest change
        of the `holdings` the command changes (whose own check is the decision's), which can
        only be ahead of the clock by the few minutes of slack `check_at` allows."""
        if at is None:
            floors = [when, lead.last_event_at if lead is not None else None,
                      actor.registered_at if actor is not None else None,
                      *(p.created_at for p in pools), *(h.last_event_at for h in holdings)]
            when = max(f for f in floors if f is not None)
        now = self.clock()
        for pool in pools[1:]:
            decisions.check_when(when, now, pool=pool)
        return decisions.check_when(when, now, actor, pools[0] if pools else None, lead)

    def actor(self, actor_id: str | None, command: str, stored: list[Stored] | None = None) -> Person:
        """The actor is known and active, then the role allows the command."""
        if not actor_id:
            raise InvalidInput(_("{command} needs an actor: pass --as ID (or set LEADLEDGER_ACTOR)",
                                 command=command.replace(".", " ")))
        self.repo.ready()
        actor = self.repo.known_person(actor_id, stored)
        if not actor.active:
            raise Refused("actor_inactive", _("{actor} is deactivated and may not act", actor=actor_id), actor=actor_id)
        decisions.authorise(actor, command)
        return actor

    def reader(self, actor_id: str | None) -> None:
        """Read commands need no actor; when one is named he must be known and active."""
        self.repo.ready()
        if actor_id:
            actor = self.repo.known_person(actor_id)
            if not actor.active:
                raise Refused("actor_inactive", _("{person} is deactivated", person=actor_id), actor=actor_id)

    def holder(self, person_id: str) -> Person:
        """A person who may hold leads."""
        person = self.repo.known_person(person_id)
        decisions.check_holder(person)
        return person

    def run(self, actor_id: str | None, command: str, at: When,
            attempt: Callable[[Person, datetime], T], check: Callable[[], Any] | None = None) -> T:
        """Check the actor, then `at`, then the command's own input (`check`); then run
        `attempt(actor, at)` until it appends without losing a race, the actor checked again
        at the start of each attempt."""
        self.actor(actor_id, command)
        when = self.time(at)
        if check is not None:
            check()
        return self.repo.retry(lambda: attempt(self.actor(actor_id, command), when))
