"""Races of real OS processes over a pool's membership and rules, and over the last admin, on
SQLite and on PostgreSQL.

A claim decided against a pool that changed before the claim was recorded (a revoke, a rule
change) is decided again: the claim's append expects the pool's stream unchanged though it
writes nothing there. Two admins deactivating each other at once cannot both succeed: each
deactivation expects the other admins' streams unchanged. In the "forced" variants both
processes decide before either appends, so the second append certainly meets the first.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from ledger import events as ev
from ledger.application import Ledger
from tests.races import workers
from tests.races.test_races import build, log, no_tracebacks, outcomes, race_rounds, verified

FORCED = pytest.mark.parametrize("forced", [False, True], ids=["barrier", "forced"])


def position_of(events, kind) -> int | None:
    return next((s.position for s in events if isinstance(s.event, kind)), None)


def member_again(led: Ledger, r: int) -> str:
    """Each round starts with alice a member again; she claims a lead of her own."""
    led.grant("root", "east", ["alice"])
    return f"L-{r + 1}"


def holding_one(led: Ledger, r: int) -> str:
    """Each round starts with alice holding one lead under a limit of 2: a second claim is
    within 2, not within 1."""
    for lead in led.holdings("alice")["leads"]:
        led.release("alice", lead["lead"])
    led.change_rules("root", "east", claim_limit=2)
    led.claim("alice", f"L-{2 * r + 1}")
    return f"L-{2 * r + 2}"


@dataclass(frozen=True)
class PoolChange:
    """A change to the pool that races alice's claim, and the refusal the claim meets after it."""

    claim_limit: int
    leads: int
    round_start: Callable[[Ledger, int], str]  # readies the round; the lead alice then claims
    call: tuple[str, list, dict]  # the racing call of the Ledger
    event: type
    refusal: str


CHANGES = {
    "revoke": PoolChange(5, 3, member_again, ("revoke", ["root", "east", ["alice"]], {}), ev.MembersRevoked,
                         "not_pool_member"),
    "lower-limit": PoolChange(2, 6, holding_one, ("change_rules", ["root", "east"], {"claim_limit": 1}),
                              ev.PoolRulesChanged, "claim_limit_reached"),
}


@FORCED
@pytest.mark.parametrize("change", CHANGES.values(), ids=CHANGES.keys())
def test_a_pool_change_and_a_claim_at_once(store_url, forced, change):
    build(store_url, ["alice"], claim_limit=change.claim_limit, leads=change.leads)

    def jobs(r: int) -> list:
        with Ledger(store_url) as led:
            lead = change.round_start(led, r)
        return [(workers.api, {"store": store_url, "calls": [("claim", ["alice", lead], {})]}),
                (workers.api, {"store": store_url, "calls": [change.call]})]

    def check(r, reports, before) -> None:
        no_tracebacks(reports)
        claim, changed = outcomes(reports)
        assert "result" in changed, changed
        events = log(store_url)[before:]
        at = position_of(events, change.event)
        claimed = position_of(events, ev.LeadClaimed)
        if "result" in claim:  # recorded before the change, never after it
            assert claimed is not None and claimed < at
        else:
            assert (claim["error"]["code"], claim["exit"]) == (change.refusal, 1), claim
            assert claimed is None
            refusal = [s for s in events if isinstance(s.event, ev.ClaimRefused)]
            assert len(refusal) == 1 and refusal[0].position > at
            if "rules_version" in changed["result"]:  # decided under the rules just changed
                assert refusal[0].event.rules_version == changed["result"]["rules_version"]
        if forced and "error" in claim:
            assert reports[0]["conflicts"] >= 1  # decided before the change, lost, decided again
        verified(store_url)

    race_rounds(store_url, jobs, check, forced=forced)


@FORCED
def test_two_admins_deactivating_each_other_at_once(store_url, forced):
    build(store_url, ["alice"], claim_limit=1, leads=0)

    def jobs(r: int) -> list:
        with Ledger(store_url) as led:
            (survivor,) = [p["person"] for p in led.person_list()["people"] if p["role"] == "admin" and p["active"]]
            led.add_person(survivor, f"adm{r}", f"Admin {r}", "admin")
        pair = [(survivor, f"adm{r}"), (f"adm{r}", survivor)]
        return [(workers.api, {"store": store_url, "calls": [("deactivate_person", [a, b], {})]}) for a, b in pair]

    def check(r, reports, before) -> None:
        no_tracebacks(reports)
        done = outcomes(reports)
        won = [o for o in done if "result" in o]
        lost = [o for o in done if "error" in o]
        assert len(won) == 1 and len(lost) == 1, done
        assert lost[0]["error"]["code"] in ("last_admin", "actor_inactive") and lost[0]["exit"] == 1, lost
        events = log(store_url)[before:]
        assert [type(s.event) for s in events] == [ev.PersonDeactivated]  # the loser wrote nothing
        with Ledger(store_url) as led:
            admins = [p for p in led.person_list()["people"] if p["role"] == "admin" and p["active"]]
        assert len(admins) == 1
        verified(store_url)

    race_rounds(store_url, jobs, check, forced=forced)
