"""Races between real OS processes, on SQLite and on PostgreSQL.

Each process opens its own ledger on the shared store; all are released together by a
barrier. In the "forced" variants each process also holds its first append until every
process has read and decided, so the losers certainly hit a version conflict and must
re-read and decide again inside the ledger. Whatever the interleaving, the rules "at most one owner" and "claim_limit"
hold, the loser sees an ordinary refusal (recorded where rule 7 says so), no write is
lost, and the hash chains verify.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest

from ledger import events as ev
from ledger.application import Ledger
from ledger.disclosure import opened_log
from ledger.state import desk_stream, lead_stream
from ledger.values import normal_phone
from tests.conftest import T0
from tests.races import workers

CLAIMED = (ev.LeadClaimed, ev.LeadAssigned)
LEFT = (ev.LeadReleased, ev.LeadReturned, ev.LeadRecycled, ev.LeadConverted)


def build(store_url: str, reps: list[str], *, claim_limit: int, leads: int, managers=(), cooldown="7d") -> None:
    """Pool `east` with the given reps and managers as members, and leads L-1..L-n in it."""
    with Ledger(store_url) as led:
        led.init("root", "Root Admin", at=T0)
        for person in reps:
            led.add_person("root", person, person.title(), "rep", at=T0)
        for person in managers:
            led.add_person("root", person, person.title(), "manager", at=T0)
        led.create_pool("root", "east", "East", at=T0, claim_limit=claim_limit, cooldown=cooldown)
        led.grant("root", "east", [*reps, *managers], at=T0)
        for i in range(1, leads + 1):
            led.add_lead("root", f"L-{i}", "east", company=f"Company {i}", phone=f"1390000{i:04d}", at=T0)


def log(store_url: str) -> list:
    with Ledger(store_url) as led:  # personal fields opened (they are stored sealed)
        return opened_log(led.store, led.store.read_log(after=0, limit=10**9))[0]


def verified(store_url: str) -> dict:
    with Ledger(store_url) as led:
        result = led.verify()
    assert result["ok"] is True
    assert result["events_checked"] == len(log(store_url))
    return result


def no_tracebacks(reports: list[dict]) -> None:
    for report in reports:
        assert "traceback" not in report, report["traceback"]
        assert report["exitcode"] == 0, report


def outcomes(reports: list[dict]) -> list[dict]:
    return [o for r in reports for o in r["outcomes"]]


ROUNDS = 3  # each race runs this many times, on fresh leads (and people) each round


def race_rounds(store_url: str, jobs_of, check, *, forced: bool = False) -> None:
    """Run a race ROUNDS times in the same processes: `jobs_of(r)` sets round r up and returns
    its (work, job) pairs; `check(r, reports, before)` gets its reports and the log length
    before it, right after the round (later rounds have not run yet)."""
    befores: list[int] = []

    def jobs(r: int) -> list:
        pairs = jobs_of(r)
        befores.append(len(log(store_url)))
        return pairs

    workers.race_rounds(ROUNDS, jobs, lambda r, reports: check(r, reports, befores[r]), forced=forced)


# --- 1. many reps, one lead ---------------------------------------------------------------------

@pytest.mark.parametrize("forced", [False, True], ids=["barrier", "forced"])
def test_eight_reps_claim_one_lead_one_owner(store_url, forced):
    reps = [f"rep{i}" for i in range(1, 9)]
    build(store_url, reps, claim_limit=5, leads=ROUNDS)  # a winner holds at most ROUNDS < 5
    race_rounds(store_url, lambda r: [
        (workers.command, {"store": store_url, "actor": rep, "args": ["claim", f"L-{r + 1}"]}) for rep in reps
    ], lambda r, reports, before: eight_reps_checked(store_url, reps, f"L-{r + 1}", reports, before, forced),
        forced=forced)


def eight_reps_checked(store_url, reps, lead, reports, before, forced) -> None:
    no_tracebacks(reports)
    for r in reports:
        assert r["stderr"] == ""
        assert r["code"] in (0, 1), r
    answers = [json.loads(r["stdout"]) for r in reports]
    won = [(rep, a) for rep, r, a in zip(reps, reports, answers, strict=True) if r["code"] == 0]
    lost = [(rep, a) for rep, r, a in zip(reps, reports, answers, strict=True) if r["code"] == 1]
    assert len(won) == 1 and len(lost) == 7
    winner, claimed = won[0]
    assert claimed["owner"] == winner and claimed["event"] == "LeadClaimed"
    for _, answer in lost:
        error = answer["error"]
        assert error["code"] == "lead_owned"
        assert error["owner"] == winner
        assert error["owner_since_position"] == claimed["position"]
    if forced:  # every loser had decided to claim, lost the append, re-read and refused
        assert sum(r["conflicts"] for r in reports) >= 7

    events = log(store_url)[before:]
    assert len(events) == 2 + 7  # the claim, its holdings change, and seven refusals
    assert [type(s.event) for s in events].count(ev.LeadClaimed) == 1
    refused = [s for s in events if isinstance(s.event, ev.ClaimRefused)]
    assert sorted(s.event.rep for s in refused) == sorted(rep for rep, _ in lost)
    assert {s.position for s in refused} == {a["error"]["refusal_position"] for _, a in lost}
    for s in refused:
        assert s.event.reason == "lead_owned"
        assert s.event.owner == winner
        assert s.event.owner_since_position == claimed["position"]
    with Ledger(store_url) as led:
        assert led.owner(lead)["owner"] == winner
    verified(store_url)


# --- 2. one rep, many leads, claim_limit -----------------------------------------------------

@pytest.mark.parametrize("forced", [False, True], ids=["barrier", "forced"])
def test_one_rep_claims_six_leads_at_once_within_claim_limit(store_url, forced):
    build(store_url, [f"alice{r}" for r in range(ROUNDS)], claim_limit=2, leads=6 * ROUNDS)

    def jobs(r: int) -> list:  # a rep of his own and six leads of their own each round
        return [(workers.api, {"store": store_url, "calls": [("claim", [f"alice{r}", f"L-{6 * r + i}"], {})]})
                for i in range(1, 7)]

    race_rounds(store_url, jobs, lambda r, reports, before: six_leads_checked(
        store_url, f"alice{r}", reports, before, forced), forced=forced)


def six_leads_checked(store_url, alice, reports, before, forced) -> None:
    no_tracebacks(reports)
    done = outcomes(reports)
    owned = [o for o in done if "result" in o]
    refused = [o for o in done if "error" in o]
    assert len(owned) == 2 and len(refused) == 4
    for o in refused:
        assert o["error"]["code"] == "claim_limit_reached" and o["exit"] == 1
        assert o["error"]["held"] == 2 and o["error"]["claim_limit"] == 2
    if forced:  # all six decided from an empty desk; five lost the append at least once
        assert sum(r["conflicts"] for r in reports) >= 5

    events = log(store_url)[before:]
    assert len(events) == 2 * 2 + 4
    assert sorted(s.event.lead for s in events if isinstance(s.event, ev.LeadClaimed)) == \
        sorted(o["result"]["lead"] for o in owned)
    recorded = [s for s in events if isinstance(s.event, ev.ClaimRefused)]
    assert sorted(s.event.lead for s in recorded) == sorted(o["args"][1] for o in refused)
    assert all(s.event.reason == "claim_limit_reached" for s in recorded)
    with Ledger(store_url) as led:
        assert led.store.read_last(desk_stream(alice, "east")).event.held == 2
        assert led.holdings(alice)["count_by_pool"] == {"east": 2}
    verified(store_url)


# --- 3. a storm of mixed commands ----------------------------------------------------------------

# The refusals each command may meet in the storm; those of claim, assign and reassign are
# recorded, a refused release writes nothing.
ALLOWED = {
    "claim": {"lead_owned", "claim_limit_reached"},
    "release": {"not_owner", "lead_pooled"},
    "assign": {"lead_owned", "claim_limit_reached"},
    "reassign": {"lead_pooled", "claim_limit_reached"},
}
RECORDED = {"claim", "assign", "reassign"}
EVENTS_PER_SUCCESS = {"claim": 2, "release": 2, "assign": 2, "reassign": 3}


def test_storm_of_claims_releases_and_assignments(store_url):
    managers, limit = ["mgr1", "mgr2"], 2
    everyone = [f"{rep}{r}" for r in range(ROUNDS) for rep in ("alice", "bob", "carol")]
    build(store_url, everyone, claim_limit=limit, leads=7 * ROUNDS, managers=managers, cooldown="0")

    def jobs(r: int) -> list:  # three reps and seven leads of their own each round
        reps, leads = everyone[3 * r:3 * r + 3], [f"L-{7 * r + i}" for i in range(1, 8)]
        pairs = [{"store": store_url, "actor": a, "role": "rep", "leads": leads, "reps": reps,
                  "seconds": 1, "seed": 100 * r + n} for n, a in enumerate(reps)]
        pairs += [{"store": store_url, "actor": a, "role": "manager", "leads": leads, "reps": reps,
                   "seconds": 1, "seed": 100 * r + 10 + n} for n, a in enumerate(managers)]
        return [(workers.storm, job) for job in pairs]

    race_rounds(store_url, jobs, lambda r, reports, before: storm_checked(
        store_url, [f"L-{7 * r + i}" for i in range(1, 8)], limit, reports, before))


def storm_checked(store_url, leads, limit, reports, before) -> None:
    no_tracebacks(reports)
    assert all(r["outcomes"] for r in reports)
    done = outcomes(reports)
    for o in done:
        if "error" in o:
            code = o["error"]["code"]
            benign = code == "invalid_input" and o["call"] == "reassign" and "already held by" in o["error"]["message"]
            assert code in ALLOWED[o["call"]] or benign, o
    succeeded = [o for o in done if "result" in o]
    recorded = [o for o in done if "error" in o and o["call"] in RECORDED and o["error"]["code"] != "invalid_input"]
    assert Counter(o["call"] for o in succeeded)["claim"] > 0

    # Every success and every recorded refusal is in the log, and nothing else was written.
    events = log(store_url)
    at = {s.position: s for s in events}
    for o in succeeded:
        stored = at[o["result"]["position"]]
        assert type(stored.event).__name__ == o["result"]["event"] and stored.event.lead == o["args"][1]
    for o in recorded:
        stored = at[o["error"]["refusal_position"]]
        assert isinstance(stored.event, ev.ClaimRefused if o["call"] == "claim" else ev.AssignmentRefused)
        assert stored.event.reason == o["error"]["code"]
    assert len(events) - before == sum(EVENTS_PER_SUCCESS[o["call"]] for o in succeeded) + len(recorded)

    with Ledger(store_url) as led:
        for lead in leads:
            intervals = ownership_intervals(lead, [s for s in events if s.stream == lead_stream(lead)])
            for a, b in zip(intervals, intervals[1:]):
                assert a[2] is not None and a[2] <= b[1], (lead, intervals)
            assert intervals == [(i["owner"], i["start_position"], i["end_position"])
                                 for i in led.history(lead)["ownership"]]
    holdings_never_exceed(events, limit)
    verified(store_url)


def ownership_intervals(lead: str, stream: list) -> list[tuple[str, int, int | None]]:
    """(owner, start, end) from one lead's events; every change must start from the owner it
    names, and every recorded refusal must state the lead's ownership at its position."""
    intervals: list[list] = []
    owner = None
    for s in stream:
        e = s.event
        if isinstance(e, (ev.ClaimRefused, ev.AssignmentRefused)):
            if e.reason == "lead_owned":
                assert (e.owner, e.owner_since_position) == (owner, intervals[-1][1]), (lead, s.position, e)
            elif e.reason == "lead_pooled":
                assert owner is None, (lead, s.position, e)
            continue
        if isinstance(e, CLAIMED):
            assert owner is None, f"{lead} taken by {e.rep} at #{s.position} while owned by {owner}"
        elif isinstance(e, ev.LeadReassigned):
            assert owner == e.from_rep, f"{lead} reassigned from {e.from_rep} at #{s.position}; owner {owner}"
        elif isinstance(e, LEFT) and not isinstance(e, ev.LeadConverted):
            assert owner == e.rep, f"{lead} left {e.rep} at #{s.position}; owner {owner}"
        else:
            continue
        if owner is not None:
            intervals[-1][2] = s.position
            owner = None
        if isinstance(e, (*CLAIMED, ev.LeadReassigned)):
            owner = e.rep
            intervals.append([owner, s.position, None])
    return [tuple(i) for i in intervals]


def holdings_never_exceed(events: list, limit: int) -> None:
    """Replay every lead event in position order: no rep ever held more than `limit` of the pool,
    and each desk event states the count the lead events give."""
    held: Counter = Counter()
    for s in events:
        e = s.event
        if isinstance(e, CLAIMED):
            held[e.rep] += 1
        elif isinstance(e, ev.LeadReassigned):
            held[e.from_rep] -= 1
            held[e.rep] += 1
        elif isinstance(e, LEFT):
            held[e.rep] -= 1
        elif isinstance(e, ev.HoldingsChanged):
            assert e.held == held[e.rep], (s.position, e)
        elif isinstance(e, (ev.ClaimRefused, ev.AssignmentRefused)) and e.reason == "claim_limit_reached":
            assert held[e.rep] >= limit, f"{e.rep} refused at #{s.position} holding {held[e.rep]} of {limit}"
        assert all(0 <= n <= limit for n in held.values()), (s.position, dict(held))


# --- 4. the same customer added twice at once -----------------------------------------------------

@pytest.mark.parametrize("forced", [False, True], ids=["barrier", "forced"])
@pytest.mark.parametrize("same_id", [False, True], ids=["two-ids", "same-id"])
def test_same_phone_added_twice_at_once(store_url, forced, same_id):
    build(store_url, ["alice", "bob"], claim_limit=2, leads=0)

    def jobs(r: int) -> list:
        phones = [f"+86 138-0013-800{r}", f"0086 1380013800{r}"]  # the same number once normalised
        return [(workers.api, {"store": store_url, "calls": [
            ("add_lead", [rep, f"L-9{r}" if same_id else f"L-{rep}{r}", "east"], {"phone": phone})]})
            for rep, phone in zip(["alice", "bob"], phones, strict=True)]

    race_rounds(store_url, jobs, lambda r, reports, before: same_phone_checked(
        store_url, reports, before, forced, same_id), forced=forced)


def same_phone_checked(store_url, reports, before, forced, same_id) -> None:
    no_tracebacks(reports)
    done = outcomes(reports)
    added = [o for o in done if "result" in o]
    refused = [o for o in done if "error" in o]
    assert len(added) == 1 and len(refused) == 1
    error = refused[0]["error"]
    assert refused[0]["exit"] == 1
    if same_id:
        assert error["code"] == "already_exists"
    else:
        assert error["code"] == "duplicate_lead"
        assert error["existing"] == added[0]["result"]["lead"]
    if forced:  # both decided from an empty index; the second append lost
        assert sum(r["conflicts"] for r in reports) >= 1

    events = log(store_url)[before:]
    assert [type(s.event) for s in events] == [ev.LeadAdded]  # a refused add writes nothing
    assert events[0].event.lead == added[0]["result"]["lead"]
    verified(store_url)


@pytest.mark.parametrize("forced", [False, True], ids=["barrier", "forced"])
def test_an_import_and_an_add_of_the_same_phone_at_once(store_url, forced):
    """The import looks its keys up before it takes the append lock; whichever writer appends
    second sees the other's key (the import: under the lock, as the log has moved on)."""
    build(store_url, ["alice"], claim_limit=2, leads=0, managers=["mgr"])

    def jobs(r: int) -> list:
        rows = [(i + 2, {"id": f"N{r}-{i}", "phone": f"137{r}000{i:04d}"}) for i in range(50)]
        rows.append((52, {"id": f"N{r}-shared", "phone": f"+86 138-0013-800{r}"}))
        return [
            (workers.api, {"store": store_url, "calls": [("import_leads", ["mgr", "east", rows], {})]}),
            (workers.api, {"store": store_url, "calls": [("add_lead", ["alice", f"L{r}-shared", "east"],
                                                          {"phone": f"0086 1380013800{r}"})]}),
        ]

    race_rounds(store_url, jobs, lambda r, reports, before: import_and_add_checked(
        store_url, r, reports, before, forced), forced=forced)


def import_and_add_checked(store_url, r, reports, before, forced) -> None:
    no_tracebacks(reports)
    imported, added = outcomes(reports)
    report = imported["result"]
    assert report["imported"] + len(report["duplicates"]) == 51 and report["rejected"] == []
    if "result" in added:  # the add came first: the import reports the shared row
        assert report["imported"] == 50
        assert [(d["lead"], d["duplicate_of"]) for d in report["duplicates"]] == [(f"N{r}-shared", f"L{r}-shared")]
    else:
        assert report["imported"] == 51 and report["duplicates"] == []
        assert added["error"]["code"] == "duplicate_lead" and added["error"]["existing"] == f"N{r}-shared"
    if forced:  # both decided from an empty index; the second append lost
        assert sum(r["conflicts"] for r in reports) >= 1

    events = log(store_url)[before:]
    assert len(events) == 51 and all(isinstance(s.event, ev.LeadAdded) for s in events)
    assert [s.event.lead for s in events if normal_phone(s.event.attributes.phone) == f"1380013800{r}"] \
        == [f"L{r}-shared" if "result" in added else f"N{r}-shared"]
    verified(store_url)


@pytest.mark.parametrize("forced", [False, True], ids=["barrier", "forced"])
def test_two_imports_sharing_customers_at_once(store_url, forced):
    """Two files with different ids but some of the same customers: each customer once."""
    build(store_url, ["alice"], claim_limit=2, leads=0, managers=["mgr", "meg"])

    def rows(prefix: str, r: int) -> list:
        own = [{"id": f"{prefix}-{i}", "email": f"{prefix}{i}@x.cn"} for i in range(40)]
        shared = [{"id": f"{prefix}-s{i}", "email": f"Shared{r}x{i}@X.CN "} for i in range(10)]
        return list(enumerate(own + shared, start=2))

    def jobs(r: int) -> list:
        return [(workers.api, {"store": store_url, "calls": [("import_leads", [actor, "east", rows(prefix + str(r), r)], {})]})
                for actor, prefix in [("mgr", "A"), ("meg", "B")]]

    race_rounds(store_url, jobs, lambda r, reports, before: two_imports_checked(store_url, reports, before, forced),
                forced=forced)


@pytest.mark.parametrize("forced", [False, True], ids=["barrier", "forced"])
def test_two_imports_in_small_batches_sharing_customers_at_once(store_url, forced):
    """The same, in batches of 7, the customers they share spread over both files: each
    import decides a batch while its previous one is appended; each customer still once."""
    build(store_url, ["alice"], claim_limit=2, leads=0, managers=["mgr", "meg"])

    def rows(prefix: str, r: int) -> list:
        leads = [{"id": f"{prefix}-{i}", "email": f"Shared{r}x{i}@X.CN " if i % 3 == 0 else f"{prefix}{i}@x.cn"}
                 for i in range(45)]
        return list(enumerate(leads, start=2))

    def jobs(r: int) -> list:
        return [(workers.api, {"store": store_url, "calls": [("import_leads", [actor, "east", rows(prefix + str(r), r)],
                                                               {"batch": 7})]})
                for actor, prefix in [("mgr", "A"), ("meg", "B")]]

    def checked(r, reports, before) -> None:
        no_tracebacks(reports)
        first, second = (o["result"] for o in outcomes(reports))
        assert first["imported"] + second["imported"] == 75  # 2 x 30 own, 15 shared once
        assert len(first["duplicates"]) + len(second["duplicates"]) == 15
        events = log(store_url)[before:]
        emails = [s.event.attributes.email.strip().lower() for s in events]
        assert len(events) == 75 and len(set(emails)) == 75
        verified(store_url)

    race_rounds(store_url, jobs, checked, forced=forced)


def two_imports_checked(store_url, reports, before, forced) -> None:
    no_tracebacks(reports)
    first, second = (o["result"] for o in outcomes(reports))
    assert first["imported"] + second["imported"] == 90
    assert len(first["duplicates"]) + len(second["duplicates"]) == 10
    assert {len(first["duplicates"]), len(second["duplicates"])} == {0, 10}  # one whole batch lost
    if forced:
        assert sum(r["conflicts"] for r in reports) >= 1
    events = log(store_url)[before:]
    emails = [s.event.attributes.email.strip().lower() for s in events]
    assert len(events) == 90 and len(set(emails)) == 90
    verified(store_url)


# --- 6. a deactivation hands leads over while the new owner is busy ---------------------------

def test_deactivation_hands_over_while_the_new_owner_claims(store_url):
    build(store_url, [f"{rep}{r}" for r in range(ROUNDS) for rep in ("alice", "bob")], claim_limit=50,
          leads=14 * ROUNDS, cooldown="0")

    def leads(r: int) -> tuple[list[str], list[str]]:
        return [f"L-{14 * r + i}" for i in range(1, 11)], [f"L-{14 * r + i}" for i in range(11, 15)]

    def jobs(r: int) -> list:  # alice{r} holds ten leads; bob{r} works four others meanwhile
        mine, busy = leads(r)
        with Ledger(store_url) as led:
            for lead in mine:
                led.claim(f"alice{r}", lead)
        pairs = [(workers.storm, {"store": store_url, "actor": f"bob{r}", "role": "rep", "leads": busy,
                                  "reps": [f"bob{r}"], "seconds": 1, "seed": 10 * r + n}) for n in range(3)]
        pairs.append((workers.api, {"store": store_url, "pause": 0.3, "calls": [
            ("deactivate_person", ["root", f"alice{r}"], {"reassign_to": f"bob{r}"})]}))
        return pairs

    race_rounds(store_url, jobs, lambda r, reports, before: hand_over_checked(
        store_url, f"alice{r}", f"bob{r}", *leads(r), reports, before))


def hand_over_checked(store_url, alice, bob, mine, busy, reports, before) -> None:
    no_tracebacks(reports)
    handed = reports[-1]["outcomes"][0]
    assert "result" in handed, handed
    assert sorted(m["lead"] for m in handed["result"]["reassigned"]) == sorted(mine)
    for o in outcomes(reports[:-1]):
        assert "result" in o or o["error"]["code"] in ALLOWED[o["call"]], o

    events = log(store_url)
    holdings_never_exceed(events, 50)  # every desk event states the count the lead events give
    with Ledger(store_url) as led:
        owned = [lead for lead in mine + busy if led.owner(lead)["owner"] == bob]
        assert led.store.read_last(desk_stream(bob, "east")).event.held == len(owned)
        assert led.store.read_last(desk_stream(alice, "east")).event.held == 0
        assert len(events) - before == 3 * len(mine) + 2 + sum(
            EVENTS_PER_SUCCESS[o["call"]] if "result" in o else o["call"] == "claim"
            for o in outcomes(reports[:-1]))
    verified(store_url)


@pytest.mark.parametrize("forced", [False, True], ids=["barrier", "forced"])
def test_deactivation_while_the_rep_claims(store_url, forced):
    """A rep claims a lead while he is being deactivated: afterwards he holds nothing, whichever
    append came first (his claim is refused as actor_inactive, or the lead is returned)."""
    build(store_url, [f"alice{r}" for r in range(ROUNDS)], claim_limit=50, leads=ROUNDS, cooldown="0")
    race_rounds(store_url, lambda r: [
        (workers.api, {"store": store_url, "calls": [("claim", [f"alice{r}", f"L-{r + 1}"], {})]}),
        (workers.api, {"store": store_url, "calls": [("deactivate_person", ["root", f"alice{r}"], {})]}),
    ], lambda r, reports, before: deactivation_checked(store_url, f"alice{r}", f"L-{r + 1}", reports),
        forced=forced)


def deactivation_checked(store_url, alice, lead, reports) -> None:
    no_tracebacks(reports)
    claim, gone = outcomes(reports)
    assert "result" in gone, gone
    assert "result" in claim or claim["error"]["code"] == "actor_inactive", claim
    returned = [m["lead"] for m in gone["result"]["returned"]]
    assert returned == ([lead] if "result" in claim else [])
    with Ledger(store_url) as led:
        assert led.owner(lead)["owner"] is None
        assert led.holdings(alice)["leads"] == []
        assert led.store.read_last(desk_stream(alice, "east")).event.held == 0
    verified(store_url)
