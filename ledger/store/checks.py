"""What an append checks under its lock (streams read but not written, lead keys), and the
key-index SQL those checks and the store's look-ups share. Written for SQLite's short
queries; `PostgresChecks` overrides what PostgreSQL is sent differently."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ledger.store.records import Conflict, DuplicateKeys, LeadKey

REFUSED = "leadledger refused the append"  # how a check failing in the server begins its error


class AppendChecks:
    """The checks of one store: `param` its placeholder, `events` and `keys` its events table
    and key index (named as queries need them), `position` its position column."""

    key_chunk = 300  # how many keys (or streams) one look-up names

    def __init__(self, param: str, events: str, keys: str, position: str) -> None:
        self.param = param
        self.events = events
        self.keys = keys
        self.position = position

    def streams_matching(self, streams: Sequence[str]) -> tuple[str, list[Any]]:
        """A WHERE clause (and its parameters) for events of any of these streams."""
        return f"originator_id IN ({', '.join([self.param] * len(streams))})", list(streams)

    def keys_matching(self, pairs: Sequence[tuple[str, str]], columns: str) -> tuple[str, list[Any]]:
        """A query for `columns` of the indexed keys (`k`) equal to any of these (kind, value)
        pairs: a short OR, which the index answers."""
        p = self.param
        where = " OR ".join(f"(k.kind = {p} AND k.value = {p})" for _ in pairs)
        return f"SELECT {columns} FROM {self.keys} k WHERE {where}", [x for pair in pairs for x in pair]

    def index_keys(self, cur: Any, keys: Sequence[LeadKey]) -> None:
        """Add these keys to the index."""
        p = self.param
        cur.executemany(f"INSERT INTO {self.keys} (kind, value, lead) VALUES ({p}, {p}, {p})",
                        [(k.kind, k.value, k.lead) for k in keys])

    def versions(self, cur: Any, expect: Sequence[tuple[str, int]]) -> None:
        """Streams read but not written must not have moved on."""
        for stream, version in expect:
            cur.execute(f"SELECT MAX(originator_version) FROM {self.events} "
                        f"WHERE originator_id = {self.param}", [stream])
            if (cur.fetchone()[0] or 0) != version:
                raise Conflict(f"{stream} moved on from version {version}")

    def versions_refused(self, cur: Any, expect: Sequence[tuple[str, int]]) -> None:
        """`versions` for a PostgreSQL pipeline: each check fails in the server (`refuse`),
        so the append waits for no answer before it goes on."""
        for stream, version in expect:
            self.refuse(cur, f"(SELECT COALESCE(MAX(originator_version), 0) FROM {self.events} "
                             f"WHERE originator_id = {self.param}) = {self.param}", [stream, version],
                        f"{stream} moved on from version {version}")

    def refuse(self, cur: Any, condition: str, params: list[Any], why: str) -> None:
        """A statement that fails, its transaction with it, unless the SQL `condition` holds:
        PostgreSQL then reports a text cast to an integer, the text starting with `REFUSED`
        (the cast is of the whole CASE, which the planner cannot fold ahead of the condition)."""
        cur.execute(f"SELECT CAST(CASE WHEN {condition} THEN '0' ELSE {self.param} END AS INTEGER)",
                    [*params, f"{REFUSED}: {why}"], prepare=True)

    def keys_free(self, cur: Any, pairs: Sequence[tuple[str, str]]) -> None:
        """Raise DuplicateKeys if any of these keys is indexed."""
        size = self.key_chunk
        for i in range(0, len(pairs), size):
            sql, params = self.keys_matching(pairs[i:i + size], "k.lead")
            cur.execute(sql + " LIMIT 1", params)
            if cur.fetchone():
                raise DuplicateKeys("a lead key was indexed by another writer")

    def new_keys(self, cur: Any, keys: Sequence[LeadKey], unique: bool) -> None:
        """Refuse keys already taken (if `unique`), then index the new ones."""
        if not keys:
            return
        if unique:
            self.keys_free(cur, [(k.kind, k.value) for k in keys])
        self.index_keys(cur, keys)

    def bulk_keys(self, cur: Any, keys: Sequence[tuple[str, str, str]], checked_at: int | None,
                  ours: tuple[int, int] | None = None) -> None:
        """Inside a bulk append: refuse keys already indexed, looking them up only if an event
        was stored after `checked_at` other than those of `ours` (after, last): a bulk append
        the caller checked these keys against itself (keys are indexed only with events)."""
        if not keys:
            return
        cur.execute(f"SELECT MAX({self.position}) FROM {self.events}")
        top = cur.fetchone()[0] or 0
        if checked_at is None or (top > checked_at and (checked_at, top) != ours):
            self.keys_free(cur, [(kind, value) for kind, value, _ in keys])
