"""How events are stored: msgspec bytes, wrapped in a record that chains their hashes.

The stored `state` of each event is the JSON of a `Record`: the event itself, the time the
ledger recorded it, the hash of the previous event of the same stream, and its own hash.
The hash covers the stream id, the version, the previous hash, the recording time and the
event's exact bytes, so a changed byte, a deleted or swapped event, or an event moved to
another stream breaks the chain. Encoders and decoders are built once, here.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import UTC, datetime
from functools import partial

import msgspec

from ledger import chain
from ledger.errors import InvalidInput
from ledger.events import AnyEvent, Event
from ledger.i18n import _

# The chain is defined in chain.py (the offline receipt check needs it without msgspec).
GENESIS = chain.GENESIS
# With OpenSSL's SHA-256: faster on whole records, and the store has it loaded already.
chain_hash = partial(chain.chain_hash, new=hashlib.sha256)

_event_encoder = msgspec.json.Encoder()


class Record(msgspec.Struct, frozen=True, kw_only=True):
    hash: str
    prev: str
    recorded_at: datetime
    event: AnyEvent


class RawRecord(msgspec.Struct, frozen=True, kw_only=True):
    hash: str
    prev: str
    recorded_at: msgspec.Raw
    event: msgspec.Raw


class EventRecord(msgspec.Struct, frozen=True):
    """A stored record read for its event alone (the read models need no more)."""

    event: AnyEvent


_record_decoder = msgspec.json.Decoder(Record)
_raw_record_decoder = msgspec.json.Decoder(RawRecord)
_event_decoder = msgspec.json.Decoder(EventRecord)
_bare_event_decoder = msgspec.json.Decoder(AnyEvent)
_time_decoder = msgspec.json.Decoder(datetime)


def encode(stream: str, version: int, prev: str, recorded_at: datetime, event: Event) -> tuple[bytes, str]:
    """The stored bytes of an event, and its chain hash."""
    event_bytes = _event_encoder.encode(event)
    at_bytes = _event_encoder.encode(recorded_at.astimezone(UTC))
    digest = chain_hash(stream, version, prev, at_bytes, event_bytes)
    body = (
        b'{"hash":"' + digest.encode() + b'","prev":"' + prev.encode()
        + b'","recorded_at":' + at_bytes + b',"event":' + event_bytes + b"}"
    )
    return body, digest


def decode(state: bytes) -> Record:
    return _record_decoder.decode(state)


def decode_event(state: bytes) -> AnyEvent:
    return _event_decoder.decode(state).event


# The decoders' own methods, as `verify` calls them for every event (scan.py).
decode_raw = _raw_record_decoder.decode  # a record's parts, as stored
decode_time = _time_decoder.decode  # a recorded time's bytes
decode_bare_event = _bare_event_decoder.decode  # an event's bytes


def checked(state: bytes) -> tuple[RawRecord, Event]:
    """The record as stored, and its event: `decode` checks as much, but parses the record's
    bytes once, not twice (`verify` needs both)."""
    raw = _raw_record_decoder.decode(state)
    _time_decoder.decode(raw.recorded_at)
    return raw, _bare_event_decoder.decode(raw.event)


def check_types(events: Iterable[Event]) -> None:
    """InvalidInput unless each event reads back as itself: a field of the wrong type (an
    app's `team=5`) would otherwise be stored for good, and no read could decode it again."""
    for event in events:
        try:
            _bare_event_decoder.decode(_event_encoder.encode(event))
        except (msgspec.ValidationError, msgspec.EncodeError, TypeError, ValueError) as e:
            raise InvalidInput(_("{event} has a value of the wrong type: {problem}", event=type(event).__name__,
                                 problem=e)) from None


def topic_of(event: Event) -> str:
    return type(event).__name__
