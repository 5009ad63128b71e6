"""What the store takes and hands back, the same for every backend: events as stored and to
store, lead keys, and the refusals a lost race ends in."""

from __future__ import annotations

import operator
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NamedTuple

from ledger import codec
from ledger.events import AnyEvent, Event


class Conflict(Exception):
    """Another writer appended to one of the streams first: re-read and decide again."""


class DuplicateKeys(Conflict):
    """A lead key was taken by a concurrent writer after we checked."""


class Stored(NamedTuple):  # a named tuple: made for every event read, and quick to make
    """An event as the store holds it."""

    position: int
    stream: str
    version: int
    recorded_at: datetime
    hash: str
    event: AnyEvent


class NewEvent(NamedTuple):
    stream: str
    version: int
    prev: str  # hash of the stream's last stored event (events after it in a batch chain on)
    event: Event


@dataclass(frozen=True, slots=True)
class LeadKey:
    kind: str  # phone | email | company
    value: str
    lead: str


Row = tuple[str, int, str, bytes]  # an event row as stored: stream, version, topic, state


def encoded(events: Sequence[NewEvent]) -> tuple[datetime, list[Row], list[str]]:
    """The time they are recorded at, the rows to store, and each one's chain hash (events of
    one stream in a batch chain on from each other)."""
    now = datetime.now(UTC)
    heads: dict[str, str] = {}
    rows, digests = [], []
    for e in events:
        state, digest = codec.encode(e.stream, e.version, heads.get(e.stream, e.prev), now, e.event)
        heads[e.stream] = digest
        rows.append((e.stream, e.version, type(e.event).__name__, state))
        digests.append(digest)
    return now, rows, digests


stream_order = operator.itemgetter(0, 2)  # (stream, version) of a row read


def stored(position: int, stream: str, version: int, state: bytes) -> Stored:
    record = codec.decode(state)
    return Stored(position, stream, version, record.recorded_at, record.hash, record.event)
