"""Tamper evidence: recompute every hash chain, and a digest of the whole log.

Each stored event carries the hash of the previous event of its stream and its own hash
(see codec). `verify` walks the whole log in position order and checks each event: its
bytes decode, its hash matches its bytes (which covers its stream, version, predecessor
hash, recording time and event), its stored type column names its event, and it follows
its stream's previous event (next version, that event's hash).

`first_bad_position` is the position of the first event known to be bad, over the whole
log (not merely the first place a check tripped):

- a changed byte, a swapped or a moved event: that event itself (its hash no longer
  matches its bytes, or its version is out of place);
- an event rewritten with its hash recomputed: the rewritten event, found through its
  stream's next event, whose `prev` no longer names it;
- a deleted event in the middle of a stream: the stream's next event, the first stored
  event that no longer follows its chain (the `problem` names the gap).

A deleted *last* event of a stream, a truncated tail, or a whole chain rewritten
consistently leave every chain intact; only a digest shows them. The digest
`lld1:LEDGER:POSITION:HASH` holds the ledger's id (the start of its first event's hash),
a position, and a rolling hash over (position, event hash) of every event up to it.
`verify --digest D` recomputes it at D's position:

- the log ends (or has no event) at D's position: `first_bad_position` is the first
  position after the last event before D, i.e. the first one removed;
- the log up to D differs otherwise: `first_bad_position` is null (the digest proves the
  log changed at or before D, but cannot name the event); `digest_position` says where;
- the digest belongs to another ledger (or this log's first event was rewritten and
  re-hashed; the two cannot be told apart): not ok, `first_bad_position` null.

The Merkle tree (spec section 8). The same pass recomputes the tree of the events as they
are now and compares each leaf with the stored tree's, written when the event was appended:
an event rewritten (even re-hashed with its whole chain) or a log cut and grown again is
found at its position. A missing position (positions are gap-free) is found at itself. A
tree-head digest (`llh1:`) is checked by the recomputed root at its size, its origin, and the
stored tree's consistency proof from it to today; when it fails, the first position whose
stored leaf differs is named, if any does. A store file that cannot be read as a ledger at
all is not ok either (`Integrity.opened`).

All of these are integrity violations (exit 6): the log cannot be shown to extend the
digest. A digest that is not of the form `leadledger digest` prints is `invalid_input`
(exit 2) and nothing is checked.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec

from eventsourcing.persistence import PersistenceError

from ledger import checkpoint, codec, merkle
from ledger.errors import IntegrityViolation, InvalidInput, StoreUnavailable
from ledger.i18n import N_, _, english, reword
from ledger.store import Store
from ledger.store.merkle import positioned_leaves

# A problem is data (the `problem` of verify's JSON) and stays in English; the message shows it
# in the reader's language, made again from its template (`reword`).
GAP = N_("position {position} is missing: positions are gap-free")
GAP_BEFORE = N_("position {position} is missing: positions are gap-free (the log goes on at {next})")
NOT_INTACT = N_("the store is not an intact ledger: {reason}")
TREE_DIFFERS = N_("the event at position {position} is not the one the stored Merkle tree recorded when it was appended")
UNDECODABLE = N_("the stored bytes of {stream} v{version} do not decode: {reason}")
HASH_DIFFERS = N_("the hash of {stream} v{version} does not match its bytes "
                  "(altered, swapped, or moved from another stream)")
WRONG_TOPIC = N_("{stream} v{version} is stored as a {topic} but is a {actual}")
JUMP_AFTER = N_("{stream} jumps from v{last} to v{version}: {gap} (after position {position}) is missing")
JUMP_FIRST = N_("{stream} jumps from v{last} to v{version}: {gap} (before it) is missing")
OUT_OF_PLACE = N_("{stream} v{version} comes after v{last}: out of place")
REWRITTEN = N_("{stream} v{version} does not follow v{last}: the event at position {position} was rewritten")
FALSE_START = N_("{stream} v{version} does not follow v{last}: the stream's first event names a predecessor")
OTHER_LEDGER = N_("the digest is of another ledger ({digest}, this one is {ledger}), "
                  "or this log's first event was rewritten")
OTHER_LOG = N_("the digest is of another ledger ({digest}, this log is {ledger}), "
               "or this log's first event was rewritten")
OTHER_EMPTY = N_("the digest is of another ledger ({digest}, this log is empty), "
                 "or this log's first event was rewritten")
ENDS_BEFORE = N_("the log ends at position {last}, before the digest's position {position}: "
                 "the events after position {after} were removed")
DIGEST_GONE = N_("the event at the digest's position {position} is missing: events after "
                 "position {after} were removed")
NOT_TAKEN = N_("the log up to position {position} is not the one the digest was taken of: "
               "an event at or before it was removed, rewritten or inserted")
NO_PROOF = N_("the stored tree's consistency proof does not lead to the digest")
PROBLEMS = (GAP, GAP_BEFORE, NOT_INTACT, TREE_DIFFERS, UNDECODABLE, HASH_DIFFERS, WRONG_TOPIC, JUMP_AFTER,
            JUMP_FIRST, OUT_OF_PLACE, REWRITTEN, FALSE_START, OTHER_LEDGER, OTHER_LOG, OTHER_EMPTY,
            ENDS_BEFORE, DIGEST_GONE, NOT_TAKEN, NO_PROOF)


def _message(position: int | None, problem: str) -> str:
    shown = reword(problem, PROBLEMS)
    return _("position {position}: {problem}", position=position, problem=shown) if position else shown

DIGEST_PREFIX = "lld1"
EMPTY_DIGEST = f"{DIGEST_PREFIX}:-:0:-"  # the digest of an empty log: every log extends it
_DIGEST = re.compile(rf"{DIGEST_PREFIX}:([0-9a-f]{{16}}):([1-9][0-9]{{0,18}}):([0-9a-f]{{64}})", re.ASCII)
BATCH = 5000


def _roll(previous: bytes, position: int, event_hash: str) -> bytes:
    return hashlib.sha256(previous + f"|{position}|{event_hash}".encode()).digest()


@dataclass
class Digest:
    ledger: str | None  # None: the empty log
    position: int
    rolling: str

    def __str__(self) -> str:
        if self.ledger is None:
            return EMPTY_DIGEST
        return f"{DIGEST_PREFIX}:{self.ledger}:{self.position}:{self.rolling}"


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
    frontier: merkle.Frontier = field(default_factory=merkle.Frontier)  # the tree of the events as they are
    root_at_stop: bytes | None = None  # the recomputed tree's root at `stop` leaves
    tree_bad: int | None = None  # the first position whose stored leaf differs from its event's
    has_tree: bool = False  # whether the store has a stored tree to compare with

    def blame(self, position: int, problem: str) -> None:
        if self.bad is None or position < self.bad:
            self.bad, self.problem = position, problem

    def digest(self) -> Digest:
        if self.ledger is None:
            return Digest(None, 0, "")
        return Digest(self.ledger, self.last, self.rolling.hex())


class Integrity:
    """verify and digest."""

    def __init__(self, store: Store):
        self.store = store

    def _scan(self, stop: int | None = None, progress: Callable[[int], None] | None = None) -> Scan:
        """Check every event of the log, and recompute its Merkle tree against the stored
        one; note the rolling digest and the tree's root at position `stop`."""
        scan = Scan()
        scan.has_tree = bool(self.store.tree_size())
        if stop == 0:
            scan.root_at_stop = merkle.EMPTY_ROOT
        while rows := self.store.read_log_raw(after=scan.last, limit=BATCH):
            self._tree(scan, rows, stop)
            for position, stream, version, topic, state in rows:
                if position != scan.last + 1:
                    scan.blame(scan.last + 1, english(GAP_BEFORE, position=scan.last + 1, next=position)
                               if position > scan.last + 2 else english(GAP, position=scan.last + 1))
                own = _check(scan, position, stream, version, topic, state)
                scan.heads[stream] = (version, position, own)
                scan.rolling = _roll(scan.rolling, position, own)
                scan.ledger = scan.ledger or own[:16]
                scan.checked += 1
                scan.last = position
                if stop is not None and position <= stop:
                    scan.before_stop = position
                    if position == stop:
                        scan.rolling_at_stop = scan.rolling.hex()
            if progress:
                progress(len(rows))
        return scan

    def opened(self, read: Callable[[], Any]) -> Any:
        """`read()` on the store; a store that is there but cannot be read as a ledger (a
        truncated or corrupted file) is an integrity violation (exit 6), not unavailable."""
        try:
            self.store.ensure_ready()
            return read()
        except (StoreUnavailable, PersistenceError) as e:
            if not self.store.damaged():
                raise
            problem = english(NOT_INTACT, reason=getattr(e, "message", e))
            raise IntegrityViolation(_message(None, problem), ok=False, events_checked=0, first_bad_position=None,
                                     problem=problem) from None

    def _tree(self, scan: Scan, rows: list[tuple], stop: int | None) -> None:
        """Add a batch of events to the recomputed tree; compare each leaf with the stored one."""
        first, end = scan.frontier.size, rows[-1][0]
        stored = self.store.tree_leaves(first, end) if scan.has_tree else None
        for leaf in positioned_leaves(scan.last, end, ((r[0], r[4]) for r in rows)):
            index = scan.frontier.size
            if stored is not None and scan.tree_bad is None and stored.get(index, leaf) != leaf:
                scan.tree_bad = index + 1
            scan.frontier.append(leaf)
            if stop is not None and scan.frontier.size == stop:
                scan.root_at_stop = scan.frontier.root()

    def verify(self, digest: str | None = None, progress: Callable[[int], None] | None = None) -> dict[str, Any]:
        """Recompute every chain (and, given a digest, prove the log extends it).

        Returns `{"ok": True, "events_checked": N, "first_bad_position": None, "problem": None}`
        (plus `digest_position`); raises IntegrityViolation carrying the same object, not ok,
        when anything is wrong (see the module docstring), InvalidInput for a malformed digest.
        """
        head = wanted = None
        if digest is not None and is_tree_head(digest):
            head = checkpoint.parse_digest(digest)
        elif digest is not None:
            wanted = parse_digest(digest)
        stop = head.size if head else wanted.position if wanted else None
        scan = self.opened(lambda: self._scan(stop=stop, progress=progress))
        if scan.bad is None and scan.tree_bad is not None and scan.tree_bad <= scan.last:
            scan.blame(scan.tree_bad, english(TREE_DIFFERS, position=scan.tree_bad))
        result: dict[str, Any] = {"ok": True, "events_checked": scan.checked,
                                  "first_bad_position": scan.bad, "problem": scan.problem}
        if stop is not None:
            result["digest_position"] = stop
        if scan.bad is None and (wanted is not None or head is not None):
            bad, problem = _compare(wanted, scan) if wanted else self._compare_head(head, scan)
            if problem:
                result.update(first_bad_position=bad, problem=problem)
        if result["problem"] is not None:
            result["ok"] = False
            where = result["first_bad_position"]
            raise IntegrityViolation(_message(where, result["problem"]), **result)
        return result

    def digest(self) -> dict[str, Any]:
        """The digest of the whole log as it is now; refused (exit 6) if a chain is broken."""
        self.store.ensure_ready()
        scan = self._scan()
        if scan.bad is not None:
            raise IntegrityViolation(_message(scan.bad, scan.problem), ok=False,
                                     events_checked=scan.checked, first_bad_position=scan.bad,
                                     problem=scan.problem)
        return {"digest": str(scan.digest()), "position": scan.last, "events": scan.checked}


    def _compare_head(self, head: checkpoint.TreeHead, scan: Scan) -> tuple[int | None, str | None]:
        """(first bad position, problem) of an intact log against a tree head."""
        if head.size == 0:
            return None, None
        first = self.store.read_log_raw(after=0, limit=1)
        origin = checkpoint.origin_of(codec.decode_raw(first[0][4]).hash if first else None)
        if origin != head.origin:
            return None, english(OTHER_LEDGER, digest=head.origin, ledger=origin)
        if scan.frontier.size < head.size:
            return scan.last + 1, english(ENDS_BEFORE, last=scan.last, position=head.size, after=scan.last)
        if scan.root_at_stop != head.root:
            return scan.tree_bad, english(NOT_TAKEN, position=head.size)
        if scan.tree_bad is None and self.store.tree_size() == scan.frontier.size:
            proof = merkle.consistency_proof(head.size, scan.frontier.size, self.store.tree_nodes)
            if not merkle.verify_consistency(head.size, scan.frontier.size, head.root, scan.frontier.root(), proof):
                return None, english(NO_PROOF)
        return None, None


def is_tree_head(digest: str) -> bool:
    """Whether a digest is a tree head (`llh1:`, or a checkpoint note) rather than an old `lld1:`."""
    text = (digest or "").strip()
    return text.startswith(checkpoint.PREFIX) or "\n" in text


def _check(scan: Scan, position: int, stream: str, version: int, topic: str | None, state: bytes) -> str:
    """Check one event against its stream's chain so far; return its stored hash."""
    try:
        raw = codec.decode_raw(state)
        record = codec.decode(state)
    except msgspec.DecodeError as e:
        scan.blame(position, english(UNDECODABLE, stream=stream, version=version, reason=e))
        return f"undecodable@{position}"  # chains on from here, so a later event of the stream still counts
    expected = codec.chain_hash(stream, version, raw.prev, bytes(raw.recorded_at), bytes(raw.event))
    intact = expected == raw.hash
    if not intact:
        scan.blame(position, english(HASH_DIFFERS, stream=stream, version=version))
    elif topic is not None and topic != codec.topic_of(record.event):
        scan.blame(position, english(WRONG_TOPIC, stream=stream, version=version, topic=topic,
                                     actual=codec.topic_of(record.event)))
    last_version, last_position, last_hash = scan.heads.get(stream, (0, 0, codec.GENESIS))
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


def _compare(wanted: Digest, scan: Scan) -> tuple[int | None, str | None]:
    """(first bad position, problem) of an intact log against a digest; (None, None) if it extends it."""
    if wanted.ledger is None:
        return None, None
    if scan.ledger != wanted.ledger:
        if scan.ledger is None:
            return None, english(OTHER_EMPTY, digest=wanted.ledger)
        return None, english(OTHER_LOG, digest=wanted.ledger, ledger=scan.ledger)
    if scan.rolling_at_stop is None:
        gone = scan.before_stop + 1
        if scan.last < wanted.position:
            return gone, english(ENDS_BEFORE, last=scan.last, position=wanted.position, after=scan.before_stop)
        return gone, english(DIGEST_GONE, position=wanted.position, after=scan.before_stop)
    if scan.rolling_at_stop != wanted.rolling:
        return None, english(NOT_TAKEN, position=wanted.position)
    return None, None


def parse_digest(text: str) -> Digest:
    """A digest as `leadledger digest` prints it; InvalidInput (exit 2) otherwise."""
    text = (text or "").strip()
    if text == EMPTY_DIGEST:
        return Digest(None, 0, "")
    found = _DIGEST.fullmatch(text.lower())
    if not found:
        raise InvalidInput(_("malformed digest {digest}: expected {prefix}:LEDGER:POSITION:HASH "
                             "(16 and 64 hex digits, a position from 1) as printed by `leadledger digest`",
                             digest=repr(text), prefix=DIGEST_PREFIX),
                           digest=text)
    ledger, position, rolling = found.groups()
    return Digest(ledger, int(position), rolling)
