"""The log's Merkle tree as stored (see ledger/merkle.py): its table, and the SQL that keeps it.

One row per stored perfect subtree, `(level, idx, hash)`; about two per event. Rows are
written in the transaction that appends their events, under the same lock, after the events'
positions are known: leaf p - 1 is the event at position p. A position with no event (which
only tampering leaves: positions are gap-free) is the leaf of 32 zero bytes, so later
positions keep their leaves and `verify` reports the gap.

A store written before the tree existed gets it on its first append (or `StoredTree.upgrade`): the
events the tree lacks are streamed through `merkle.appended` in batches, in that transaction.
"""

from __future__ import annotations

import binascii
import hashlib
import struct
from collections.abc import Collection, Iterable, Iterator, Sequence
from typing import Any

import msgspec

from ledger import codec, merkle
from ledger.merkle import Key
from ledger.store.many import FEW, insert_many
from ledger.store.personal import COPY_SIGNATURE, COPY_TRAILER

MERKLE_TABLE = "leadledger_merkle"
LEVELS = 63  # 2**62 events is more than any log holds
BATCH = 5000
COPY_FROM = 1000  # rows from which PostgreSQL gets them by COPY
VALUES_UPTO = 16  # rows up to which PostgreSQL gets them as a VALUES list (an append's few)
HASH = merkle.HASH_SIZE  # bytes of every stored subtree's hash
MISSING_LEAF = merkle.leaf_hash(bytes(32))  # a position with no event
Tail = tuple[int, dict[Key, bytes]]  # the tree's size and its frontier (the perfect subtrees it is made of)
_ROW_HEAD = struct.Struct("!hihiqi").pack  # 3 fields: the level (2 bytes), the index (8), the hash's length
_HASH_OPEN, _HASH_END = b'{"hash":"', 73  # a record as the codec writes it: its hash, first


def leaf_of(state: bytes, digest: str | None = None) -> bytes:
    """The leaf of a stored event: SHA-256(0x00 || its chain hash), `digest` when the caller has
    read it from the record already; a record whose hash is not 64 hex digits (a damaged store)
    gets the leaf of its bytes' hash, so `verify` can go on."""
    try:
        return merkle.leaf_hash(bytes.fromhex(codec.decode_raw(state).hash if digest is None else digest))
    except (msgspec.DecodeError, ValueError, TypeError):  # damage: verify reports it by the chain check
        return merkle.leaf_hash(hashlib.sha256(state).digest())


class TreeSql:
    """The tree's SQL on one store: `param` its placeholder, `table` the tree table, `events`
    and `position` the events table and its position column, `blob` the hash column's type."""

    def __init__(self, param: str, table: str, events: str, position: str, blob: str) -> None:
        self.param, self.table, self.events, self.position, self.blob = param, table, events, position, blob
        self.size_sql = f"(SELECT COALESCE(MAX(idx), -1) + 1 FROM {table} WHERE level = 0)"  # the tree's size
        self.top_sql = f"(SELECT COALESCE(MAX({position}), 0) FROM {events})"  # the log's last position
        # The tree's size (a row at level -2) and its frontier: the perfect subtree of each bit
        # set in the size, found by its key, where reading the last subtree of every level
        # took 63 index scans (half a millisecond under the append lock).
        levels = ", ".join(f"({level})" for level in range(LEVELS))
        self._tail_with = (f"WITH s(size) AS (SELECT {self.size_sql}), "
                           f"l(level) AS (VALUES {levels}) ")
        self._tail_rows = (f"SELECT -2, size, CAST(NULL AS {blob}) FROM s UNION ALL "
                           f"SELECT t.level, t.idx, t.hash FROM s, l, {table} AS t WHERE ((s.size >> l.level) & 1) = 1 "
                           "AND t.level = l.level AND t.idx = (s.size >> l.level) - 1")
        self.tail_sql = self._tail_with + self._tail_rows

    def create_sql(self) -> list[str]:
        return [f"CREATE TABLE IF NOT EXISTS {self.table} (level SMALLINT NOT NULL, idx BIGINT NOT NULL, "
                f"hash {self.blob} NOT NULL, PRIMARY KEY (level, idx))"]

    def tail(self, cur: Any) -> tuple[int, dict[Key, bytes]]:
        """(the tree's size, its frontier)."""
        cur.execute(self.tail_sql)
        return _tail(cur.fetchall())

    def head(self, cur: Any) -> tuple[int, int, dict[Key, bytes]]:
        """(the log's last position, the tree's size, its tail) in one query, under the append lock."""
        cur.execute(f"{self._tail_with}SELECT -1, (SELECT MAX({self.position}) FROM {self.events}), "
                    f"CAST(NULL AS {self.blob}) UNION ALL {self._tail_rows}")
        rows = cur.fetchall()
        top = next((idx or 0 for level, idx, _ in rows if level == -1), 0)
        return top, *_tail(rows)  # (_tail reads the size row and the frontier, not the log's row)

    def get(self, cur: Any, keys: Collection[Key]) -> dict[Key, bytes]:
        """The stored hashes of these subtrees (those there are), in one query."""
        keys = list(keys)
        if not keys:
            return {}
        p = self.param
        where = " OR ".join(f"(level = {p} AND idx = {p})" for _ in keys)
        cur.execute(f"SELECT level, idx, hash FROM {self.table} WHERE {where}", [x for k in keys for x in k])
        return {(level, idx): bytes(h) for level, idx, h in cur.fetchall()}

    def leaves(self, cur: Any, first: int, end: int) -> dict[int, bytes]:
        """The stored leaves first..end-1 (by index, in its order)."""
        p = self.param
        cur.execute(f"SELECT idx, hash FROM {self.table} WHERE level = 0 AND idx >= {p} AND idx < {p} ORDER BY idx",
                    [first, end])
        return {idx: bytes(h) for idx, h in cur.fetchall()}

    def recorded_leaves(self, cur: Any, after: int, upto: int) -> list[tuple[int, bytes | None]]:
        """(position, leaf) of the events after..upto (a few thousand positions), in order, each
        leaf from the event's recorded hash alone (the start of its record, not the rest); None
        for a record not laid out as the codec writes it."""
        p = self.param
        cur.execute(f"SELECT {self.position}, substr(state, 1, {_HASH_END + 1}) FROM {self.events} "
                    f"WHERE {self.position} > {p} AND {self.position} <= {p} ORDER BY {self.position}",
                    [after, upto])
        return [(position, _recorded_leaf(bytes(start))) for position, start in cur.fetchall()]

    def states(self, cur: Any, positions: Sequence[int]) -> list[tuple[int, bytes]]:
        """(position, stored bytes) of these events."""
        marks = ", ".join([self.param] * len(positions))
        cur.execute(f"SELECT {self.position}, state FROM {self.events} WHERE {self.position} IN ({marks})",
                    list(positions))
        return [(position, bytes(state)) for position, state in cur.fetchall()]

    def insert(self, cur: Any, rows: Sequence[merkle.Row]) -> None:
        p = self.param
        cur.executemany(f"INSERT INTO {self.table} (level, idx, hash) VALUES ({p}, {p}, {p})", rows)

    def append(self, cur: Any, first_position: int, leaves: Sequence[bytes], tail: Tail | None = None, *,
               tail_after: bool = False) -> Tail | None:
        """Store the subtrees that the events from `first_position` on (with these leaves)
        complete (`planned`)."""
        rows, after = self.planned(cur, first_position, leaves, tail, tail_after=tail_after)
        self.insert(cur, rows)
        return after

    def planned(self, cur: Any, first_position: int, leaves: Sequence[bytes], tail: Tail | None = None, *,
                tail_after: bool = False) -> tuple[list[merkle.Row], Tail | None]:
        """The subtrees that the events from `first_position` on (with these leaves) complete,
        to store; those of any events before them the tree lacks (an upgraded store) are stored
        first, here. `tail` is the tree's, if already read under this lock. With `tail_after`,
        also the tree's size and frontier after them (what the next append would read)."""
        size, lasts = tail or self.tail(cur)
        if size > first_position - 1:
            # The log was cut behind the tree's back (tampering) and grows again: the tree
            # keeps the leaves it has, which `verify` then finds differ from the events.
            leaves = leaves[size - (first_position - 1):]
            if not leaves:
                return [], (size, lasts) if tail_after else None
        elif size < first_position - 1:
            size, lasts = self._catch_up(cur, size, lasts, first_position - 1)
        rows, frontier = merkle.appended(size, leaves, lasts)
        return rows, (size + len(leaves), frontier) if tail_after else None

    def catch_up(self, cur: Any) -> int:
        """Add the events the tree lacks (a store written before it); the tree's size."""
        size, lasts = self.tail(cur)
        cur.execute(f"SELECT MAX({self.position}) FROM {self.events}")
        top = cur.fetchone()[0] or 0
        return self._catch_up(cur, size, lasts, top)[0] if top > size else size

    def _catch_up(self, cur: Any, size: int, lasts: dict[Key, bytes], upto: int) -> tuple[int, dict[Key, bytes]]:
        p = self.param
        while size < upto:
            cur.execute(f"SELECT {self.position}, state FROM {self.events} WHERE {self.position} > {p} "
                        f"AND {self.position} <= {p} ORDER BY {self.position} LIMIT {p}",
                        [size, upto, BATCH])
            found = cur.fetchall()
            end = found[-1][0] if len(found) == BATCH else upto
            leaves = list(positioned_leaves(size, end, ((pos, leaf_of(bytes(s))) for pos, s in found)))
            rows, lasts = merkle.appended(size, leaves, lasts)
            self.insert(cur, rows)
            size = end
        return size, lasts


def _binary_rows(rows: Sequence[merkle.Row]) -> bytes:
    """Tree rows as COPY's binary format, one struct call a row (psycopg's `write_row`
    spends several times as much on each, under the GIL an import's reading thread wants)."""
    parts = [COPY_SIGNATURE]
    parts.extend(x for level, idx, h in rows for x in (_ROW_HEAD(3, 2, level, 8, idx, len(h)), h))
    parts.append(COPY_TRAILER)
    return b"".join(parts)


def _recorded_leaf(start: bytes) -> bytes | None:
    if not start.startswith(_HASH_OPEN) or start[_HASH_END:_HASH_END + 1] != b'"':
        return None
    try:  # strict hex, where `leaf_of` would allow spaces: such a record is read whole
        return hashlib.sha256(b"\x00" + binascii.unhexlify(start[len(_HASH_OPEN):_HASH_END])).digest()
    except binascii.Error:
        return None


def leaves_of(digests: Sequence[str]) -> list[bytes]:
    """The leaves of new events from their chain hashes."""
    return [merkle.leaf_hash(bytes.fromhex(d)) for d in digests]


def positioned_leaves(after: int, upto: int, events: Iterable[tuple[int, bytes]]) -> Iterable[bytes]:
    """The leaves of positions after..upto from (position, leaf) in position order, a missing
    position's leaf in its place."""
    expected = after + 1
    for position, leaf in events:
        for _ in range(expected, position):
            yield MISSING_LEAF
        yield leaf
        expected = position + 1
    for _ in range(expected, upto + 1):
        yield MISSING_LEAF


def _tail(rows: Iterable[tuple]) -> tuple[int, dict[Key, bytes]]:
    """(size, frontier) from the rows of `tail_sql`."""
    rows = list(rows)
    size = next((idx for level, idx, _ in rows if level == -2), 0)
    return size, {(level, idx): bytes(h) for level, idx, h in rows if level >= 0}


def _runs(rows: Sequence[merkle.Row]) -> Iterator[tuple[int, int, list[bytes]]]:
    """(level, first index, hashes) of each run of rows at one level and consecutive indexes."""
    run: list[bytes] = []
    level = first = -1
    for row_level, idx, h in rows:
        if row_level != level or idx != first + len(run):
            if run:
                yield level, first, run
            run, level, first = [], row_level, idx
        run.append(h)
    if run:
        yield level, first, run


class SQLiteTreeSql(TreeSql):
    """SQLite: triggers make the tree append-only, as the events are. A store made since keeps
    the rows in their key's order alone (WITHOUT ROWID): one B-tree entry a row, not two."""

    def __init__(self, events: str, position: str) -> None:
        super().__init__("?", MERKLE_TABLE, events, position, "BLOB")

    def insert(self, cur: Any, rows: Sequence[merkle.Row]) -> None:
        """An append's few rows as they are; more (an import's) a run at a time: the subtrees of
        one level at consecutive indexes, as `merkle.appended` makes them, go as one blob of
        their hashes (each a SHA-256 digest, HASH bytes) that the statement cuts up, where
        binding three values a row cost three times what inserting it does."""
        if len(rows) < FEW:
            insert_many(cur, self.table, "level, idx, hash", 3, rows)
            return
        sql = (f"WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?) "
               f"INSERT INTO {self.table} (level, idx, hash) SELECT ?, ? + i, substr(?, {HASH} * i + 1, {HASH}) FROM n")
        for level, first, hashes in _runs(rows):
            cur.execute(sql, (len(hashes), level, first, b"".join(hashes)))

    def create_sql(self) -> list[str]:
        return [super().create_sql()[0] + " WITHOUT ROWID", *(
            f"CREATE TRIGGER IF NOT EXISTS {MERKLE_TABLE}_no_{op.lower()} BEFORE {op} ON {MERKLE_TABLE} "
            f"BEGIN SELECT RAISE(ABORT, 'leadledger: {op} of the stored tree is refused: it is append-only'); END"
            for op in ("UPDATE", "DELETE"))]


class PostgresTreeSql(TreeSql):
    """PostgreSQL: rows go as three array parameters; the events table's trigger function
    (schema.py) refuses UPDATE, DELETE and TRUNCATE of the tree too."""

    def __init__(self, schema: str, events: str, position: str) -> None:
        super().__init__("%s", f'"{schema}".{MERKLE_TABLE}', events, position, "BYTEA")
        self.schema = schema
        self._values: dict[int, bytes] = {}  # the INSERT of n rows as a VALUES list

    def create_sql(self) -> list[str]:
        function = f'"{self.schema}".leadledger_append_only()'
        return [*super().create_sql(),
                f"CREATE OR REPLACE TRIGGER {MERKLE_TABLE}_append_only BEFORE UPDATE OR DELETE OR TRUNCATE "
                f"ON {self.table} FOR EACH STATEMENT EXECUTE FUNCTION {function}",
                f"REVOKE UPDATE, DELETE, TRUNCATE ON {self.table} FROM PUBLIC"]

    def grants_sql(self, app: str) -> list[str]:
        return [f'GRANT SELECT, INSERT ON {self.table} TO "{app}"']

    def insert(self, cur: Any, rows: Sequence[merkle.Row]) -> None:
        """An append's few rows as a VALUES list (three arrays cost several times as much to
        send), more as three binary arrays, many (an import) by COPY where the connection is
        not pipelining."""
        if not rows:
            return
        if len(rows) <= VALUES_UPTO:
            cur.execute(self.values_sql(len(rows)), [x for row in rows for x in row], prepare=True)
        elif len(rows) < COPY_FROM or cur.connection.pgconn.pipeline_status:
            levels, idxs, hashes = (list(c) for c in zip(*rows, strict=True))
            cur.execute(f"INSERT INTO {self.table} (level, idx, hash) "
                        "SELECT * FROM unnest(%b::smallint[], %b::bigint[], %b::bytea[])",
                        [levels, idxs, hashes], prepare=True)
        else:
            with cur.copy(f"COPY {self.table} (level, idx, hash) FROM STDIN (FORMAT BINARY)") as copy:
                copy.write(_binary_rows(rows))

    def server_append(self, size: str, leaves: str) -> str:
        """Common table expressions that store new leaves (`leaves`, an SQL array, the first
        at index `size`, an SQL value: the tree's size) and the subtrees they complete,
        hashed in the server (`sha256`, PostgreSQL 11 on), as `merkle.appended` does here.

        One row a level: its first new subtree's index and the new subtrees' hashes, in order.
        A parent is new where its right child (at an odd index) is; its left child is new too,
        or (the level's first) the stored subtree just before. Every row count the planner
        sees is small, so no plan costs enough to be compiled (JIT) at each append."""
        return (f"lv(level, first, hs) AS (SELECT 0, {size}, {leaves} UNION ALL "
                "SELECT lv.level + 1, lv.first >> 1, nx.hs FROM lv, LATERAL (SELECT ARRAY("
                "SELECT sha256('\\x01'::bytea || CASE WHEN u.i > 1 THEN lv.hs[u.i - 1] "
                f"ELSE (SELECT t.hash FROM {self.table} AS t WHERE t.level = lv.level AND t.idx = lv.first - 1) END "
                "|| u.h) FROM unnest(lv.hs) WITH ORDINALITY AS u(h, i) WHERE ((lv.first + u.i) & 1) = 0 ORDER BY u.i"
                ") AS hs) AS nx WHERE cardinality(nx.hs) > 0), "
                f"subtrees AS (INSERT INTO {self.table} (level, idx, hash) "
                "SELECT level, first + o - 1, h FROM lv, unnest(hs) WITH ORDINALITY AS u(h, o))")

    def values_sql(self, count: int) -> bytes:
        """The INSERT of `count` rows (at most VALUES_UPTO), taking level, index and hash of each."""
        found = self._values.get(count)
        if found is None:
            rows = ", ".join(["(%s::smallint, %s::bigint, %b::bytea)"] * count)
            found = self._values[count] = f"INSERT INTO {self.table} (level, idx, hash) VALUES {rows}".encode()
        return found
