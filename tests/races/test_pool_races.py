"""Races of real OS processes over a pool's membership and rules, and over the last admin, on
SQLite and on PostgreSQL.

A claim decided against a pool that changed before the claim was recorded (a revoke, a rule
change) is decided again: the claim's append expects the pool's stream unchanged though it
writes nothing there. Two admins deactivating each other at once cannot both succeed: each
deactivation expects the other admins' streams unchanged. In the "forced" variants both
processes decide before either appends, so the second append certainly meets the first.
"""

from __future__ import annotations

import pytest

from ledger import events as ev
from ledger.application import Ledger
from tests.races import workers
from tests.races.test_races import build, log, no_tracebacks, outcomes, race_rounds, verified

FORCED = pytest.mark.parametrize("forced", [False, True], ids=["barrier", "forced"])


def position_of(events, kind) -> int | None:
    return next((s.position for s in events if isinstance(s.event, kind)), None)


@FORCED
def test_a_revoke_and_a_claim_at_once(store_url, forced):
    build(store_url, ["alice"], claim_limit=5, leads=3)

    def jobs(r: int) -> list:
        with Ledger(store_url) as led:
            led.grant("root", "east", ["alice"])  # a member again at each round's start
        return [(workers.api, {"store": store_url, "calls": [("claim", ["alice", f"L-{r + 1}"], {})]}),
                (workers.api, {"store": store_url, "calls": [("revoke", ["root", "east", ["alice"]], {})]})]

    def check(r, reports, before) -> None:
        no_tracebacks(reports)
        claim, revoke = outcomes(reports)
        assert "result" in revoke and revoke["result"]["changed"] == ["alice"], revoke
        events = log(store_url)[before:]
        revoked = position_of(events, ev.MembersRevoked)
        claimed = position_of(events, ev.LeadClaimed)
        if "result" in claim:  # recorded before the revoke, never after it
            assert claimed is not None and claimed < revoked
        else:
            assert (claim["error"]["code"], claim["exit"]) == ("not_pool_member", 1), claim
            assert claimed is None
        if forced and "error" in claim:
            assert reports[0]["conflicts"] >= 1  # decided as a member, lost, decided again
        verified(store_url)

    race_rounds(store_url, jobs, check, forced=forced)


@FORCED
def test_a_lower_claim_limit_and_a_claim_at_once(store_url, forced):
    build(store_url, ["alice"], claim_limit=2, leads=6)

    def jobs(r: int) -> list:
        with Ledger(store_url) as led:
            for lead in led.holdings("alice")["leads"]:
                led.release("alice", lead["lead"])
            led.change_rules("root", "east", claim_limit=2)
            led.claim("alice", f"L-{2 * r + 1}")  # holds one; a second is within 2, not within 1
        return [(workers.api, {"store": store_url, "calls": [("claim", ["alice", f"L-{2 * r + 2}"], {})]}),
                (workers.api, {"store": store_url, "calls": [("change_rules", ["root", "east"],
                                                              {"claim_limit": 1})]})]

    def check(r, reports, before) -> None:
        no_tracebacks(reports)
        claim, change = outcomes(reports)
        assert "result" in change, change
        events = log(store_url)[before:]
        changed = position_of(events, ev.PoolRulesChanged)
        if "result" in claim:
            assert position_of(events, ev.LeadClaimed) < changed
        else:
            assert (claim["error"]["code"], claim["exit"]) == ("claim_limit_reached", 1), claim
            refusal = [s for s in events if isinstance(s.event, ev.ClaimRefused)]
            assert len(refusal) == 1 and refusal[0].position > changed
            assert refusal[0].event.rules_version == change["result"]["rules_version"]
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
