"""A moment of the past to answer as of, and the states of streams then.

`--at T` is business time: the events with `occurred_at` <= T, backdated ones recorded later
included. `--upto N` is recorded time: the events at positions <= N. The "now" of an answer as
of a moment — the time deadlines are checked against — is T, or the time event N was recorded
(for N = 0, before anything was recorded: the time the first event was).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ledger.errors import InvalidInput
from ledger.i18n import _
from ledger.repository import Repository
from ledger.state import Head, Lead, Person, Pool, lead_stream, person_stream, pool_stream, replay
from ledger.store import Store, Stored
from ledger.values import format_time, parse_position, parse_time, unknown_lead


@dataclass(frozen=True)
class Moment:
    at: datetime | None  # business time, or
    upto: int | None  # a position of the log
    now: datetime  # the "now" of the answer

    def label(self) -> dict[str, Any]:
        """What an answer as of this moment adds to its shape."""
        return {"at": format_time(self.at)} if self.at is not None else {"upto": self.upto}

    def keep(self, event: Any) -> bool:
        """Whether a decoded event is done by `at` (an `upto` moment filters by position)."""
        return self.at is None or event.occurred_at <= self.at

    def then(self, stored: list[Stored]) -> list[Stored]:
        """The events of one stream that had happened at this moment."""
        if self.at is not None:
            return [s for s in stored if s.event.occurred_at <= self.at]
        return [s for s in stored if s.position <= self.upto]

    def read(self, store: Store, stream: str) -> list[Stored]:
        return self.then(store.read_stream(stream, upto_position=self.upto))

    # --- states then --------------------------------------------------------------------

    def lead(self, repo: Repository, lead_id: str, stored: list[Stored] | None = None) -> Lead:
        """The lead as it was (`exists` False if not added yet); unknown_lead if it never was.
        `stored`: its events, if read already."""
        stream = lead_stream(lead_id)
        stored = repo.store.read_stream(stream) if stored is None else stored
        if not stored:
            raise unknown_lead(lead_id)
        return replay(Lead(Head(stream), lead_id), self.then(stored))

    def pool(self, repo: Repository, pool_id: str) -> Pool:
        repo.pool(pool_id)  # unknown_pool if it never was
        stream = pool_stream(pool_id)
        return replay(Pool(Head(stream), pool_id), self.read(repo.store, stream))

    def person(self, repo: Repository, person_id: str) -> Person:
        repo.known_person(person_id)
        stream = person_stream(person_id)
        return replay(Person(Head(stream), person_id), self.read(repo.store, stream))


def resolve(store: Store, clock: Callable[[], datetime], at: str | datetime | None,
            upto: str | int | None) -> Moment | None:
    """The moment `--at`/`--upto` name, or None for now; both together, or a position past the
    end of the log, is invalid_input."""
    if at is not None and upto is not None:
        raise InvalidInput(_("give --at (business time) or --upto (a log position), not both"))
    if at is not None:
        when = parse_time(at)
        return Moment(when, None, when)
    if upto is None:
        return None
    position = parse_position(upto, "--upto")
    top = store.max_position()
    if position > top:
        raise InvalidInput(_("--upto {position} is beyond the end of the log (position {top})", position=position, top=top))
    found = store.read_log(after=max(position - 1, 0), limit=1)
    return Moment(None, position, found[0].recorded_at if found else clock())
