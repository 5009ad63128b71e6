"""Tamper evidence: recompute every hash chain; check a digest of the log.

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

The Merkle tree (spec section 8). The same pass compares each event's leaf with the stored
tree's, written when the event was appended: an event rewritten (even re-hashed with its whole
chain) or a log cut and grown again is found at its position. A missing position (positions are
gap-free) is found at itself. A store file that cannot be read as a ledger at all is not ok
either (`Integrity.opened`).

A tree head (`llh1:`, what `digest` prints) is checked without that pass, and without rehashing
the log (`_compare_head`):

1. by the stored tree, in O(log n) stored rows: its root at the head's size is the head's, and
   its consistency proof from there to the log's size holds. The head's root then vouches for
   every stored subtree under it;
2. by the events the head covers, one read of each one's *recorded* hash (the start of its
   record): the tree they make is recomputed, compared with those trusted subtrees, and the
   first position that differs found by walking down the stored tree (`merkle.first_difference`);
3. when the stored tree does not give the head's root but the events do, the stored tree was
   changed: the first position whose stored leaf differs is named.

What it does not do: check each event's bytes against its recorded hash, or its stream's chain
(that is `verify` without a digest, which a forger who changed a byte but not the hash meets).
Nor can it name a position when the stored tree was rewritten with the events (its rows above
the change no longer vouched for by the head): the head's root alone does not say where. An
old head's events are checked, not the ones after it; the origin check only stands when the
stored tree does not already vouch for the head (a first event rewritten is then named).

All of these are integrity violations (exit 6): the log cannot be shown to extend the
digest. A digest that is not of the form `leadledger digest` prints is `invalid_input`
(exit 2) and nothing is checked.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

import msgspec

from ledger import checkpoint, codec, merkle
from ledger.errors import IntegrityViolation, InvalidInput, StoreUnavailable
from ledger.i18n import N_, _, english, reword
import ledger.store.failures as failures
from ledger.scan import (
    FALSE_START, GAP, GAP_BEFORE, HASH_DIFFERS, JUMP_AFTER, JUMP_FIRST, OUT_OF_PLACE, REWRITTEN, UNDECODABLE,
    WRONG_TOPIC, Scan,
)
from ledger.store import Store, log_batches
from ledger.store.merkle import positioned_leaves
from ledger.store.tree import StoredTree

# A problem is data (the `problem` of verify's JSON) and stays in English; the message shows it
# in the reader's language, made again from its template (`reword`). Those of one event's chain
# are in scan.py.
NOT_INTACT = N_("the store is not an intact ledger: {reason}")
TREE_DIFFERS = N_("the event at position {position} is not the one the stored Merkle tree recorded when it was appended")
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
TREE_BEYOND = N_("the log ends at position {last}, but the stored Merkle tree records events up to position "
                 "{size}: the events after position {last} were removed")
PROBLEMS = (GAP, GAP_BEFORE, NOT_INTACT, TREE_DIFFERS, UNDECODABLE, HASH_DIFFERS, WRONG_TOPIC, JUMP_AFTER,
            JUMP_FIRST, OUT_OF_PLACE, REWRITTEN, FALSE_START, OTHER_LEDGER, OTHER_LOG, OTHER_EMPTY,
            ENDS_BEFORE, DIGEST_GONE, NOT_TAKEN, NO_PROOF, TREE_BEYOND)


def _message(position: int | None, problem: str) -> str:
    shown = reword(problem, PROBLEMS)
    return _("position {position}: {problem}", position=position, problem=shown) if position else shown

DIGEST_PREFIX = "lld1"
EMPTY_DIGEST = f"{DIGEST_PREFIX}:-:0:-"  # the digest of an empty log: every log extends it
_DIGEST = re.compile(rf"{DIGEST_PREFIX}:([0-9a-f]{{16}}):([1-9][0-9]{{0,18}}):([0-9a-f]{{64}})", re.ASCII)
BATCH = 5000


@dataclass
class Digest:
    ledger: str | None  # None: the empty log
    position: int
    rolling: str

    def __str__(self) -> str:
        if self.ledger is None:
            return EMPTY_DIGEST
        return f"{DIGEST_PREFIX}:{self.ledger}:{self.position}:{self.rolling}"


class Integrity:
    """verify and digest."""

    def __init__(self, store: Store):
        self.store = store

    def _scan(self, stop: int | None = None, progress: Callable[[int], None] | None = None,
              roll: bool = False) -> Scan:
        """Check every event of the log, and its leaf against the stored tree's; with `roll` or
        a `stop`, the rolling digest (an lld1 digest's) too, noted at position `stop`."""
        scan = Scan()
        scan.has_tree = bool(self.store.tree.size())
        roll = roll or stop is not None
        for rows in log_batches(self.store, limit=BATCH):
            after = scan.last
            hashes, leaves = scan.check(rows)
            if roll:
                scan.roll(rows, hashes, stop)
            self._tree(scan, after, rows, leaves)
            if progress:
                progress(len(rows))
        return scan

    def opened(self, read: Callable[[], Any]) -> Any:
        """`read()` on the store; a store that is there but cannot be read as a ledger (a
        truncated or corrupted file) is an integrity violation (exit 6), not unavailable."""
        try:
            self.store.ensure_ready()
            return read()
        except (StoreUnavailable, failures.PersistenceError) as e:
            if not self.store.damaged():
                raise
            problem = english(NOT_INTACT, reason=getattr(e, "message", e))
            raise IntegrityViolation(_message(None, problem), ok=False, events_checked=0, first_bad_position=None,
                                     problem=problem) from None

    def _tree(self, scan: Scan, after: int, rows: list[tuple], leaves: list[bytes]) -> None:
        """Compare the leaf of each event of a batch (positions after `after`) with the stored
        tree's."""
        first, end = scan.leaves, rows[-1][0]
        scan.leaves = end
        if not scan.has_tree or scan.tree_bad is not None:
            return
        stored = self.store.tree.leaves(first, end) or {}
        if len(stored) == len(leaves) == end - first and list(stored.values()) == leaves:
            return  # the common case, checked at once: every leaf stored, each the event's
        positioned = positioned_leaves(after, end, zip((r[0] for r in rows), leaves))
        for index, leaf in enumerate(positioned, first):
            if stored.get(index, leaf) != leaf:
                scan.tree_bad = index + 1
                return

    def verify(self, digest: str | None = None, progress: Callable[[int], None] | None = None) -> dict[str, Any]:
        """Recompute every chain (with an lld1 digest, prove the log extends it), or check that
        the log extends a tree head by the stored tree's proofs (module docstring).

        Returns `{"ok": True, "events_checked": N, "first_bad_position": None, "problem": None}`
        (plus `digest_position`); raises IntegrityViolation carrying the same object, not ok,
        when anything is wrong (see the module docstring), InvalidInput for a malformed digest.
        """
        if digest is not None and is_tree_head(digest):
            head = checkpoint.parse_digest(digest)
            checked, bad, problem = self.opened(lambda: self._compare_head(head, progress))
            result: dict[str, Any] = {"ok": True, "events_checked": checked, "first_bad_position": bad,
                                      "problem": problem, "digest_position": head.size}
        else:
            result = self._verify_chains(parse_digest(digest) if digest is not None else None, progress)
        if result["problem"] is not None:
            result["ok"] = False
            where = result["first_bad_position"]
            raise IntegrityViolation(_message(where, result["problem"]), **result)
        return result

    def _verify_chains(self, wanted: Digest | None, progress: Callable[[int], None] | None) -> dict[str, Any]:
        """Every chain, every event's leaf against the stored tree's, and an lld1 digest."""
        stop = wanted.position if wanted else None
        scan = self.opened(lambda: self._scan(stop=stop, progress=progress))
        if scan.bad is None and scan.tree_bad is not None and scan.tree_bad <= scan.last:
            scan.blame(scan.tree_bad, english(TREE_DIFFERS, position=scan.tree_bad))
        ends = self.store.tree.ends() if scan.bad is None and scan.has_tree else None
        if ends is not None and ends[1] > ends[0]:  # the chains cannot tell a cut tail
            scan.blame(ends[0] + 1, english(TREE_BEYOND, last=ends[0], size=ends[1]))
        result: dict[str, Any] = {"ok": True, "events_checked": scan.checked,
                                  "first_bad_position": scan.bad, "problem": scan.problem}
        if wanted is not None:
            result["digest_position"] = stop
            if scan.bad is None:
                bad, problem = _compare(wanted, scan)
                if problem:
                    result.update(first_bad_position=bad, problem=problem)
        return result

    def digest(self) -> dict[str, Any]:
        """The digest of the whole log as it is now; refused (exit 6) if a chain is broken."""
        self.store.ensure_ready()
        scan = self._scan(roll=True)
        if scan.bad is not None:
            raise IntegrityViolation(_message(scan.bad, scan.problem), ok=False,
                                     events_checked=scan.checked, first_bad_position=scan.bad,
                                     problem=scan.problem)
        digest = Digest(None, 0, "") if scan.ledger is None else Digest(scan.ledger, scan.last, scan.rolling.hex())
        return {"digest": str(digest), "position": scan.last, "events": scan.checked}

    def _compare_head(self, head: checkpoint.TreeHead,
                      progress: Callable[[int], None] | None) -> tuple[int, int | None, str | None]:
        """(events checked, first bad position, problem) of the log against a tree head: the
        stored tree's proofs, then the events' recorded hashes under it (module docstring)."""
        if head.size == 0:
            return 0, None, None
        last, origin = self.store.max_position(), self._origin()
        if last < head.size:  # another ledger's longer log, or this one's cut
            if last and origin not in (None, head.origin):  # (an empty log has no origin of its own)
                return 0, None, english(OTHER_LEDGER, digest=head.origin, ledger=origin)
            return 0, last + 1, english(ENDS_BEFORE, last=last, position=head.size, after=last)
        tree = self.store.tree
        size = tree.caught_up(last)
        stored = _root(head.size, tree.nodes) if size >= head.size else None
        if origin not in (None, head.origin) and stored != head.root:
            return 0, None, english(OTHER_LEDGER, digest=head.origin, ledger=origin)
        if stored == head.root and not _consistent(head, min(size, last), tree.nodes):
            return 0, None, english(NO_PROOF)
        events = _Events(tree, head.size, progress)
        if stored == head.root and events.root != head.root:  # the stored tree vouches for the head
            bad = merkle.first_difference(head.size, tree.nodes, events.hash)
        elif stored not in (None, head.root) and events.root == head.root:  # the events do
            bad = merkle.first_difference(head.size, events.get, lambda key: tree.nodes([key]).get(key))
            if bad is None:
                return head.size, None, english(NO_PROOF)
            return head.size, bad + 1, english(TREE_DIFFERS, position=bad + 1)
        elif events.root == head.root:
            return head.size, None, None
        else:
            bad = None  # neither: a root alone cannot say where
        return head.size, None if bad is None else bad + 1, english(NOT_TAKEN, position=head.size)

    def _origin(self) -> str | None:
        """The log's origin, from its first event's recorded hash (None if it does not decode)."""
        first = self.store.read_log_raw(after=0, limit=1)
        try:
            return checkpoint.origin_of(codec.decode_raw(first[0][4]).hash if first else None)
        except msgspec.DecodeError:
            return None


class _Events:
    """The tree of the log's first `size` events as they are now (`StoredTree.recomputed`):
    its top subtrees from one pass, any other subtree recomputed from its events when asked."""

    def __init__(self, tree: StoredTree, size: int, progress: Callable[[int], None] | None) -> None:
        self.tree = tree
        frontier = tree.recomputed(0, size, progress)
        self.root = frontier.root()
        self.known = frontier.subtrees()

    def hash(self, key: merkle.Key) -> bytes:
        if key not in self.known:
            level, index = key
            self.known[key] = self.tree.recomputed(index << level, (index + 1) << level).root()
        return self.known[key]

    def get(self, keys: Collection[merkle.Key]) -> dict[merkle.Key, bytes]:
        return {key: self.hash(key) for key in keys}


def _root(size: int, get: merkle.Get) -> bytes | None:
    """The stored tree's root at `size`; None when it lacks a subtree it needs."""
    try:
        return merkle.root(size, get)
    except merkle.MissingNode:
        return None


def _consistent(head: checkpoint.TreeHead, size: int, get: merkle.Get) -> bool:
    """Whether the stored tree's consistency proof from the head to its root at `size` holds."""
    try:
        proof = merkle.consistency_proof(head.size, size, get)
        return merkle.verify_consistency(head.size, size, head.root, merkle.root(size, get), proof)
    except merkle.MissingNode:
        return False


def is_tree_head(digest: str) -> bool:
    """Whether a digest is a tree head (`llh1:`, or a checkpoint note) rather than an old `lld1:`."""
    text = (digest or "").strip()
    return text.startswith(checkpoint.PREFIX) or "\n" in text


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
        raise InvalidInput(_("malformed digest {digest}: expected one as `leadledger digest` prints it ({head}…), "
                             "or an older {prefix}:LEDGER:POSITION:HASH (16 and 64 hex digits, a position from 1)",
                             digest=repr(text[:80]), head=checkpoint.PREFIX, prefix=DIGEST_PREFIX),
                           digest=text)
    ledger, position, rolling = found.groups()
    return Digest(ledger, int(position), rolling)
