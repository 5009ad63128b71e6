"""The whole log as one Merkle tree, as in Certificate Transparency (RFC 9162, section 2.1).

Leaf i is SHA-256(0x00 || the 32 bytes of the hash of the event at position i + 1); an interior
node is SHA-256(0x01 || left || right); the tree over n leaves is RFC 9162's MTH.

Storage. A *perfect* subtree (2**level leaves, starting at a multiple of 2**level) never changes
once its last leaf is in, so its hash is stored once, keyed `(level, index)`: the subtree over
leaves [index * 2**level, (index + 1) * 2**level). Appending leaf i writes (0, i) and one row per
level it completes (as many as i has trailing one-bits): two rows per leaf on average, at most
log2(n) + 1. Appends only ever read the *frontier*: the perfect subtrees that [0, size) splits
into, one per one-bit of size, the largest first.

Every range the RFC's recursions (MTH, PATH, SUBPROOF) meet starts at a multiple of a power of
two at least its length, so its hash is the fold of at most log2(n) stored perfect subtrees. A
tree head, an inclusion proof and a consistency proof each read O(log n) stored rows, all named
before any is read, so a store answers each with one query: every function here takes a `get`
that maps a collection of keys to their hashes, and calls it once.

The first position that differs. A tree head's root vouches for the perfect subtrees it folds
from, and they for their children: when the stored tree's top subtrees fold into an old head's
root, the stored subtree hashes (written as each event was appended) are the head's, and the
ones recomputed from the events as they are now can be compared with them. `first_difference`
walks down from the first top-level subtree whose two hashes differ into the leftmost child that
differs, trusting a stored child only when it hashes, with its sibling, into its trusted parent,
and lands on the first leaf that differs in log2(n) steps (each reads two stored children and
recomputes one). Where the stored children no longer hash into their parent (the tree's rows
were rewritten there too) nothing below it is trusted, and no position is named.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence

from ledger.chain import sha256

Key = tuple[int, int]  # (level, index) of a perfect subtree
Row = tuple[int, int, bytes]  # (level, index, hash): a stored perfect subtree
Get = Callable[[Collection[Key]], Mapping[Key, bytes]]

HASH_SIZE = 32
EMPTY_ROOT = sha256(b"").digest()  # MTH({}) of RFC 9162


class MissingNode(LookupError):
    """A stored subtree the tree needs is not there."""


def leaf_hash(event_hash: bytes) -> bytes:
    return sha256(b"\x00" + event_hash).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def _subtrees(start: int, end: int) -> list[Key]:
    """The perfect subtrees an aligned range [start, end) splits into, left to right."""
    keys = []
    while start < end:
        level = (end - start).bit_length() - 1
        keys.append((level, start >> level))
        start += 1 << level
    return keys


def _fetch(get: Get, ranges: Iterable[tuple[int, int]]) -> list[bytes]:
    """The hash of each aligned range, from one call of `get`."""
    ranges = list(ranges)
    keys = {key for start, end in ranges for key in _subtrees(start, end)}
    found = get(keys) if keys else {}
    missing = keys - found.keys()
    if missing:
        raise MissingNode(f"the tree lacks stored subtree(s) {sorted(missing)[:3]}")
    return [_fold([found[k] for k in _subtrees(start, end)]) for start, end in ranges]


def _fold(hashes: Sequence[bytes]) -> bytes:
    """MTH of a range from its perfect subtrees: node(P1, node(P2, ... Pk))."""
    result = hashes[-1]
    for h in reversed(hashes[:-1]):
        result = node_hash(h, result)
    return result


# --- writing ------------------------------------------------------------------------------

def frontier_keys(size: int, count: int = 1) -> list[Key]:
    """The stored subtrees an append of `count` leaves to a tree of `size` leaves reads: those
    of the frontier that the new leaves complete a parent of."""
    return [(level, index) for level, index in _subtrees(0, size) if (index + 2) << level <= size + count]


def nodes_for_append(size: int, leaves: Sequence[bytes], get: Get) -> list[Row]:
    """The rows to store when `leaves` are appended to a tree of `size` leaves: each leaf, and
    every perfect subtree they complete. Reads at most log2(size) stored rows, in one call."""
    keys = frontier_keys(size, len(leaves))
    return appended(size, leaves, get(keys) if keys else {})[0]


def appended(size: int, leaves: Sequence[bytes], known: Mapping[Key, bytes]) -> tuple[list[Row], dict[Key, bytes]]:
    """`nodes_for_append` from the stored subtrees at hand (`known`: at least those of the
    frontier the new leaves complete a parent of), and the frontier after it (as much of it as
    is known): what an append that keeps the frontier needs.

    Level by level, so the rows come in their key's order: a B-tree then takes each level's
    run at one place, where a leaf followed by the subtrees it completes moves the insert
    point between levels at every row (a quarter of SQLite's insert time). At level k the new
    subtrees are those from index size >> k to (size + count) >> k, paired left to right, the
    first with the stored one before it when its index is odd."""
    end = size + len(leaves)
    rows: list[Row] = []
    frontier: dict[Key, bytes] = {}
    level, hashes = 0, list(leaves)
    while hashes:
        first = size >> level
        rows.extend([(level, index, h) for index, h in enumerate(hashes, first)])
        if first & 1:
            left = known.get((level, first - 1))
            if left is None:
                raise MissingNode(f"the tree of {size} leaves lacks part of its frontier")
            hashes.insert(0, left)
        if (end >> level) & 1:
            frontier[(level, (end >> level) - 1)] = hashes[-1]
        hashes = [sha256(b"\x01" + a + b).digest() for a, b in zip(hashes[::2], hashes[1::2])]
        level += 1
    for high in range(level, size.bit_length()):  # the stored subtrees the new leaves leave alone
        key = (high, (size >> high) - 1)
        if size >> high & 1 and key in known:
            frontier[key] = known[key]
    return rows, frontier


def _push(stack: list[Row], index: int, leaf: bytes, rows: list[Row], level: int = 0) -> None:
    """Add the perfect subtree (level, index) on top of a frontier (smallest subtree last),
    merging equal neighbours."""
    stack.append((level, index, leaf))
    rows.append(stack[-1])
    while len(stack) > 1 and stack[-1][0] == stack[-2][0]:
        (level, index, right), (_, _, left) = stack.pop(), stack.pop()
        stack.append((level + 1, index >> 1, node_hash(left, right)))
        rows.append(stack[-1])


def perfect_root(leaves: Sequence[bytes]) -> bytes:
    """MTH of 2**k leaves, level by level."""
    hashes = list(leaves)
    while len(hashes) > 1:
        hashes = [sha256(b"\x01" + a + b).digest() for a, b in zip(hashes[::2], hashes[1::2], strict=True)]
    return hashes[0]


class Frontier:
    """A tree built leaf by leaf in memory with O(log n) hashes: for recomputing the tree from
    the events as they are now (verify), and for tests."""

    def __init__(self) -> None:
        self.size = 0
        self._stack: list[Row] = []

    def append(self, leaf: bytes) -> list[Row]:
        """Add a leaf; return the rows it completes (as `nodes_for_append` would)."""
        rows: list[Row] = []
        _push(self._stack, self.size, leaf, rows)
        self.size += 1
        return rows

    def extend(self, leaves: Sequence[bytes]) -> None:
        """Add many leaves, each aligned run of 2**k folded at once (faster than one by one)."""
        done = 0
        while done < len(leaves):
            run = 1 << (len(leaves) - done).bit_length() - 1  # the largest power of two left...
            if self.size:
                run = min(run, self.size & -self.size)  # ...that starts at a multiple of itself
            level = run.bit_length() - 1
            _push(self._stack, self.size >> level, perfect_root(leaves[done:done + run]), [], level)
            self.size += run
            done += run

    def root(self) -> bytes:
        return _fold([h for _, _, h in self._stack]) if self._stack else EMPTY_ROOT

    def subtrees(self) -> dict[Key, bytes]:
        """The perfect subtrees the leaves so far split into (`root_keys(size)`), by key."""
        return {(level, index): h for level, index, h in self._stack}


# --- reading ------------------------------------------------------------------------------

def root_keys(size: int) -> list[Key]:
    return _subtrees(0, size)


def root(size: int, get: Get) -> bytes:
    """MTH of the first `size` leaves (the tree head at `size`)."""
    if size == 0:
        return EMPTY_ROOT
    return _fetch(get, [(0, size)])[0]


def _path_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """RFC 9162 PATH(index, D[0:size]) as ranges, the leaf's sibling first."""
    ranges = []
    start, end = 0, size
    while end - start > 1:
        k = _split(end - start)
        if index < start + k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start += k
    return ranges[::-1]


def inclusion_proof(index: int, size: int, get: Get) -> list[bytes]:
    """The audit path of leaf `index` in the tree of `size` leaves (RFC 9162 2.1.3.1)."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of {size} leaves")
    return _fetch(get, _path_ranges(index, size))


def _consistency_ranges(m: int, n: int) -> list[tuple[int, int]]:
    """RFC 9162 SUBPROOF(m, D[0:n], true) as ranges, deepest first."""
    ranges = []
    start, end, whole = 0, n, True
    while m != end:
        k = _split(end - start)
        if m - start <= k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start += k
            whole = False
    if not whole:
        ranges.append((start, end))
    return ranges[::-1]


def consistency_proof(m: int, n: int, get: Get) -> list[bytes]:
    """The proof that the tree of `n` leaves extends the tree of `m` (RFC 9162 2.1.4.1); empty
    when m is 0 or n."""
    if not 0 <= m <= n:
        raise ValueError(f"no consistency proof from {m} to {n} leaves")
    if m == 0:
        return []
    return _fetch(get, _consistency_ranges(m, n))


def first_difference(size: int, trusted: Get, other: Callable[[Key], bytes | None]) -> int | None:
    """The first leaf at which a tree of `size` leaves, given one subtree at a time by `other`,
    differs from the tree `trusted` holds, whose top subtrees (`root_keys(size)`) the caller
    knows to be good (they fold into a tree head's root); None when they agree, or when no
    single leaf can be named (see the module docstring)."""
    tops = _subtrees(0, size)
    known = trusted(tops)
    key = next((k for k in tops if other(k) != known.get(k)), None)
    good = known.get(key) if key else None
    while key is not None and good is not None and key[0] > 0:
        left, right = (key[0] - 1, 2 * key[1]), (key[0] - 1, 2 * key[1] + 1)
        found = trusted([left, right])
        mine, theirs, then = found.get(left), found.get(right), other(left)
        if mine is not None and theirs is not None and node_hash(mine, theirs) == good:
            key, good = (left, mine) if then != mine else (right, theirs)
        elif then is not None and theirs is not None and node_hash(then, theirs) == good:
            key, good = right, theirs  # the left child is as it was; the right one is the trusted one
        else:
            return None  # the trusted side was altered below its good hash too
    if key is None or good is None or other(key) == good:
        return None  # agreeing children under differing parents: the parents alone were altered
    return key[1]


# --- verifying (RFC 9162 2.1.3.2 and 2.1.4.2, step by step) ---------------------------------

def verify_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes], root_hash: bytes) -> bool:
    """Whether `proof` shows `leaf` is leaf `index` of the tree of `size` leaves with `root_hash`."""
    if not 0 <= index < size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False  # a proof longer than the path
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root_hash


def verify_consistency(m: int, n: int, root_m: bytes, root_n: bytes, proof: Sequence[bytes]) -> bool:
    """Whether `proof` shows the tree of `n` leaves with `root_n` extends the one of `m` leaves
    with `root_m`. Equal sizes need an empty proof and equal roots; every tree extends the empty one."""
    if not 0 <= m <= n:
        return False
    if m == 0:
        return not proof and root_m == EMPTY_ROOT
    if m == n:
        return not proof and root_m == root_n
    if not proof:
        return False
    path = list(proof)
    if m & (m - 1) == 0:  # m is a power of two: the old root is itself a node of the path
        path.insert(0, root_m)
    fn, sn = m - 1, n - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return fr == root_m and sr == root_n and sn == 0
