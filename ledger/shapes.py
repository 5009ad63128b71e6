"""The JSON shapes of stored things, shared by every query: events, intervals, rules."""

from __future__ import annotations

from typing import Any

import msgspec

from ledger import events as ev
from ledger.store import Stored
from ledger.values import format_duration, format_time

BACKDATED_AFTER = 300  # seconds between occurred_at and recorded_at before an event is "backdated"
RULE_NAMES = ("claim_limit", "daily_claim_limit", "idle_limit", "hold_limit", "cooldown", "warn_before")
DURATION_RULES = ("idle_limit", "hold_limit", "cooldown", "warn_before")


def event_dict(stored: Stored) -> dict[str, Any]:
    """An event as other tools see it: position, version, type, times, actor, its fields."""
    fields = msgspec.to_builtins(stored.event)
    kind = fields.pop("type")
    occurred = stored.event.occurred_at
    return {
        "position": stored.position,
        "version": stored.version,
        "type": kind,
        "occurred_at": format_time(occurred),
        "recorded_at": format_time(stored.recorded_at),
        "actor": fields.pop("actor"),
        "actor_kind": fields.pop("actor_kind"),
        "backdated": abs((stored.recorded_at - occurred).total_seconds()) > BACKDATED_AFTER,
        **{k: v for k, v in fields.items() if k != "occurred_at"},
    }


def ownership_intervals(stored: list[Stored]) -> list[dict[str, Any]]:
    intervals: list[dict[str, Any]] = []
    for s in stored:
        e = s.event
        if isinstance(e, ev.OWNERSHIP_ENDS) and intervals and intervals[-1]["to"] is None:
            intervals[-1].update(to=format_time(e.occurred_at), end_position=s.position,
                                 ended_by=type(e).__name__)
        if isinstance(e, ev.OWNERSHIP_STARTS):
            intervals.append({"owner": e.rep, "from": format_time(e.occurred_at), "to": None,
                              "start_position": s.position, "end_position": None, "ended_by": None,
                              "started_by": type(e).__name__, "dispute": getattr(e, "dispute", None)})
    return intervals


def rules_dict(rules: ev.Rules) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in RULE_NAMES:
        value = getattr(rules, name)
        out[name] = format_duration(value) if name in DURATION_RULES else value
    return out
