"""The ledger driven by random commands against a simple model, on SQLite and PostgreSQL.

Several reps, a manager, two pools (claim limits 2 and 1; one rep outside the second),
five leads, and a clock that only moves forward. After every step: each lead has at most
one owner, no rep holds more than a pool's claim limit (by his desk and by the read
models), the state rebuilt from events equals the model, and `verify` passes.

Runs are reproducible (no example database); set LEADLEDGER_STATEFUL_EXAMPLES to search
longer. Every counterexample found is kept below as a plain test.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test

from ledger.application import Ledger
from ledger.errors import LedgerError
from tests.conftest import PG, drop_schema, pg_url

T0 = datetime.fromisoformat("2026-03-02T09:00:00+00:00")
REPS = ["r1", "r2", "r3"]
POOLS = {"p1": 2, "p2": 1}  # pool -> claim_limit
MEMBERS = {"p1": {"r1", "r2", "r3"}, "p2": {"r1", "r2"}}
LEADS = {"L1": "p1", "L2": "p1", "L3": "p1", "L4": "p2", "L5": "p2"}
IDLE = timedelta(days=2)
COOLDOWN = timedelta(days=1)
EXAMPLES = int(os.environ.get("LEADLEDGER_STATEFUL_EXAMPLES", "10"))
STEPS = 40

reps = st.sampled_from(REPS)
leads = st.sampled_from(sorted(LEADS))
steer = st.sampled_from([True, True, True, False])  # mostly pick a lead the command can act on


@dataclass
class ModelLead:
    pool: str
    owner: str | None = None
    status: str = "pooled"
    since: datetime = T0
    last_follow_up: datetime | None = None
    left: dict[str, datetime] = field(default_factory=dict)


class LedgerMachine(RuleBasedStateMachine):
    """Subclassed per backend with a `new_store()` that returns a fresh, empty store URL."""

    def new_store(self) -> str:
        raise NotImplementedError

    def drop_store(self, url: str) -> None:
        pass

    def __init__(self) -> None:
        super().__init__()
        self.url = self.new_store()
        self.ledger = Ledger(self.url)
        self.now = T0
        self.leads = {lead: ModelLead(pool) for lead, pool in LEADS.items()}
        self.ready = False

    @initialize()
    def set_up(self) -> None:
        led, at = self.ledger, self.now
        led.init("root", "Root", at=at)
        led.add_person("root", "mgr", "Manager", "manager", at=at)
        for rep in REPS:
            led.add_person("root", rep, rep.upper(), "rep", at=at)
        for pool, limit in POOLS.items():
            led.create_pool("root", pool, pool.upper(), at=at, claim_limit=limit, idle_limit="2d",
                            hold_limit=0, cooldown="1d", warn_before="12h")
            led.grant("root", pool, sorted(MEMBERS[pool] | {"mgr"}), at=at)
        for lead, pool in LEADS.items():
            led.add_lead("mgr", lead, pool, at=at)
        self.ready = True

    def teardown(self) -> None:
        self.ledger.close()
        self.drop_store(self.url)

    # --- the model ----------------------------------------------------------------------

    def held(self, rep: str, pool: str) -> int:
        return sum(1 for m in self.leads.values() if m.owner == rep and m.pool == pool and m.status == "held")

    def pick(self, lead: str, wanted) -> str:
        """Steer the search: a lead in the wanted state, if any (else the one drawn)."""
        found = [name for name, m in sorted(self.leads.items()) if wanted(m)]
        return found[sorted(LEADS).index(lead) % len(found)] if found else lead

    def owned_refusal(self, m: ModelLead) -> str:
        return "lead_converted" if m.status == "converted" else "lead_owned"

    def take(self, m: ModelLead, rep: str) -> None:
        if m.owner is not None:
            m.left[m.owner] = self.now
        m.owner, m.status, m.since, m.last_follow_up = rep, "held", self.now, None

    def leave(self, m: ModelLead) -> None:
        m.left[m.owner] = self.now
        m.owner, m.status, m.since, m.last_follow_up = None, "pooled", self.now, None

    def expect(self, outcome: str | None, call) -> None:
        """Run a command; `outcome` None means it succeeds, else the error code it must fail with."""
        try:
            call()
            got = None
        except LedgerError as e:
            got = e.code
        assert got == outcome, f"expected {outcome or 'success'}, got {got or 'success'}"

    def owner_check(self, m: ModelLead, rep: str) -> str | None:
        if m.status == "pooled":
            return "lead_pooled"
        if m.owner != rep:
            return "not_owner"
        return "lead_converted" if m.status == "converted" else None

    def as_owner(self, lead: str, rep: str, by_owner: bool) -> tuple[str, ModelLead, str, str | None]:
        """For an owner-only command: steered to a held lead and its owner when `by_owner`;
        the lead, its model, the rep acting, and the refusal the model expects (or None)."""
        if by_owner:
            lead = self.pick(lead, lambda m: m.owner is not None)
        m = self.leads[lead]
        rep = m.owner if by_owner and m.owner else rep
        return lead, m, rep, self.owner_check(m, rep)

    # --- commands -----------------------------------------------------------------------

    @rule(hours=st.sampled_from([0, 1, 6, 13, 25, 49]))
    def tick(self, hours: int) -> None:
        self.now += timedelta(hours=hours)

    @rule(rep=reps, lead=leads, pooled=steer)
    def claim(self, rep: str, lead: str, pooled: bool = False) -> None:
        if pooled:
            lead = self.pick(lead, lambda m: m.status == "pooled")
        m = self.leads[lead]
        outcome = None
        if m.status != "pooled":
            outcome = self.owned_refusal(m)
        elif rep not in MEMBERS[m.pool]:
            outcome = "not_pool_member"
        elif rep in m.left and self.now < m.left[rep] + COOLDOWN:
            outcome = "cooldown_active"
        elif self.held(rep, m.pool) >= POOLS[m.pool]:
            outcome = "claim_limit_reached"
        self.expect(outcome, lambda: self.ledger.claim(rep, lead, at=self.now))
        if outcome is None:
            self.take(m, rep)

    @rule(rep=reps, lead=leads, by_owner=steer)
    def release(self, rep: str, lead: str, by_owner: bool = False) -> None:
        lead, m, rep, outcome = self.as_owner(lead, rep, by_owner)
        self.expect(outcome, lambda: self.ledger.release(rep, lead, at=self.now))
        if outcome is None:
            self.leave(m)

    @rule(rep=reps, lead=leads, by_owner=steer)
    def follow_up(self, rep: str, lead: str, by_owner: bool = False) -> None:
        lead, m, rep, outcome = self.as_owner(lead, rep, by_owner)
        if outcome == "lead_converted":
            outcome = None  # an owner may follow up on a converted lead
        self.expect(outcome, lambda: self.ledger.follow_up(rep, lead, "called", at=self.now))
        if outcome is None:
            m.last_follow_up = self.now

    @rule(rep=reps, lead=leads, by_owner=steer)
    def convert(self, rep: str, lead: str, by_owner: bool = False) -> None:
        lead, m, rep, outcome = self.as_owner(lead, rep, by_owner)
        self.expect(outcome, lambda: self.ledger.convert(rep, lead, at=self.now))
        if outcome is None:
            m.status = "converted"

    @rule(rep=reps, lead=leads)
    def assign(self, rep: str, lead: str) -> None:
        m = self.leads[lead]
        outcome = None
        if m.status != "pooled":
            outcome = self.owned_refusal(m)
        elif rep not in MEMBERS[m.pool]:
            outcome = "not_pool_member"
        elif self.held(rep, m.pool) >= POOLS[m.pool]:
            outcome = "claim_limit_reached"
        self.expect(outcome, lambda: self.ledger.assign("mgr", lead, rep, at=self.now))
        if outcome is None:
            self.take(m, rep)

    @rule(rep=reps, lead=leads, held=steer)
    def reassign(self, rep: str, lead: str, held: bool = False) -> None:
        if held:
            lead = self.pick(lead, lambda m: m.owner is not None)
        m = self.leads[lead]
        outcome = None
        if m.owner == rep and m.status == "held":
            outcome = "invalid_input"
        elif m.status == "converted":
            outcome = "lead_converted"
        elif m.status == "pooled":
            outcome = "lead_pooled"
        elif rep not in MEMBERS[m.pool]:
            outcome = "not_pool_member"
        elif self.held(rep, m.pool) >= POOLS[m.pool]:
            outcome = "claim_limit_reached"
        self.expect(outcome, lambda: self.ledger.reassign("mgr", lead, rep, "rebalance", at=self.now))
        if outcome is None:
            self.take(m, rep)

    @rule()
    def sweep(self) -> None:
        due = sorted(lead for lead, m in self.leads.items()
                     if m.status == "held" and self.now >= max(m.since, m.last_follow_up or m.since) + IDLE)
        result = self.ledger.sweep("mgr", now=self.now)
        assert sorted(r["lead"] for r in result["recycled"]) == due
        for lead in due:
            self.leave(self.leads[lead])

    # --- invariants ---------------------------------------------------------------------

    @invariant()
    def state_equals_model(self) -> None:
        if not self.ready:
            return
        for lead, m in self.leads.items():
            shown = self.ledger.lead_show(lead)
            assert (shown["owner"], shown["status"], shown["pool"]) == (m.owner, m.status, m.pool), lead

    @invariant()
    def one_owner_and_limits(self) -> None:
        if not self.ready:
            return
        seen: dict[str, str] = {}
        for rep in REPS:
            holdings = self.ledger.holdings(rep)
            held = sorted(h["lead"] for h in holdings["leads"] if h["status"] == "held")
            assert held == sorted(lead for lead, m in self.leads.items()
                                  if m.owner == rep and m.status == "held")
            for h in holdings["leads"]:
                assert h["lead"] not in seen, f"{h['lead']} held by {seen.get(h['lead'])} and {rep}"
                seen[h["lead"]] = rep
            for pool, limit in POOLS.items():
                assert holdings["count_by_pool"].get(pool, 0) <= limit
                assert self.ledger._desk(rep, pool).held == self.held(rep, pool) <= limit

    @invariant()
    def verifies(self) -> None:
        if not self.ready:
            return
        assert self.ledger.verify()["ok"] is True


class SQLiteMachine(LedgerMachine):
    folder: str = ""

    def new_store(self) -> str:
        return f"sqlite:///{os.path.join(self.folder, uuid.uuid4().hex + '.db')}"

    def drop_store(self, url: str) -> None:
        path = url[len("sqlite:///"):]
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(path + suffix):
                os.remove(path + suffix)


class PostgresMachine(LedgerMachine):
    def new_store(self) -> str:
        self.schema = "t_" + uuid.uuid4().hex[:12]
        return pg_url(self.schema)

    def drop_store(self, url: str) -> None:
        drop_schema(self.schema)


SETTINGS = settings(max_examples=EXAMPLES, stateful_step_count=STEPS, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow], print_blob=True)


def machine(backend: str, tmp_path) -> type[LedgerMachine]:
    if backend == "sqlite":
        return type("SQLiteRun", (SQLiteMachine,), {"folder": str(tmp_path)})
    if not PG:
        pytest.skip("LEADLEDGER_TEST_PG is not set")
    return PostgresMachine


def test_ledger_against_the_model(backend, tmp_path):
    run_state_machine_as_test(machine(backend, tmp_path), settings=SETTINGS)


# --- fixed sequences, replayed on every run ------------------------------------------------------
# The search has found no counterexample in the ledger so far. Each one it finds is added
# here as a `run_steps` test, so it stays checked whatever the search draws next; the two
# below pin paths the search reaches only rarely (a limit of 1 with conversions, recycling
# followed by the cooldown).

def run_steps(backend: str, tmp_path, steps) -> None:
    """Replay a fixed sequence of (rule, kwargs) on a fresh machine, checking invariants after each."""
    m = machine(backend, tmp_path)()
    try:
        m.set_up()
        for name, kwargs in steps:
            getattr(m, name)(**kwargs)
            m.state_equals_model()
            m.one_owner_and_limits()
            m.verifies()
    finally:
        m.teardown()


def test_steps_reassign_to_a_rep_at_his_limit_is_refused(backend, tmp_path):
    run_steps(backend, tmp_path, [
        ("claim", {"rep": "r1", "lead": "L4"}),
        ("claim", {"rep": "r2", "lead": "L5"}),
        ("reassign", {"rep": "r1", "lead": "L5"}),
        ("convert", {"rep": "r1", "lead": "L4"}),
        ("reassign", {"rep": "r1", "lead": "L5"}),
    ])


def test_steps_sweep_recycles_then_cooldown_then_claim(backend, tmp_path):
    run_steps(backend, tmp_path, [
        ("claim", {"rep": "r1", "lead": "L1"}),
        ("tick", {"hours": 49}),
        ("sweep", {}),
        ("claim", {"rep": "r1", "lead": "L1"}),
        ("tick", {"hours": 25}),
        ("claim", {"rep": "r1", "lead": "L1"}),
        ("follow_up", {"rep": "r1", "lead": "L1"}),
    ])
