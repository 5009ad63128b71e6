"""Tree heads and receipts from the store's Merkle tree (spec section 8).

The tree a head or a receipt is read from is the stored one (`ledger/store/merkle.py`), once
it holds every event: O(log n) rows, one query each. A store written before the tree existed
gets it built here when it can be written (under the append lock); a read-only one (an
auditor's copy, a SELECT-only role) answers from a tree computed in memory from the events,
writing nothing. A stored tree longer than the log (a log cut behind its back) is not used
either: `verify` finds a log cut and grown again, `verify --digest` one cut before the digest.
"""

from __future__ import annotations

from typing import Any

from ledger import checkpoint, codec, merkle
from ledger.checkpoint import TreeHead
from ledger.disclosure import feed_rows
from ledger.errors import IntegrityViolation, InvalidInput
from ledger.i18n import _
from ledger.receipt_check import make_receipt
from ledger.store import Store, log_batches
from ledger.store.merkle import leaf_of, positioned_leaves
from ledger.store.records import stored

BATCH = 5000


class Heads:
    """digest and receipt."""

    def __init__(self, store: Store):
        self.store = store
        self._memory: tuple[int, dict[merkle.Key, bytes]] | None = None

    def tree(self) -> tuple[int, merkle.Get]:
        """(the log's size, a `get` over its tree)."""
        self.store.ensure_ready()
        top = self.store.max_position()
        if self.store.tree.caught_up(top) == top:
            return top, self.store.tree.nodes
        return top, self._in_memory(top)

    def _in_memory(self, top: int) -> merkle.Get:
        if self._memory is None or self._memory[0] != top:
            nodes: dict[merkle.Key, bytes] = {}
            frontier, last = merkle.Frontier(), 0
            for rows in log_batches(self.store, limit=BATCH):
                for leaf in positioned_leaves(last, rows[-1][0], ((r[0], leaf_of(r[4])) for r in rows)):
                    nodes.update(((level, idx), h) for level, idx, h in frontier.append(leaf))
                last = rows[-1][0]
            self._memory = (top, nodes)
        nodes = self._memory[1]
        return lambda keys: {k: nodes[k] for k in keys if k in nodes}

    def origin(self) -> str:
        first = self.store.read_log_raw(after=0, limit=1)
        return checkpoint.origin_of(codec.decode_raw(first[0][4]).hash if first else None)

    def head(self, upto: int | None = None, key_file: str | None = None) -> tuple[TreeHead, merkle.Get, bytes | None]:
        """The tree head at `upto` (the whole log when None), signed with the key in `key_file`."""
        key = checkpoint.load_signing_key(key_file) if key_file is not None else None  # "" is a bad name, not none
        size, get = self.tree()
        if upto is not None and upto > size:
            raise InvalidInput(_("invalid position {position}: the log has {size} events", position=upto, size=size),
                               position=upto)
        n = size if upto is None else upto
        head = checkpoint.head(self.origin(), n, merkle.root(n, get))
        public = None
        if key is not None:
            head, public = head.signed(key), checkpoint.public_key_of(key)
        return head, get, public

    def digest(self, upto: int | None = None, key_file: str | None = None) -> dict[str, Any]:
        head, _, public = self.head(upto, key_file)
        signature = head.signature_by(public) if public else None
        return {"digest": head.digest(), "position": head.size, "root": head.root.hex(),
                "signature": checkpoint.b64(signature) if signature else None,
                "public_key": checkpoint.b64(public) if public else None, "events": head.size}

    def receipt(self, position: int, digest: str | None = None, key_file: str | None = None) -> dict[str, Any]:
        """The receipt of the event at `position` in the log as it is now."""
        wanted = checkpoint.parse_digest(digest) if digest is not None else None
        head, get, public = self.head(None, key_file)
        if not 1 <= position <= head.size:
            raise InvalidInput(_("invalid position {position}: the log has {size} events", position=position,
                                 size=head.size), position=position)
        raw = self.store.read_log_raw(after=position - 1, limit=1)
        if not raw or raw[0][0] != position:
            raise InvalidInput(_("no event at position {position}", position=position), position=position)
        _position, stream, version, _hash, state = raw[0]
        # the change-feed object: personal fields shown (not bound), or null once erased
        [event] = feed_rows(self.store, [stored(position, stream, version, state)])
        consistency = None
        if wanted is not None:
            if wanted.size > head.size:
                raise InvalidInput(_("the digest's log ({size} events) is longer than this one ({here})",
                                     size=wanted.size, here=head.size), digest=digest)
            consistency = merkle.consistency_proof(wanted.size, head.size, get)
            _check_extends(wanted, head, consistency, digest)
        proof = merkle.inclusion_proof(position - 1, head.size, get)
        return make_receipt(event, stream, version, state, proof, head, public, consistency)


def _check_extends(wanted: TreeHead, head: TreeHead, proof: list[bytes], digest: str) -> None:
    """A receipt made `--digest D` proves the log extends D: one whose proof would not hold
    (D is of another log, or of this one before it was changed) is refused, not handed out."""
    if wanted.size == 0 or (wanted.origin == head.origin
                            and merkle.verify_consistency(wanted.size, head.size, wanted.root, head.root, proof)):
        return
    if wanted.origin != head.origin:
        problem = _("the digest is of another log ({origin}, this one is {here})", origin=wanted.origin,
                    here=head.origin)
    else:
        problem = _("this log's first {size} events are not the ones the digest was taken of: "
                    "`leadledger verify --digest D` says where they differ", size=wanted.size)
    raise IntegrityViolation(problem, ok=False, digest=digest, digest_position=wanted.size, problem=problem)
