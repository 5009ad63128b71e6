"""The per-event work of `verify` and `digest`: each event of the log, batch by batch, checked
against its stream's chain so far, its tree leaf made, and the rolling digest carried on
(integrity.py says what each check finds, and what it blames).

Nearly every event passes every check, so each is first checked the quick way: its record
parsed once, its time decoded only when it differs from the one before (a batch's events
often share it), its hash and tree leaf from one digest. An event that fails any check is
checked again step by step (`_check`), which names what is wrong: the outputs are the same.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import msgspec

from ledger import codec, merkle
from ledger.chain import chain_digest
from ledger.i18n import N_, english
from ledger.store.merkle import leaf_of

# A problem is data (the `problem` of verify's JSON) and stays in English (integrity.py).
GAP = N_("position {position} is missing: positions are gap-free")
GAP_BEFORE = N_("position {position} is missing: positions are gap-free (the log goes on at {next})")
UNDECODABLE = N_("the stored bytes of {stream} v{version} do not decode: {reason}")
HASH_DIFFERS = N_("the hash of {stream} v{version} does not match its bytes "
                  "(altered, swapped, or moved from another stream)")
WRONG_TOPIC = N_("{stream} v{version} is stored as a {topic} but is a {actual}")
JUMP_AFTER = N_("{stream} jumps from v{last} to v{version}: {gap} (after position {position}) is missing")
JUMP_FIRST = N_("{stream} jumps from v{last} to v{version}: {gap} (before it) is missing")
OUT_OF_PLACE = N_("{stream} v{version} comes after v{last}: out of place")
REWRITTEN = N_("{stream} v{version} does not follow v{last}: the event at position {position} was rewritten")
FALSE_START = N_("{stream} v{version} does not follow v{last}: the stream's first event names a predecessor")

_NO_EVENT = (0, 0, codec.GENESIS)  # a stream's head before its first event: (version, position, hash)


def _roll(previous: bytes, position: int, event_hash: str) -> bytes:
    return hashlib.sha256(previous + f"|{position}|{event_hash}".encode()).digest()


@dataclass
class Scan:
    """What one pass over the log found."""

    checked: int = 0
    last: int = 0  # the last position seen
    ledger: str | None = None
    rolling: bytes = b""
    bad: int | None = None  # the first bad position found so far
    problem: str | None = None
    before_stop: int = 0  # the last position at or before `stop`
    rolling_at_stop: str | None = None  # the rolling hash at exactly `stop`, if an event is there
    heads: dict[str, tuple[int, int, str]] = field(default_factory=dict)  # stream -> (version, position, hash)
    leaves: int = 0  # the leaves compared with the stored tree's
    tree_bad: int | None = None  # the first position whose stored leaf differs from its event's
    has_tree: bool = False  # whether the store has a stored tree to compare with

    def blame(self, position: int, problem: str) -> None:
        if self.bad is None or position < self.bad:
            self.bad, self.problem = position, problem

    def check(self, rows: list[tuple]) -> tuple[list[str], list[bytes]]:
        """Check the log's next batch of rows (position, stream, version, topic, state); return
        each event's stored hash and its tree leaf (from that hash)."""
        heads, hashes, leaves, last, moment = self.heads, [], [], self.last, None
        for position, stream, version, topic, state in rows:
            if position != last + 1:
                self.blame(last + 1, english(GAP_BEFORE, position=last + 1, next=position)
                           if position > last + 2 else english(GAP, position=last + 1))
            last = position
            head_version, _, head_hash = heads.get(stream, _NO_EVENT)
            own = None
            try:
                raw = codec.decode_raw(state)
                if raw.recorded_at != moment:  # a batch's events often share their time
                    codec.decode_time(raw.recorded_at)
                    moment = raw.recorded_at
                kind = codec.topic_of(codec.decode_bare_event(raw.event))
                digest = chain_digest(stream, version, raw.prev, raw.recorded_at, raw.event, hashlib.sha256)
                if (digest.hex() == raw.hash and version == head_version + 1 and raw.prev == head_hash
                        and (topic is None or topic == kind)):
                    own, leaf = raw.hash, merkle.leaf_hash(digest)
            except msgspec.DecodeError:
                pass
            if own is None:  # something is wrong: `_check` finds what, and blames it
                own = _check(self, position, stream, version, topic, state)
                leaf = leaf_of(state, own)
            heads[stream] = (version, position, own)
            hashes.append(own)
            leaves.append(leaf)
        if self.ledger is None and hashes:  # the first event's (read only when no event was blamed)
            self.ledger = hashes[0][:16]
        self.last = last
        self.checked += len(rows)
        return hashes, leaves

    def roll(self, rows: list[tuple], hashes: list[str], stop: int | None) -> None:
        """Carry the rolling digest over a checked batch, noting it at position `stop`."""
        for (position, *_), own in zip(rows, hashes, strict=True):
            self.rolling = _roll(self.rolling, position, own)
            if stop is not None and position <= stop:
                self.before_stop = position
                if position == stop:
                    self.rolling_at_stop = self.rolling.hex()


def _check(scan: Scan, position: int, stream: str, version: int, topic: str | None, state: bytes) -> str:
    """Check one event against its stream's chain so far; return its stored hash."""
    try:
        raw, event = codec.checked(state)
    except msgspec.DecodeError as e:
        scan.blame(position, english(UNDECODABLE, stream=stream, version=version, reason=e))
        return f"undecodable@{position}"  # chains on from here, so a later event of the stream still counts
    expected = codec.chain_hash(stream, version, raw.prev, raw.recorded_at, raw.event)
    intact = expected == raw.hash
    if not intact:
        scan.blame(position, english(HASH_DIFFERS, stream=stream, version=version))
    elif topic is not None and topic != codec.topic_of(event):
        scan.blame(position, english(WRONG_TOPIC, stream=stream, version=version, topic=topic,
                                     actual=codec.topic_of(event)))
    last_version, last_position, last_hash = scan.heads.get(stream, _NO_EVENT)
    if version != last_version + 1:
        if version > last_version + 1:
            gap = (f"v{last_version + 1}" if version == last_version + 2
                   else f"v{last_version + 1}-v{version - 1}")
            scan.blame(position, english(JUMP_AFTER, stream=stream, last=last_version, version=version, gap=gap,
                                         position=last_position) if last_position
                       else english(JUMP_FIRST, stream=stream, last=last_version, version=version, gap=gap))
        else:
            scan.blame(position, english(OUT_OF_PLACE, stream=stream, version=version, last=last_version))
    elif intact and raw.prev != last_hash:
        # The predecessor no longer has the hash this intact event recorded: it was
        # rewritten (and re-hashed). With no predecessor, this event claims a false start.
        scan.blame(last_position or position,
                   english(REWRITTEN, stream=stream, version=version, last=last_version, position=last_position)
                   if last_position else english(FALSE_START, stream=stream, version=version, last=last_version))
    return raw.hash
