"""`leadledger demo`: a realistic small world, built through the public API, and its story."""

from __future__ import annotations

import os
import random
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from ledger.errors import InvalidInput, Refused, StoreUnavailable
from ledger.events import PersonRegistered
from ledger.i18n import _

CITIES = ["上海", "杭州", "苏州", "南京", "宁波", "无锡", "合肥", "广州", "深圳", "成都"]
TRADES = ["机械", "物流", "电子", "医疗", "教育", "餐饮", "化工", "纺织", "软件", "建材"]
KINDS = ["有限公司", "科技有限公司", "贸易有限公司", "集团"]
INDUSTRIES = ["manufacturing", "logistics", "electronics", "healthcare", "education", "retail", "software"]
SOURCES = ["trade-show", "website", "referral", "cold-call", "wechat"]


DEMO_ADMIN = "Zhou Admin"


def _make_room(ledger: Any) -> None:
    """The demo needs an empty store. It replaces an earlier demo's SQLite file, never a store
    holding any event the demo did not write itself (nor anything on PostgreSQL, where stored
    events cannot be deleted)."""
    store = ledger.store
    try:
        store.ensure_ready()
        first = store.read_log(after=0, limit=1)
    except StoreUnavailable:
        return  # nothing there yet
    if not first:
        return
    e = first[0].event
    if store.kind == "sqlite" and isinstance(e, PersonRegistered) and e.name == DEMO_ADMIN \
            and _only_the_demo(type(ledger), store):
        store.close()
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(store.path + suffix):
                os.remove(store.path + suffix)
        return
    raise InvalidInput(
        _("the store {store} already holds a ledger; the demo needs a fresh one: "
          "pass --store sqlite:///demo.db, or a PostgreSQL URL with an unused ?schema=NAME", store=store.url)
    )


def _only_the_demo(ledger_type: Any, store: Any) -> bool:
    """Whether the store holds the demo's events and nothing else. The demo is deterministic
    (fixed times, a seeded random), so it is built again beside the store, in a file of its
    own, and the two logs are compared event by event: a command anyone ran on the demo's
    store afterwards (or a ledger whose admin merely shares the demo admin's name) differs."""
    with tempfile.TemporaryDirectory() as folder, ledger_type(f"sqlite:///{folder}/demo.db") as fresh:
        _set_up(fresh, _moments(), lambda _text: None)
        _play(fresh, _moments())
        ours = fresh.store.read_log(after=0, limit=10**9)
    found = store.read_log(after=0, limit=len(ours) + 1)
    return len(found) == len(ours) and all(
        (a.stream, a.version, _unsealed(a.event)) == (b.stream, b.version, _unsealed(b.event))
        for a, b in zip(found, ours, strict=True))


def _unsealed(event: Any) -> Any:
    """An event without its sealed personal fields, whose ciphertext differs each time (a fresh
    nonce under a fresh key) even for the same plaintext."""
    return msgspec.structs.replace(event, sealed=None) if getattr(event, "sealed", None) else event


def _moments() -> Callable[..., str]:
    """The demo's clock: (days, hours) after its start -> an --at."""
    t0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

    def at(days: float, hours: float = 0) -> str:
        return (t0 + timedelta(days=days, hours=hours)).isoformat().replace("+00:00", "Z")

    return at


Moment = Callable[..., str]  # (days, hours) after the demo's start -> an --at


def run_demo(ledger: Any, *, say: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Build the demo world in a fresh store and return (and optionally tell) its story."""
    say = say or (lambda _text: None)
    store = ledger.store
    _make_room(ledger)
    at = _moments()
    _set_up(ledger, at, say)
    story, dispute = _play(ledger, at)
    ledger.views.catch_up()
    for line in story:
        say("  " + line)
    say("")
    say(_("Try next:"))
    for cmd in ("leadledger history L-1001", "leadledger owner L-1002 --at 2026-03-10T00:00:00Z",
                "leadledger explain L-1002", "leadledger holdings alice", "leadledger pool show east",
                f"leadledger dispute show {dispute}", "leadledger --as bob claim L-1020",
                "leadledger verify"):
        say(f"  {cmd}")
    return {"store": store.url, "story": story, "dispute": dispute, "events": store.max_position()}


def _set_up(ledger: Any, at: Moment, say: Callable[[str], None]) -> None:
    """The admin, the team, two pools and 300 imported leads."""
    ledger.init("root", DEMO_ADMIN, at=at(0))
    people = [("mgr-li", "Li Manager", "manager", "east"), ("alice", "Alice Chen", "rep", "east"),
              ("bob", "Bob Wang", "rep", "east"), ("carol", "Carol Liu", "rep", "east"),
              ("dave", "Dave Zhang", "rep", "west"), ("audrey", "Audrey Xu", "auditor", None)]
    for pid, name, role, team in people:
        ledger.add_person("root", pid, name, role, team, at=at(0))
    ledger.create_pool("root", "east", "East China 华东", at=at(0), claim_limit=5, idle_limit="14d",
                       hold_limit="60d", cooldown="7d", warn_before="3d")
    ledger.create_pool("root", "west", "West China 西部", at=at(0), claim_limit=10)
    ledger.grant("root", "east", ["mgr-li", "alice", "bob", "carol"], at=at(0))
    ledger.grant("root", "west", ["mgr-li", "dave"], at=at(0))
    say(_("leadledger demo: a small sales team shares the East China lead pool (公海)."))
    say(_("  store: {store}", store=ledger.store.url))
    say(_("  people: root (admin), mgr-li (manager), alice, bob, carol (reps, east), dave (rep, west), "
          "audrey (auditor)"))

    rng = random.Random(20260302)
    rows = []
    for i in range(1, 301):
        company = f"{rng.choice(CITIES)}{rng.choice(TRADES)}{i:03d}{rng.choice(KINDS)}"
        rows.append((i + 1, {"id": f"L-{1000 + i}", "company": company, "contact": f"联系人{i}",
                             "phone": f"+86 139 {rng.randrange(1000, 9999)} {i:04d}",
                             "email": f"buyer{i}@example.cn", "region": company[:2],
                             "industry": rng.choice(INDUSTRIES), "source": rng.choice(SOURCES)}))
    imported = ledger.import_leads("mgr-li", "east", rows[:240], at=at(0, 1))
    ledger.import_leads("mgr-li", "west", rows[240:], at=at(0, 1))
    say(_("  day 0: mgr-li imported {imported} leads (240 east, 60 west)", imported=imported["imported"] + 60))


def _play(ledger: Any, at: Moment) -> tuple[list[str], str]:
    """Eighteen days of claims, follow-ups, a sweep and a dispute; the story and the dispute's id."""
    story = []
    ledger.claim("alice", "L-1001", at=at(1, 0.5))
    ledger.claim("alice", "L-1002", at=at(1, 0.6))
    ledger.claim("bob", "L-1003", at=at(1, 0.7))
    ledger.claim("carol", "L-1004", at=at(1, 0.8))
    try:
        ledger.claim("bob", "L-1001", at=at(1, 0.9))
    except Refused as e:
        story.append(_("day 1: bob tried to claim L-1001 but was refused ({code}): {message}",
                       code=e.code, message=e.message))
    ledger.follow_up("alice", "L-1001", "首次电话沟通，客户有采购意向", "call", at=at(2))
    ledger.follow_up("alice", "L-1001", "上门拜访，演示产品", "visit", at=at(9))
    ledger.follow_up("bob", "L-1003", "发送报价单", "email", at=at(3))
    ledger.assign("mgr-li", "L-1005", "carol", reason="carol covers 苏州", at=at(2))
    for n, lead in enumerate(["L-1006", "L-1007", "L-1008"]):
        ledger.claim("alice", lead, at=at(4, n))
    try:
        ledger.claim("alice", "L-1009", at=at(4, 5))
        ledger.claim("alice", "L-1010", at=at(4, 6))
    except Refused as e:
        story.append(_("day 4: alice hit her claim limit: {message}", message=e.message))
    ledger.release("bob", "L-1003", reason="customer chose a competitor", at=at(5))
    story.append(_("day 5: bob released L-1003 back to the pool (customer chose a competitor)"))
    ledger.convert("alice", "L-1001", deal="DEAL-2026-031", at=at(12))
    story.append(_("day 12: alice converted L-1001 (deal DEAL-2026-031) after a call and a visit"))
    sweep = ledger.sweep("root", now=at(16))
    which = ", ".join(_("{lead} from {rep}", lead=r["lead"], rep=r["from"]) for r in sweep["recycled"])
    story.append(_("day 16: the nightly sweep recycled {recycled} idle leads ({which}) and warned on {warned}",
                   recycled=len(sweep["recycled"]), which=which, warned=len(sweep["warned"])))
    ledger.claim("carol", "L-1002", at=at(17))
    dispute = ledger.open_dispute("bob", "L-1002", "我上周已经和这个客户的采购经理见过面", at=at(17, 2))
    story.append(_("day 17: carol claimed L-1002 after it was recycled from alice; bob opened dispute "
                   "{dispute} saying he met the customer first", dispute=dispute["dispute"]))
    ledger.resolve_dispute("audrey", dispute["dispute"], uphold=True,
                           rationale="No follow-up by bob on record; carol's claim stands.", at=at(18))
    story.append(_("day 18: audrey upheld carol's ownership of L-1002 ({dispute})", dispute=dispute["dispute"]))
    return story, dispute["dispute"]
