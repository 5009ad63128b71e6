"""Pure decisions: state + command + time -> events or an error. No database, no clock.

States are built the way the ledger builds them: by replaying events through `evolve`.
Event positions are 10, 20, 30, ... in the order given, so tests can name them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ledger import decisions
from ledger import events as ev
from ledger.errors import InvalidInput, PermissionDenied, Refused
from ledger.state import (
    CONVERTED, HELD, POOLED, Desk, Head, Lead, Person, Pool, desk_stream, lead_stream,
    person_stream, pool_stream, replay,
)
from ledger.store import Stored

DAY = 86400
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def t(days: float = 0, hours: float = 0) -> datetime:
    return T0 + timedelta(days=days, hours=hours)


def replayed(state, *events: ev.Event):
    stored = [Stored(10 * (i + 1), state.head.stream, i + 1, e.occurred_at, f"h{i}", e)
              for i, e in enumerate(events)]
    return replay(state, stored)


def person(pid: str, role: str = "rep", active: bool = True) -> Person:
    return Person(Head(person_stream(pid)), pid, pid.title(), role, active=active, exists=True)


ALICE, BOB, CAROL, DAVE = person("alice"), person("bob"), person("carol"), person("dave")
MGR, ROOT, AUDREY = person("mgr", "manager"), person("root", "admin"), person("audrey", "auditor")

RULES = ev.Rules(claim_limit=2, idle_limit=10 * DAY, hold_limit=30 * DAY, cooldown=7 * DAY,
                 warn_before=2 * DAY)


def pool(rules: ev.Rules = RULES, members=("mgr", "alice", "bob", "carol"),
         changes: tuple[tuple[datetime, ev.Rules], ...] = ()) -> Pool:
    events = [
        ev.PoolCreated(occurred_at=T0, actor="root", pool="east", name="East", rules=rules),
        ev.MembersGranted(occurred_at=T0, actor="root", pool="east", people=list(members)),
    ]
    events += [ev.PoolRulesChanged(occurred_at=at, actor="root", pool="east", rules=r, rules_version=n + 2)
               for n, (at, r) in enumerate(changes)]
    return replayed(Pool(Head(pool_stream("east")), "east"), *events)


def desk(rep: str = "alice", held: int = 0, day: str = "", claims: int = 0) -> Desk:
    return Desk(Head(desk_stream(rep, "east")), rep, "east", held, day, claims)


# Lead events, each at a time given in days after T0.
def added(at=0):
    return ev.LeadAdded(occurred_at=t(at), actor="mgr", lead="L-1", pool="east", attributes=ev.Attributes())


def claimed(rep, at):
    return ev.LeadClaimed(occurred_at=t(at), actor=rep, lead="L-1", pool="east", rep=rep, rules_version=1,
                          claim_limit=2, held_before=0)


def assigned(rep, at):
    return ev.LeadAssigned(occurred_at=t(at), actor="mgr", lead="L-1", pool="east", rep=rep, rules_version=1)


def reassigned(old, rep, at):
    return ev.LeadReassigned(occurred_at=t(at), actor="mgr", lead="L-1", pool="east", from_rep=old, rep=rep,
                             reason="cover", rules_version=1)


def released(rep, at):
    return ev.LeadReleased(occurred_at=t(at), actor=rep, lead="L-1", pool="east", rep=rep)


def recycled(rep, at):
    return ev.LeadRecycled(occurred_at=t(at), actor="root", actor_kind="rule", lead="L-1", pool="east",
                           rep=rep, rule="idle_limit", limit=10 * DAY, rules_version=1, deadline=t(at),
                           held_since=t(0), last_follow_up_at=None)


def returned(rep, at):
    return ev.LeadReturned(occurred_at=t(at), actor="root", lead="L-1", pool="east", rep=rep,
                           reason="deactivated")


def followed(rep, at):
    return ev.FollowUpLogged(occurred_at=t(at), actor=rep, lead="L-1", rep=rep, note="called")


def converted(rep, at):
    return ev.LeadConverted(occurred_at=t(at), actor=rep, lead="L-1", pool="east", rep=rep, deal="D-1")


def warned(rep, at, recycle_at):
    return ev.RecycleWarned(occurred_at=t(at), actor="root", actor_kind="rule", lead="L-1", rep=rep,
                            rule="idle_limit", recycle_at=recycle_at, rules_version=1, limit=10 * DAY)


def lead(*events: ev.Event) -> Lead:
    return replayed(Lead(Head(lead_stream("L-1")), "L-1"), added(), *events)


def types(events) -> list[str]:
    return [type(e).__name__ for e in events]


def refusal(events) -> str:
    assert len(events) == 1 and isinstance(events[0], (ev.ClaimRefused, ev.AssignmentRefused)), events
    return events[0].reason


# --- roles ----------------------------------------------------------------------------------

# Actors and roles (only reps and managers hold leads).
EXPECTED_ROLES = {
    "person.add": {"admin"}, "person.deactivate": {"admin"}, "pool.create": {"admin"},
    "pool.rules": {"admin"}, "pool.grant": {"admin"}, "pool.revoke": {"admin"},
    "lead.add": {"admin", "manager", "rep"}, "lead.import": {"admin", "manager"},
    "claim": {"manager", "rep"}, "release": {"manager", "rep"}, "follow-up": {"manager", "rep"},
    "convert": {"manager", "rep"},
    "assign": {"admin", "manager"}, "reassign": {"admin", "manager"}, "move": {"admin", "manager"},
    "sweep": {"admin", "manager"},
}


@pytest.mark.parametrize("command", sorted(EXPECTED_ROLES))
@pytest.mark.parametrize("role", ["admin", "manager", "rep", "auditor"])
def test_authorise_follows_the_role_table(command, role):
    actor = person("x", role)
    if role in EXPECTED_ROLES[command]:
        decisions.authorise(actor, command)
    else:
        with pytest.raises(PermissionDenied) as e:
            decisions.authorise(actor, command)
        assert e.value.code == "permission_denied" and e.value.exit_code == 4


def test_check_holder():
    decisions.check_holder(ALICE)
    decisions.check_holder(MGR)
    with pytest.raises(InvalidInput):
        decisions.check_holder(AUDREY)
    with pytest.raises(Refused) as e:
        decisions.check_holder(person("gone", active=False))
    assert e.value.code == "actor_inactive"


def test_check_member():
    decisions.check_member(MGR, pool())
    decisions.check_member(ROOT, pool())  # admins are not bound by membership
    with pytest.raises(Refused) as e:
        decisions.check_member(person("mgr2", "manager"), pool())
    assert e.value.code == "not_pool_member"


# --- time -----------------------------------------------------------------------------------

def test_check_time_refuses_going_back():
    held = lead(claimed("alice", 2))
    decisions.check_time(held, t(2))  # the same instant is fine
    decisions.check_time(held, t(3))
    with pytest.raises(InvalidInput) as e:
        decisions.check_time(held, t(2) - timedelta(microseconds=1))
    assert e.value.code == "invalid_input"


# --- claim ----------------------------------------------------------------------------------

def test_claim_a_pooled_lead():
    events = decisions.claim(lead(), pool(), desk(held=1), ALICE, t(1))
    assert types(events) == ["LeadClaimed", "HoldingsChanged"]
    claim, holdings = events
    assert (claim.rep, claim.rules_version, claim.claim_limit, claim.held_before) == ("alice", 1, 2, 1)
    assert claim.occurred_at == t(1)
    assert (holdings.rep, holdings.pool, holdings.held) == ("alice", "east", 2)
    assert (holdings.day, holdings.claims_on_day) == ("2026-03-03", 1)


def test_claim_of_a_held_lead_names_owner_and_position():
    held = lead(claimed("alice", 1))  # the claim is the 2nd event: position 20
    events = decisions.claim(held, pool(), desk("bob"), BOB, t(1, 1))
    assert refusal(events) == "lead_owned"
    refused = events[0]
    assert (refused.owner, refused.owner_since_position, refused.rep) == ("alice", 20, "bob")
    assert "alice" in refused.message and "#20" in refused.message


def test_claim_of_a_converted_lead():
    done = lead(claimed("alice", 1), converted("alice", 2))
    assert refusal(decisions.claim(done, pool(), desk("bob"), BOB, t(3))) == "lead_converted"
    assert refusal(decisions.claim(done, pool(), desk(), ALICE, t(3))) == "lead_converted"


def test_claim_by_a_non_member():
    events = decisions.claim(lead(), pool(), desk("dave"), DAVE, t(1))
    assert refusal(events) == "not_pool_member"


def test_claim_limit():
    at_limit = decisions.claim(lead(), pool(), desk(held=2), ALICE, t(1))
    assert refusal(at_limit) == "claim_limit_reached"
    assert at_limit[0].facts["claim_limit"] == 2
    assert types(decisions.claim(lead(), pool(), desk(held=1), ALICE, t(1)))[0] == "LeadClaimed"


def test_converted_leads_do_not_count_towards_the_limit():
    """Claim two, convert one: the desk holds one, so a third claim is allowed."""
    p = pool()
    d = desk()
    changes = []
    for n in range(2):
        events = decisions.claim(lead(), p, d, ALICE, t(1, n))
        changes.append(events[1])
        d = replayed(desk(), *changes)
    assert d.held == 2
    events = decisions.convert(lead(claimed("alice", 1)), d, ALICE, t(2), "D-1")
    assert types(events) == ["LeadConverted", "HoldingsChanged"]
    d = replayed(desk(), *changes, events[1])
    assert d.held == 1
    assert types(decisions.claim(lead(), p, d, ALICE, t(3)))[0] == "LeadClaimed"


def test_claim_limit_of_the_rule_version_in_force():
    loose = ev.Rules(claim_limit=3, idle_limit=10 * DAY, hold_limit=30 * DAY, cooldown=7 * DAY)
    p = pool(changes=((t(5), loose),))
    before = decisions.claim(lead(), p, desk(held=2), ALICE, t(4))
    assert refusal(before) == "claim_limit_reached" and before[0].rules_version == 1
    after = decisions.claim(lead(), p, desk(held=2), ALICE, t(5))
    assert types(after)[0] == "LeadClaimed" and after[0].rules_version == 2 and after[0].claim_limit == 3


def test_daily_claim_limit_per_utc_day():
    p = pool(ev.Rules(claim_limit=50, daily_claim_limit=2))
    d = desk(held=2, day="2026-03-02", claims=2)
    same_day = decisions.claim(lead(), p, d, ALICE, datetime(2026, 3, 2, 23, 59, tzinfo=UTC))
    assert refusal(same_day) == "daily_limit_reached"
    assert same_day[0].facts["daily_claim_limit"] == 2
    next_day = decisions.claim(lead(), p, d, ALICE, datetime(2026, 3, 3, 0, 0, tzinfo=UTC))
    assert types(next_day) == ["LeadClaimed", "HoldingsChanged"]
    assert (next_day[1].day, next_day[1].claims_on_day) == ("2026-03-03", 1)


def test_daily_claim_limit_counts_claims_not_holdings():
    """Releasing a lead frees room under claim_limit, not under daily_claim_limit."""
    p = pool(ev.Rules(claim_limit=50, daily_claim_limit=1))
    claim = decisions.claim(lead(), p, desk(), ALICE, t(0, 1))
    d = replayed(desk(), claim[1])
    release = decisions.release(lead(claimed("alice", 0.05)), d, ALICE, t(0, 2), None)
    d = replayed(desk(), claim[1], release[1])
    assert (d.held, d.claims_on_day) == (0, 1)
    assert refusal(decisions.claim(lead(), p, d, ALICE, t(0, 3))) == "daily_limit_reached"


def test_daily_claim_limit_zero_means_none():
    p = pool(ev.Rules(claim_limit=500, daily_claim_limit=0))
    d = desk(held=100, day="2026-03-02", claims=100)
    assert types(decisions.claim(lead(), p, d, ALICE, t(0, 1)))[0] == "LeadClaimed"


# --- cooldown -------------------------------------------------------------------------------

@pytest.mark.parametrize("leave", [released, recycled, returned], ids=["released", "recycled", "returned"])
def test_cooldown_after_the_lead_left_the_rep(leave):
    history = lead(claimed("alice", 1), leave("alice", 2))
    refused = decisions.claim(history, pool(), desk(), ALICE, t(8, -0.01))
    assert refusal(refused) == "cooldown_active"
    assert refused[0].facts["cooldown_until"] == "2026-03-11T09:00:00Z"
    assert types(decisions.claim(history, pool(), desk(), ALICE, t(9)))[0] == "LeadClaimed"


def test_cooldown_applies_only_to_the_rep_it_left():
    history = lead(claimed("alice", 1), released("alice", 2))
    assert types(decisions.claim(history, pool(), desk("bob"), BOB, t(2)))[0] == "LeadClaimed"


def test_cooldown_after_reassignment_away():
    history = lead(claimed("alice", 1), reassigned("alice", "bob", 3), released("bob", 4))
    assert refusal(decisions.claim(history, pool(), desk(), ALICE, t(9))) == "cooldown_active"
    assert types(decisions.claim(history, pool(), desk(), ALICE, t(10)))[0] == "LeadClaimed"


def test_cooldown_counts_from_the_most_recent_time_it_left_that_rep():
    """Alice lost it on day 2 and again on day 6; bob released it last on day 8.

    Her cooldown runs from day 6 (not day 2, not bob's release on day 8)."""
    history = lead(
        claimed("alice", 1), released("alice", 2),
        claimed("bob", 3), reassigned("bob", "alice", 4), reassigned("alice", "bob", 6),
        released("bob", 8),
    )
    p = pool()
    assert refusal(decisions.claim(history, p, desk(), ALICE, t(12))) == "cooldown_active"
    assert types(decisions.claim(history, p, desk(), ALICE, t(13)))[0] == "LeadClaimed"
    # bob's own cooldown runs from his release on day 8
    assert refusal(decisions.claim(history, p, desk("bob"), BOB, t(13))) == "cooldown_active"
    assert types(decisions.claim(history, p, desk("bob"), BOB, t(15)))[0] == "LeadClaimed"


def test_cooldown_not_reset_by_someone_elses_release():
    """Alice released on day 1; bob held it and released on day 6. Alice may claim from day 8."""
    history = lead(claimed("alice", 0.5), released("alice", 1), claimed("bob", 2), released("bob", 6))
    assert types(decisions.claim(history, pool(), desk(), ALICE, t(8)))[0] == "LeadClaimed"


def test_cooldown_of_the_rule_version_in_force():
    short = ev.Rules(claim_limit=2, idle_limit=10 * DAY, hold_limit=30 * DAY, cooldown=1 * DAY)
    history = lead(claimed("alice", 1), released("alice", 2))
    p = pool(changes=((t(2.5), short),))
    assert types(decisions.claim(history, p, desk(), ALICE, t(3)))[0] == "LeadClaimed"


# --- assign / reassign ----------------------------------------------------------------------

def test_assign_a_pooled_lead():
    events = decisions.assign(lead(), pool(), desk(held=1), ALICE, MGR, t(1), "covers region")
    assert types(events) == ["LeadAssigned", "HoldingsChanged"]
    assert (events[0].rep, events[0].actor, events[0].reason) == ("alice", "mgr", "covers region")
    assert events[1].held == 2


@pytest.mark.parametrize("history, rep, the_desk, code", [
    ((claimed("bob", 1),), ALICE, desk(), "lead_owned"),
    ((claimed("bob", 1), converted("bob", 1.5)), ALICE, desk(), "lead_converted"),
    ((), DAVE, desk("dave"), "not_pool_member"),
    ((), ALICE, desk(held=2), "claim_limit_reached"),
])
def test_assign_refusals_are_recorded(history, rep, the_desk, code):
    events = decisions.assign(lead(*history), pool(), the_desk, rep, MGR, t(2), None)
    assert refusal(events) == code
    assert isinstance(events[0], ev.AssignmentRefused)
    assert (events[0].actor, events[0].rep) == ("mgr", rep.id)


def test_assign_refusal_names_owner_and_position():
    events = decisions.assign(lead(claimed("bob", 1)), pool(), desk(), ALICE, MGR, t(2), None)
    assert (events[0].owner, events[0].owner_since_position) == ("bob", 20)


def test_reassign_a_held_lead():
    events = decisions.reassign(lead(claimed("alice", 1)), pool(), desk(held=1), desk("bob"), BOB, MGR,
                                t(2), "alice on leave")
    assert types(events) == ["LeadReassigned", "HoldingsChanged", "HoldingsChanged"]
    moved, old, new = events
    assert (moved.from_rep, moved.rep, moved.reason) == ("alice", "bob", "alice on leave")
    assert (old.rep, old.held) == ("alice", 0)
    assert (new.rep, new.held) == ("bob", 1)


@pytest.mark.parametrize("history, rep, the_desk, code", [
    ((), BOB, desk("bob"), "lead_pooled"),
    ((claimed("alice", 1), converted("alice", 1.5)), BOB, desk("bob"), "lead_converted"),
    ((claimed("alice", 1),), DAVE, desk("dave"), "not_pool_member"),
    ((claimed("alice", 1),), BOB, desk("bob", held=2), "claim_limit_reached"),
])
def test_reassign_refusals_are_recorded(history, rep, the_desk, code):
    events = decisions.reassign(lead(*history), pool(), desk(held=1), the_desk, rep, MGR, t(2), "why")
    assert refusal(events) == code


def test_reassign_to_the_owner_is_bad_input():
    with pytest.raises(InvalidInput):
        decisions.reassign(lead(claimed("alice", 1)), pool(), desk(held=1), desk(held=1), ALICE, MGR, t(2), "x")


# --- release / follow-up / convert: owner only ----------------------------------------------

def test_release_by_the_owner():
    events = decisions.release(lead(claimed("alice", 1)), desk(held=2), ALICE, t(2), "wrong region")
    assert types(events) == ["LeadReleased", "HoldingsChanged"]
    assert events[0].reason == "wrong region" and events[1].held == 1


@pytest.mark.parametrize("decide", [
    lambda lead_, who: decisions.release(lead_, desk(who.id, held=1), who, t(3), None),
    lambda lead_, who: decisions.follow_up(lead_, who, t(3), "hi", "call"),
    lambda lead_, who: decisions.convert(lead_, desk(who.id, held=1), who, t(3), None),
], ids=["release", "follow-up", "convert"])
def test_only_the_owner(decide):
    with pytest.raises(Refused) as e:
        decide(lead(claimed("alice", 1)), BOB)
    assert e.value.code == "not_owner" and e.value.details["owner"] == "alice"
    with pytest.raises(Refused) as e:
        decide(lead(), ALICE)
    assert e.value.code == "lead_pooled"


def test_release_or_convert_a_converted_lead():
    done = lead(claimed("alice", 1), converted("alice", 2))
    for decide in (lambda: decisions.release(done, desk(), ALICE, t(3), None),
                   lambda: decisions.convert(done, desk(), ALICE, t(3), None)):
        with pytest.raises(Refused) as e:
            decide()
        assert e.value.code == "lead_converted"


def test_follow_up_by_the_owner():
    events = decisions.follow_up(lead(claimed("alice", 1)), ALICE, t(2), "sent quote", "email")
    assert types(events) == ["FollowUpLogged"]
    assert (events[0].rep, events[0].note, events[0].channel) == ("alice", "sent quote", "email")


def test_convert_by_the_owner():
    events = decisions.convert(lead(claimed("alice", 1)), desk(held=1), ALICE, t(2), "D-9")
    assert types(events) == ["LeadConverted", "HoldingsChanged"]
    assert events[0].deal == "D-9" and events[1].held == 0
    assert lead(claimed("alice", 1), events[0]).status == CONVERTED


# --- move -----------------------------------------------------------------------------------

def west() -> Pool:
    return replayed(Pool(Head(pool_stream("west")), "west"),
                    ev.PoolCreated(occurred_at=T0, actor="root", pool="west", name="West", rules=ev.Rules()))


def test_move_a_pooled_lead():
    events = decisions.move(lead(), west(), MGR, t(1), "wrong region")
    assert types(events) == ["LeadMoved"]
    assert (events[0].from_pool, events[0].pool) == ("east", "west")
    assert lead(events[0]).pool == "west"


def test_move_refusals():
    with pytest.raises(Refused) as e:
        decisions.move(lead(claimed("alice", 1)), west(), MGR, t(2), None)
    assert e.value.code == "lead_owned"
    with pytest.raises(Refused) as e:
        decisions.move(lead(claimed("alice", 1), converted("alice", 2)), west(), MGR, t(3), None)
    assert e.value.code == "lead_converted"
    with pytest.raises(InvalidInput):
        decisions.move(lead(), pool(), MGR, t(1), None)


# --- deadlines and sweep --------------------------------------------------------------------

def test_deadline_idle_from_claim():
    due = decisions.deadline(lead(claimed("alice", 0)), pool(), t(1))
    assert (due.rule, due.at, due.limit, due.rules.version) == ("idle_limit", t(10), 10 * DAY, 1)
    assert due.warn_at == t(8)


def test_deadline_idle_from_last_follow_up():
    due = decisions.deadline(lead(claimed("alice", 0), followed("alice", 4), followed("alice", 6)), pool(), t(7))
    assert (due.rule, due.at) == ("idle_limit", t(16))


def test_deadline_hold_when_it_comes_first():
    history = lead(claimed("alice", 0), followed("alice", 9), followed("alice", 18), followed("alice", 27))
    due = decisions.deadline(history, pool(), t(28))
    assert (due.rule, due.at, due.limit) == ("hold_limit", t(30), 30 * DAY)


def test_hold_limit_zero_means_never():
    p = pool(ev.Rules(claim_limit=2, idle_limit=10 * DAY, hold_limit=0))
    days = list(range(9, 200, 9))
    history = lead(claimed("alice", 0), *(followed("alice", d) for d in days))
    due = decisions.deadline(history, p, t(200))
    assert due.rule == "idle_limit" and due.at == t(days[-1] + 10)


def test_deadline_under_a_later_rule_change():
    """Claimed on day 0 under idle 10d; on day 5 the rule becomes 20d: the deadline is day 20.
    A sweep on day 12 therefore recycles nothing, and the recycle on day 20 names rules v2."""
    longer = ev.Rules(claim_limit=2, idle_limit=20 * DAY, hold_limit=30 * DAY, warn_before=2 * DAY)
    p = pool(changes=((t(5), longer),))
    history = lead(claimed("alice", 0))
    assert decisions.deadline(history, p, t(4)).at == t(10)
    due = decisions.deadline(history, p, t(12))
    assert (due.at, due.rules.version, due.limit) == (t(20), 2, 20 * DAY)
    assert decisions.sweep_lead(history, p, desk(held=1), t(12), "root") == []
    events = decisions.sweep_lead(history, p, desk(held=1), t(20), "root")
    assert types(events) == ["LeadRecycled", "HoldingsChanged"]
    assert (events[0].rules_version, events[0].limit, events[0].deadline) == (2, 20 * DAY, t(20))


def test_rule_change_after_the_deadline_passed_is_in_force_from_its_time():
    """Overdue under v1 on day 10, unswept; a rule change on day 11 extends it. From then on the
    later rule version governs, so a sweep before the change recycles, after does not."""
    longer = ev.Rules(claim_limit=2, idle_limit=20 * DAY, hold_limit=30 * DAY)
    p = pool(changes=((t(11), longer),))
    history = lead(claimed("alice", 0))
    assert types(decisions.sweep_lead(history, p, desk(held=1), t(10.5), "root"))[0] == "LeadRecycled"
    assert decisions.sweep_lead(history, p, desk(held=1), t(12), "root") == []


def test_no_deadline_for_pooled_or_converted():
    assert decisions.deadline(lead(), pool(), t(100)) is None
    done = lead(claimed("alice", 0), converted("alice", 1))
    assert decisions.deadline(done, pool(), t(100)) is None
    assert decisions.sweep_lead(done, pool(), desk(), t(100), "root") == []


def test_sweep_recycles_an_overdue_lead_with_its_facts():
    history = lead(claimed("alice", 0), followed("alice", 3))
    events = decisions.sweep_lead(history, pool(), desk(held=2), t(20), "root")
    assert types(events) == ["LeadRecycled", "HoldingsChanged"]
    rec, holdings = events
    assert rec.occurred_at == t(20)  # at the sweep's time, naming the deadline it passed
    assert (rec.rule, rec.limit, rec.deadline, rec.rules_version) == ("idle_limit", 10 * DAY, t(13), 1)
    assert (rec.held_since, rec.last_follow_up_at, rec.rep) == (t(0), t(3), "alice")
    assert rec.actor_kind == "rule" and holdings.actor_kind == "rule"
    assert holdings.held == 1
    after = lead(claimed("alice", 0), followed("alice", 3), rec)
    assert (after.status, after.owner) == (POOLED, None)


def test_sweep_exactly_at_the_deadline_recycles():
    events = decisions.sweep_lead(lead(claimed("alice", 0)), pool(), desk(held=1), t(10), "root")
    assert types(events)[0] == "LeadRecycled"


def test_sweep_warns_once_before_the_deadline():
    history = lead(claimed("alice", 0))
    assert decisions.sweep_lead(history, pool(), desk(held=1), t(7.9), "root") == []
    events = decisions.sweep_lead(history, pool(), desk(held=1), t(8), "root")
    assert types(events) == ["RecycleWarned"]
    warning = events[0]
    assert (warning.rep, warning.rule, warning.recycle_at, warning.actor_kind) == ("alice", "idle_limit", t(10), "rule")
    again = lead(claimed("alice", 0), warning)
    assert decisions.sweep_lead(again, pool(), desk(held=1), t(9), "root") == []
    assert types(decisions.sweep_lead(again, pool(), desk(held=1), t(10), "root"))[0] == "LeadRecycled"


def test_a_follow_up_earns_a_new_warning_for_the_new_deadline():
    history = lead(claimed("alice", 0), warned("alice", 8, t(10)), followed("alice", 9))
    assert decisions.sweep_lead(history, pool(), desk(held=1), t(16), "root") == []
    events = decisions.sweep_lead(history, pool(), desk(held=1), t(17), "root")
    assert types(events) == ["RecycleWarned"] and events[0].recycle_at == t(19)


def test_sweep_before_the_leads_latest_event_does_nothing():
    history = lead(claimed("alice", 0), followed("alice", 20))
    assert decisions.sweep_lead(history, pool(), desk(held=1), t(15), "root") == []


def test_same_history_same_decisions():
    history = lead(claimed("alice", 0), followed("alice", 2), released("alice", 3), claimed("bob", 4))
    first = decisions.sweep_lead(history, pool(), desk("bob", held=1), t(30), "root")
    second = decisions.sweep_lead(history, pool(), desk("bob", held=1), t(30), "root")
    assert first == second and types(first)[0] == "LeadRecycled"


# --- deactivation ---------------------------------------------------------------------------

def test_return_on_deactivation():
    events = decisions.return_on_deactivation(lead(claimed("alice", 1)), desk(held=2), ROOT, t(2))
    assert types(events) == ["LeadReturned", "HoldingsChanged"]
    assert events[0].rep == "alice" and events[1].held == 1
    assert lead(claimed("alice", 1), events[0]).status == POOLED


def test_hand_over_respects_membership_only():
    held = lead(claimed("alice", 1))
    events = decisions.hand_over(held, pool(), desk(held=1), desk("bob", held=2), BOB, ROOT, t(2),
                                 reason="owner alice deactivated")
    assert types(events) == ["LeadReassigned", "HoldingsChanged", "HoldingsChanged"]
    assert events[2].held == 3  # above claim_limit 2: a ruling is not blocked by a limit
    assert lead(claimed("alice", 1), events[0]).owner == "bob"
    with pytest.raises(Refused) as e:
        decisions.hand_over(held, pool(), desk(held=1), desk("dave"), DAVE, ROOT, t(2), reason="x")
    assert e.value.code == "not_pool_member"


def test_hand_over_of_a_converted_lead_keeps_it_converted():
    done = lead(claimed("alice", 1), converted("alice", 2))
    events = decisions.hand_over(done, pool(), desk(), desk("bob"), BOB, ROOT, t(3), reason="x")
    assert types(events) == ["LeadReassigned"]
    after = lead(claimed("alice", 1), converted("alice", 2), events[0])
    assert (after.status, after.owner, after.deal) == (CONVERTED, "bob", "D-1")


def test_state_after_claim_and_release():
    held = lead(claimed("alice", 1))
    assert (held.status, held.owner, held.placed_position, held.placed_by) == (HELD, "alice", 20, "LeadClaimed")
    back = lead(claimed("alice", 1), released("alice", 2))
    assert (back.status, back.owner, back.left("alice")) == (POOLED, None, t(2))
