"""The Merkle tree against RFC 9162's own recursive definitions (MTH, PATH, PROOF/SUBPROOF), the
stored-subtree scheme it is computed from, the RFC's verification algorithms, and forgeries."""

from __future__ import annotations

import hashlib
from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import merkle

MAX = 300
EVENT_HASHES = [hashlib.sha256(f"event {i}".encode()).digest() for i in range(MAX)]


# --- the reference: RFC 9162 section 2.1, written as the RFC writes it, over D[a:b] --------

def _k(n: int) -> int:
    """The largest power of two smaller than n."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


@cache
def mth(a: int, b: int) -> bytes:
    n = b - a
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashlib.sha256(b"\x00" + EVENT_HASHES[a]).digest()
    k = _k(n)
    return hashlib.sha256(b"\x01" + mth(a, a + k) + mth(a + k, b)).digest()


def path(m: int, a: int, b: int) -> list[bytes]:
    n = b - a
    if n == 1:
        return []
    k = _k(n)
    if m < k:
        return path(m, a, a + k) + [mth(a + k, b)]
    return path(m - k, a + k, b) + [mth(a, a + k)]


def subproof(m: int, a: int, b: int, complete: bool) -> list[bytes]:
    n = b - a
    if m == n:
        return [] if complete else [mth(a, b)]
    k = _k(n)
    if m <= k:
        return subproof(m, a, a + k, complete) + [mth(a + k, b)]
    return subproof(m - k, a + k, b, False) + [mth(a, a + k)]


def proof(m: int, n: int) -> list[bytes]:
    return subproof(m, 0, n, True)


# --- the tree under test: stored subtrees, written one append at a time ---------------------

class Counting:
    """A node table in memory that counts how it is read."""

    def __init__(self) -> None:
        self.nodes: dict[merkle.Key, bytes] = {}
        self.calls = 0
        self.keys = 0

    def get(self, keys):
        self.calls += 1
        self.keys += len(keys)
        return {k: self.nodes[k] for k in keys if k in self.nodes}

    def append(self, leaves: list[bytes]) -> list[merkle.Row]:
        size = len([k for k in self.nodes if k[0] == 0])
        rows = merkle.nodes_for_append(size, leaves, self.get)
        for level, index, h in rows:
            assert (level, index) not in self.nodes  # a stored subtree is written once
            self.nodes[(level, index)] = h
        return rows


def leaf(i: int) -> bytes:
    return merkle.leaf_hash(EVENT_HASHES[i])


@pytest.fixture(scope="module")
def table() -> Counting:
    t = Counting()
    for i in range(MAX):
        t.append([leaf(i)])
    return t


def log2(n: int) -> int:
    return max(n - 1, 1).bit_length()


sizes = st.integers(1, MAX)


@st.composite
def size_and_index(draw):
    n = draw(sizes)
    return n, draw(st.integers(0, n - 1))


@st.composite
def two_sizes(draw):
    n = draw(sizes)
    return draw(st.integers(1, n)), n


# --- heads and proofs equal the RFC's -------------------------------------------------------

@given(n=st.integers(0, MAX))
def test_root_is_mth(table, n):
    table.calls = 0
    assert merkle.root(n, table.get) == mth(0, n)
    assert table.calls <= 1


@given(size_and_index())
def test_inclusion_proof_is_rfc_path(table, case):
    n, i = case
    table.calls = table.keys = 0
    got = merkle.inclusion_proof(i, n, table.get)
    assert got == path(i, 0, n)
    assert table.calls == (1 if n > 1 else 0) and table.keys <= 2 * log2(n)  # O(log n), one query
    assert merkle.verify_inclusion(i, n, leaf(i), got, mth(0, n))


@given(two_sizes())
def test_consistency_proof_is_rfc_proof(table, case):
    m, n = case
    table.calls = table.keys = 0
    got = merkle.consistency_proof(m, n, table.get)
    assert got == proof(m, n)
    assert table.calls <= 1 and table.keys <= 2 * log2(n) + 1
    assert merkle.verify_consistency(m, n, mth(0, m), mth(0, n), got)


def test_every_size_and_pair_up_to_64(table):
    for n in range(1, 65):
        for i in range(n):
            assert merkle.inclusion_proof(i, n, table.get) == path(i, 0, n)
        for m in range(1, n + 1):
            assert merkle.consistency_proof(m, n, table.get) == proof(m, n)


def test_empty_and_edge_sizes(table):
    assert merkle.root(0, table.get) == merkle.EMPTY_ROOT == hashlib.sha256(b"").digest()
    assert merkle.consistency_proof(0, 5, table.get) == []
    assert merkle.verify_consistency(0, 5, merkle.EMPTY_ROOT, mth(0, 5), [])
    assert merkle.verify_consistency(7, 7, mth(0, 7), mth(0, 7), [])
    assert not merkle.verify_consistency(7, 7, mth(0, 7), mth(0, 7), [mth(0, 7)])
    assert not merkle.verify_consistency(7, 7, mth(0, 6), mth(0, 7), [])
    assert merkle.inclusion_proof(0, 1, table.get) == []
    assert merkle.verify_inclusion(0, 1, leaf(0), [], mth(0, 1))
    with pytest.raises(ValueError):
        merkle.inclusion_proof(5, 5, table.get)
    with pytest.raises(ValueError):
        merkle.consistency_proof(6, 5, table.get)


# --- the storage scheme -------------------------------------------------------------------

def test_stored_subtrees_are_the_perfect_ones(table):
    for (level, index), h in table.nodes.items():
        assert h == mth(index << level, (index + 1) << level)
    perfect = sum(MAX >> level for level in range(MAX.bit_length()))
    assert len(table.nodes) == perfect


def test_one_append_writes_the_subtrees_it_completes():
    t = Counting()
    for i in range(MAX):
        t.calls = t.keys = 0
        rows = t.append([leaf(i)])
        trailing_ones = (i ^ (i + 1)).bit_length() - 1
        assert len(rows) == 1 + trailing_ones <= log2(i + 1) + 1
        assert t.calls <= 1 and t.keys == trailing_ones  # it reads only what it merges with


@settings(max_examples=50)
@given(st.lists(st.integers(1, 40), min_size=1, max_size=20))
def test_batches_write_what_single_appends_write(table, batches):
    t = Counting()
    done = 0
    for count in batches:
        count = min(count, MAX - done)
        t.calls = 0
        t.append([leaf(i) for i in range(done, done + count)])
        assert t.calls <= 1
        done += count
    assert t.nodes == {k: v for k, v in table.nodes.items() if (k[1] + 1) << k[0] <= done}


@settings(max_examples=50)
@given(st.lists(st.integers(1, 40), min_size=1, max_size=20))
def test_appends_that_keep_only_the_frontier_write_what_the_table_holds(table, batches):
    """Each append from the frontier the one before it left (as a store's appends go, no
    reads), and the frontier it leaves is the tree's, whatever else is known."""
    size, frontier, written = 0, {}, {}
    for count in batches:
        count = min(count, MAX - size)
        known = {**frontier, **dict(list(written.items())[-3:])}  # more than the frontier: ignored
        rows, frontier = merkle.appended(size, [leaf(i) for i in range(size, size + count)], known)
        written.update(((level, index), h) for level, index, h in rows)
        size += count
        assert frontier == {k: table.nodes[k] for k in merkle.root_keys(size)}
    assert written == {k: v for k, v in table.nodes.items() if (k[1] + 1) << k[0] <= size}


def test_frontier_recomputes_the_tree():
    frontier = merkle.Frontier()
    for i in range(70):
        rows = frontier.append(leaf(i))
        assert frontier.root() == mth(0, i + 1)
        assert all(h == mth(x << lv, (x + 1) << lv) for lv, x, h in rows)


def test_a_missing_subtree_is_named(table):
    partial = {k: v for k, v in table.nodes.items() if k != (4, 0)}
    get = lambda keys: {k: partial[k] for k in keys if k in partial}  # noqa: E731
    with pytest.raises(merkle.MissingNode):
        merkle.root(20, get)
    with pytest.raises(merkle.MissingNode):
        merkle.inclusion_proof(19, 20, get)
    with pytest.raises(merkle.MissingNode):
        merkle.nodes_for_append(7, [leaf(7)], lambda keys: {})


# --- forgeries ----------------------------------------------------------------------------

def _flip(h: bytes, bit: int) -> bytes:
    return bytes([h[0] ^ (1 << bit)]) + h[1:]


@given(size_and_index(), st.data())
def test_forged_inclusion_proofs_fail(table, case, data):
    n, i = case
    good = path(i, 0, n)
    head = mth(0, n)
    if good:
        at = data.draw(st.integers(0, len(good) - 1))
        changed = [*good[:at], _flip(good[at], data.draw(st.integers(0, 7))), *good[at + 1:]]
        assert not merkle.verify_inclusion(i, n, leaf(i), changed, head)  # a changed node
        assert not merkle.verify_inclusion(i, n, leaf(i), good[:-1], head)  # truncated
        k = _k(n)
        part = mth(0, k) if i < k else mth(k, n)  # where the truncated path does lead
        assert merkle.verify_inclusion(i - (0 if i < k else k), n - k if i >= k else k, leaf(i), good[:-1], part)
        assert not merkle.verify_inclusion(i, n, leaf(i), good[:-1], part)
        other = data.draw(st.integers(0, n - 1).filter(lambda j: j != i))
        assert not merkle.verify_inclusion(other, n, leaf(i), good, head)  # another position
        assert not merkle.verify_inclusion(other, n, leaf(other), good, head)
    assert not merkle.verify_inclusion(i, n, leaf(i), [*good, mth(0, 1)], head)  # oversized
    assert not merkle.verify_inclusion(i, n, leaf((i + 1) % MAX), good, head)  # another leaf
    assert not merkle.verify_inclusion(i, n, leaf(i), good, _flip(head, 0))  # another root
    assert not merkle.verify_inclusion(i, 0, leaf(i), good, merkle.EMPTY_ROOT)  # tree size 0
    assert not merkle.verify_inclusion(n, n, leaf(i), good, head)  # past the end


@given(two_sizes(), st.data())
def test_forged_consistency_proofs_fail(table, case, data):
    m, n = case
    good = proof(m, n)
    old, new = mth(0, m), mth(0, n)
    if m == n:
        assert not merkle.verify_consistency(m, n, old, new, [old])
        return
    at = data.draw(st.integers(0, len(good) - 1))
    changed = [*good[:at], _flip(good[at], data.draw(st.integers(0, 7))), *good[at + 1:]]
    assert not merkle.verify_consistency(m, n, old, new, changed)
    assert not merkle.verify_consistency(m, n, old, new, good[:-1])  # truncated
    k = _k(n)
    if m < k:  # truncated, it proves the left subtree extends the old head: not the whole tree
        assert merkle.verify_consistency(m, k, old, mth(0, k), good[:-1])
        assert not merkle.verify_consistency(m, n, old, mth(0, k), good[:-1])
    assert not merkle.verify_consistency(m, n, old, new, [*good, old])  # oversized
    assert not merkle.verify_consistency(m, n, _flip(old, 1), new, good)  # another old head
    assert not merkle.verify_consistency(m, n, old, _flip(new, 1), good)  # another new head
    assert not merkle.verify_consistency(n, m, new, old, good)  # backwards
    assert not merkle.verify_consistency(m, n, old, new, [])


def test_a_rewritten_log_is_not_consistent_with_its_old_head(table):
    for m, n, j in [(5, 9, 2), (8, 8, 7), (8, 20, 0), (13, 100, 12), (64, 65, 63)]:
        rewritten = Counting()
        for i in range(n):
            rewritten.append([leaf(i) if i != j else _flip(leaf(i), 3)])
        forged = merkle.consistency_proof(m, n, rewritten.get)
        assert not merkle.verify_consistency(m, n, mth(0, m), merkle.root(n, rewritten.get), forged)


# --- growth, and where a log parts from an old head ----------------------------------------

@settings(max_examples=30)
@given(st.lists(st.integers(1, 25), min_size=2, max_size=12))
def test_every_old_head_stays_consistent_as_the_log_grows(batches):
    t = Counting()
    heads = []
    for count in batches:
        size = len([k for k in t.nodes if k[0] == 0])
        t.append([leaf(i) for i in range(size, min(size + count, MAX))])
        size = len([k for k in t.nodes if k[0] == 0])
        heads.append((size, merkle.root(size, t.get)))
    for a, (m, old) in enumerate(heads):
        for n, new in heads[a:]:
            assert merkle.verify_consistency(m, n, old, new, merkle.consistency_proof(m, n, t.get))


def _one(get):
    """A `first_difference` side that gives one subtree at a time."""
    return lambda key: get([key]).get(key)


@given(sizes, st.data())
def test_first_difference_names_the_first_changed_leaf(table, n, data):
    changed = sorted(set(data.draw(st.lists(st.integers(0, n - 1), max_size=3))))
    other = Counting()
    for i in range(n):
        other.append([_flip(leaf(i), 5) if i in changed else leaf(i)])
    table.calls = 0
    found = merkle.first_difference(n, table.get, _one(other.get))
    assert found == (changed[0] if changed else None)
    assert table.calls <= n.bit_length() + 1  # one read of the top subtrees, two children a level
    assert merkle.first_difference(n, other.get, _one(table.get)) == found  # either side may be trusted


@given(sizes, st.data())
def test_first_difference_recomputes_a_tree_by_extending_a_frontier(table, n, data):
    """Recomputed subtrees (`Frontier.extend`, runs of any length) are those the RFC defines."""
    runs = data.draw(st.lists(st.integers(1, 70), min_size=1, max_size=8))
    frontier, done = merkle.Frontier(), 0
    for run in runs:
        run = min(run, n - done)
        frontier.extend([leaf(i) for i in range(done, done + run)])
        done += run
    assert frontier.size == done and frontier.root() == mth(0, done)
    assert frontier.subtrees() == {k: table.nodes[k] for k in merkle.root_keys(done)}


def test_first_difference_names_nothing_below_a_trusted_node_whose_stored_children_were_rewritten(table):
    """Leaf 5 and its event rewritten alike: the stored leaf no longer hashes into its parent,
    and the leaf's sibling cannot tell which of the two changed."""
    other = Counting()
    for i in range(20):
        other.append([_flip(leaf(i), 5) if i == 5 else leaf(i)])
    altered = dict(table.nodes)
    altered[(0, 5)] = other.nodes[(0, 5)]
    get = lambda keys: {k: altered[k] for k in keys if k in altered}  # noqa: E731
    assert merkle.first_difference(20, get, _one(other.get)) is None
    assert merkle.first_difference(20, table.get, _one(other.get)) == 5


def test_first_difference_trusts_a_recomputed_left_child_that_hashes_into_the_parent(table):
    """The stored left leaf was altered (and nothing else stored); the event after it, rewritten:
    the recomputed left leaf with the stored right one makes the trusted parent, so the right
    leaf is the one that differs."""
    other = Counting()
    for i in range(20):
        other.append([_flip(leaf(i), 5) if i == 7 else leaf(i)])
    altered = dict(table.nodes)
    altered[(0, 6)] = _flip(altered[(0, 6)], 1)
    get = lambda keys: {k: altered[k] for k in keys if k in altered}  # noqa: E731
    assert merkle.first_difference(20, get, _one(other.get)) == 7


def test_first_difference_names_nothing_when_the_trees_agree(table):
    assert merkle.first_difference(17, table.get, _one(table.get)) is None
    assert merkle.first_difference(0, table.get, _one(table.get)) is None
