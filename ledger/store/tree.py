"""The log's stored Merkle tree, as a store holds it (`store.tree`): its reads, its upgrade, and
the part of an append that writes it (ledger/merkle.py says what is stored, ledger/store/merkle.py
how). A backend gives it its SQL, its read transactions, and a transaction under the append lock.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from contextlib import AbstractContextManager
from typing import Any

from ledger import merkle
from ledger.errors import StoreUnavailable
from ledger.merkle import Key
import ledger.store.failures as failures
from ledger.store.merkle import MISSING_LEAF, TreeSql, leaf_of

Cursor = Callable[[], AbstractContextManager[Any]]
WINDOW = 4096  # positions read at once when recomputing: a power of two, so each folds whole


class StoredTree:
    """The stored subtree hashes of one store."""

    def __init__(self, sql: TreeSql, reading: Cursor, locked: Cursor) -> None:
        self.sql = sql
        self._reading = reading  # a read transaction
        self._locked = locked  # a write transaction under the append lock, the tree's table made

    # -- inside an append's transaction (its cursor) ---------------------------------------

    def create_sql(self) -> list[str]:
        return self.sql.create_sql()

    def append(self, cur: Any, first_position: int, leaves: Sequence[bytes],
               tail: tuple[int, dict[Key, bytes]] | None = None, *, tail_after: bool = False
               ) -> tuple[int, dict[Key, bytes]] | None:
        """`TreeSql.append`; with `tail_after`, the tree's size and tail after it."""
        return self.sql.append(cur, first_position, leaves, tail, tail_after=tail_after)

    # -- reads -------------------------------------------------------------------------------

    def nodes(self, keys: Collection[Key]) -> dict[Key, bytes]:
        """The stored subtrees of these keys (those there are), in one query: a `merkle.Get`."""
        with self._reading() as cur:
            return self.sql.get(cur, keys)

    def leaves(self, first: int, end: int) -> dict[int, bytes] | None:
        """The stored leaves first..end-1 by index; None when the store has no tree table."""
        try:
            with self._reading() as cur:
                return self.sql.leaves(cur, first, end)
        except failures.PersistenceError:
            return None

    def size(self) -> int | None:
        """How many leaves the stored tree has; None when the store has no tree table."""
        try:
            with self._reading() as cur:
                return self.sql.tail(cur)[0]
        except failures.PersistenceError:
            return None

    def ends(self) -> tuple[int, int] | None:
        """(the log's last position, the tree's size), read in one snapshot: an append writes
        both in one transaction, so a tree longer than the log is a log cut behind its back;
        None when the store has no tree table."""
        try:
            with self._reading() as cur:
                cur.execute(f"SELECT {self.sql.top_sql}, {self.sql.size_sql}")
                top, size = cur.fetchone()
                return top, size
        except failures.PersistenceError:
            return None

    def recomputed(self, start: int, end: int, progress: Callable[[int], None] | None = None) -> merkle.Frontier:
        """The tree of leaves start..end-1 as the events are now, from one snapshot: each leaf
        from the event's recorded hash (the start of its record, read alone, not its bytes
        rehashed), a missing position's leaf in its place. `start` is a multiple of a power of
        two at least end - start, or of WINDOW: the tree's subtrees are then the log's."""
        frontier = merkle.Frontier()
        with self._reading() as cur:
            at = start
            while at < end:
                upto = min(end, (at // WINDOW + 1) * WINDOW)
                rows = self.sql.recorded_leaves(cur, at, upto)
                leaves = [leaf for _, leaf in rows]
                if len(rows) != upto - at or None in leaves:  # a gap, or a record laid out otherwise
                    odd = [p for p, leaf in rows if leaf is None]
                    whole = dict(self.sql.states(cur, odd)) if odd else {}
                    found = {p: leaf if leaf is not None else leaf_of(whole[p]) for p, leaf in rows}
                    leaves = [found.get(p, MISSING_LEAF) for p in range(at + 1, upto + 1)]
                frontier.extend(leaves)
                if progress:
                    progress(len(rows))
                at = upto
        return frontier

    def caught_up(self, top: int) -> int:
        """The tree's size, once it holds the events up to position `top` if it lacked them
        (a store written before it) and the store can be written; else as it is."""
        size = self.size() or 0
        if size < top:
            try:
                size = self.upgrade()
            except (failures.PersistenceError, StoreUnavailable):
                pass  # a read-only store
        return size

    # -- writing -----------------------------------------------------------------------------

    def upgrade(self) -> int:
        """Build the tree of the events it lacks (a store written before it), under the append
        lock; the tree's size. Raises PersistenceError when the store cannot be written."""
        with self._locked() as cur:
            return self.sql.catch_up(cur)
