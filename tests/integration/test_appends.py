"""Appends of several writers in turn: each writer appends after the log's end and the tree's
frontier as its own last append left them, unless another appended since (then they are
read again), and a stream read but not written is checked under the append's lock."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from ledger import events as ev
from ledger.application import Ledger
from ledger.store import Conflict
from tests.conftest import T0, event_count
from tests.integration.test_receipts import recomputed_root


def d(days: float) -> str:
    return (datetime.fromisoformat(T0.replace("Z", "+00:00")) + timedelta(days=days)).isoformat()


def positions(ledger: Ledger) -> list[int]:
    return [s.position for s in ledger.store.read_log(after=0, limit=10**9)]


def test_writers_taking_turns_keep_the_log_gap_free_and_its_tree_whole(world, store_url):
    with Ledger(store_url) as other:
        world.claim("alice", "L-1", at=d(1))
        world.claim("bob", "L-2", at=d(1))  # after its own last append
        other.claim("carol", "L-3", at=d(1))  # another writer: the first one's end moved
        world.release("alice", "L-1", at=d(2))
        world.release("bob", "L-2", at=d(2))
        other.release("carol", "L-3", at=d(2))
        other.claim("carol", "L-4", at=d(3))
        world.claim("alice", "L-5", at=d(3))
        world.follow_up("alice", "L-5", "called", at=d(3))
        assert other.digest()["digest"] == world.digest()["digest"]
    found = positions(world)
    assert found == list(range(1, len(found) + 1))
    assert len(found) == event_count(world)
    assert world.verify()["ok"] is True
    assert [h["lead"] for h in world.holdings("alice")["leads"]] == ["L-5"]
    assert [h["lead"] for h in world.holdings("carol")["leads"]] == ["L-4"]


def test_an_append_expecting_a_stream_that_moved_on_writes_nothing(world):
    """The pool a claim was decided on is expected unchanged, though not written; checked
    under the lock, in the same transaction as the append (on PostgreSQL, in the server)."""
    pool = world.repo.fresh_pool("east")
    lead = world.repo.lead("L-1")
    world.grant("root", "east", ["dave"], at=T0)  # the pool moves on
    before = event_count(world)
    note = ev.FollowUpLogged(occurred_at=datetime.fromisoformat(d(1)), actor="mgr", lead="L-1", rep="mgr",
                             note="called", channel="call")
    with pytest.raises(Conflict, match="moved on"):
        world.repo.commit([lead.head, pool.head], [note])
    assert event_count(world) == before
    assert world.claim("dave", "L-1", at=d(1))["owner"] == "dave"  # the next append goes through
    found = positions(world)
    assert found == list(range(1, len(found) + 1))
    assert world.verify()["ok"] is True


@pytest.mark.parametrize("count", [1, 5, 12, 40])
def test_an_append_of_any_size_stores_the_tree_of_its_events(world, count):
    """An append's subtree rows go to the store by one statement or another as they are few
    or many (on PostgreSQL a VALUES list, or arrays): the stored tree is the events' either way."""
    lead = world.repo.lead("L-1")
    notes = [ev.FollowUpLogged(occurred_at=datetime.fromisoformat(d(1)), actor="mgr", lead="L-1", rep="mgr",
                               note=f"call {i}", channel="call") for i in range(count)]
    world.repo.commit([lead.head], notes)
    world.claim("alice", "L-2", at=d(1))  # and the next append extends it
    size = world.store.max_position()
    assert world.store.tree.size() == size
    assert bytes.fromhex(world.digest()["root"]) == recomputed_root(world, size)
    assert world.verify()["ok"] is True
