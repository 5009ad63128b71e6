"""A world with backdated corrections, for the as-of tests.

Up to position `checkpoint` the ledger said: alice holds L-1 (claimed 03-10), bob holds L-3
(claimed 03-11). Recorded after it, with earlier business times: a manager reassigned L-3 to
alice at 03-12, alice followed it up at 03-13, erin was registered and made a member of east
at 03-15, lead L-7 was added at 03-15, bob opened a dispute on L-1 at 03-16, pool north was
created at 03-18. Then east's idle_limit went from 10d to 20d at 03-25.
"""

from __future__ import annotations

from ledger.application import Ledger

T = "2026-03-20T12:00:00Z"  # business time asked about: L-1's idle deadline (03-20 09:00) has passed


def backdated_world(world: Ledger) -> int:
    """Build it on the `world` fixture; return the checkpoint position."""
    world.claim("alice", "L-1", at="2026-03-10T09:00:00Z")
    world.claim("bob", "L-3", at="2026-03-11T09:00:00Z")
    checkpoint = world.store.max_position()
    world.reassign("mgr", "L-3", "alice", "correction: alice had it first", at="2026-03-12T09:00:00Z")
    world.follow_up("alice", "L-3", "called", "call", at="2026-03-13T09:00:00Z")
    world.add_person("root", "erin", "Erin", "rep", at="2026-03-15T09:00:00Z")
    world.grant("root", "east", ["erin"], at="2026-03-15T09:00:00Z")
    world.add_lead("mgr", "L-7", "east", company="Company 7", at="2026-03-15T09:00:00Z")
    world.open_dispute("bob", "L-1", "I called them first", at="2026-03-16T09:00:00Z")
    world.create_pool("root", "north", "North", at="2026-03-18T09:00:00Z")
    world.change_rules("root", "east", at="2026-03-25T09:00:00Z", idle_limit="20d")
    return checkpoint
