"""Receipts built by hand for the tests: a log of stored records, its tree in memory, its heads."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger import checkpoint, codec, merkle
from ledger import events as ev
from ledger.checkpoint import TreeHead
from ledger.receipt_check import make_receipt
from ledger.shapes import event_dict
from ledger.store import Stored

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@dataclass
class Log:
    """Stored records (position -> (stream, version, state)), change-feed objects and the tree."""

    rows: dict[int, tuple[str, int, bytes]] = field(default_factory=dict)
    feed: dict[int, dict[str, Any]] = field(default_factory=dict)
    nodes: dict[merkle.Key, bytes] = field(default_factory=dict)
    heads: dict[str, str] = field(default_factory=dict)  # stream -> its last hash

    @property
    def size(self) -> int:
        return len(self.rows)

    def get(self, keys):
        return {k: self.nodes[k] for k in keys if k in self.nodes}

    def add_stored(self, position: int, stream: str, version: int, state: bytes, feed: dict[str, Any]) -> None:
        assert position == self.size + 1
        leaf = merkle.leaf_hash(bytes.fromhex(codec.decode_raw(state).hash))
        for level, index, h in merkle.nodes_for_append(self.size, [leaf], self.get):
            self.nodes[(level, index)] = h
        self.rows[position] = (stream, len([r for r in self.rows.values() if r[0] == stream]) + 1, state)
        assert self.rows[position][1] == version
        self.feed[position] = feed

    def append(self, stream: str, event: ev.Event, recorded_at: datetime | None = None) -> int:
        """Store an event as the ledger does (codec), with its change-feed object."""
        version = len([r for r in self.rows.values() if r[0] == stream]) + 1
        at = recorded_at or event.occurred_at
        state, digest = codec.encode(stream, version, self.heads.get(stream, codec.GENESIS), at, event)
        self.heads[stream] = digest
        position = self.size + 1
        feed = event_dict(Stored(position, stream, version, codec.decode(state).recorded_at, digest, event))
        feed["stream"] = stream
        self.add_stored(position, stream, version, state, feed)
        return position

    def origin(self) -> str:
        return checkpoint.origin_of(codec.decode_raw(self.rows[1][2]).hash if self.rows else None)

    def head(self, size: int | None = None, key: Ed25519PrivateKey | None = None) -> TreeHead:
        size = self.size if size is None else size
        result = checkpoint.head(self.origin(), size, merkle.root(size, self.get))
        return result.signed(key) if key else result

    def receipt(self, position: int, size: int | None = None, key: Ed25519PrivateKey | None = None,
                since: int | None = None) -> dict[str, Any]:
        size = self.size if size is None else size
        stream, version, state = self.rows[position]
        proof = merkle.inclusion_proof(position - 1, size, self.get)
        consistency = merkle.consistency_proof(since, size, self.get) if since is not None else None
        public = checkpoint.public_key_of(key) if key else None
        return make_receipt(copy.deepcopy(self.feed[position]), stream, version, state, proof, self.head(size, key), public,
                            consistency)


def sample_log(n: int = 12, start: datetime = T0) -> Log:
    """A small realistic log: people, a pool, leads (with personal data), claims, follow-ups."""
    log = Log()
    at = start
    log.append("person:root", ev.PersonRegistered(occurred_at=at, actor="root", person="root", name="Root",
                                                  role="admin"))
    log.append("pool:east", ev.PoolCreated(occurred_at=at, actor="root", pool="east", name="East",
                                           rules=ev.Rules()))
    i = 0
    while log.size < n:
        i += 1
        at += timedelta(minutes=1)
        lead = f"L-{i}"
        log.append(f"lead:{lead}", ev.LeadAdded(
            occurred_at=at, actor="root", lead=lead, pool="east",
            attributes=ev.Attributes(company=f"Company {i}", contact=f"Contact {i}", phone=f"1380000{i:04d}")))
        log.append(f"lead:{lead}", ev.LeadClaimed(occurred_at=at, actor="alice", lead=lead, pool="east",
                                                  rep="alice", rules_version=1, claim_limit=50, held_before=i - 1),
                   recorded_at=at + timedelta(hours=1))  # backdated
        log.append(f"lead:{lead}", ev.FollowUpLogged(occurred_at=at, actor="alice", lead=lead, rep="alice",
                                                     note=f"called {i}", channel="call"))
    return log


def from_ledger(ledger) -> Log:
    """The log of a real store: its stored records and its change feed."""
    log = Log()
    feed = {row["position"]: row for row in ledger.iter_events()}
    for position, stream, version, _topic, state in ledger.store.read_log_raw(after=0, limit=10**9):
        log.add_stored(position, stream, version, state, feed[position])
    return log
