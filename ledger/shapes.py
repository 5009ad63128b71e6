"""The JSON shapes of stored things, shared by every query: events, intervals, rules, disputes."""

from __future__ import annotations

from typing import Any

import msgspec

from ledger import events as ev
from ledger.state import Dispute, Lead, Pool
from ledger.store import Stored
from ledger.values import format_duration, format_time

BACKDATED_AFTER = 300  # seconds between occurred_at and recorded_at before an event is "backdated"
RULE_NAMES: tuple[str, ...] = ev.Rules.__struct_fields__
# The claim limits are counts; every other rule is a duration (whole seconds).
DURATION_RULES = tuple(name for name in RULE_NAMES if not name.endswith("claim_limit"))


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


def rules_row(pool: Pool, version: int) -> dict[str, Any] | None:
    """A rule version of a pool: when it came in, where, and its rules."""
    for rv in pool.rule_versions:
        if rv.version == version:
            return {"version": rv.version, "since": format_time(rv.since), "position": rv.position,
                    **rules_dict(rv.rules)}
    return None


def attributes_dict(lead: Lead) -> dict[str, Any]:
    """A lead's attributes, every one named (None when not given)."""
    return {name: getattr(lead.attributes, name) for name in ev.Attributes.__struct_fields__}


def dispute_brief(d: Dispute) -> dict[str, Any]:
    return {
        "dispute": d.id, "lead": d.lead, "status": "resolved" if d.outcome else "open",
        "opened_by": d.opened_by, "opened_at": format_time(d.opened_at), "reason": d.reason,
        "owner_at_open": d.owner_at_open, "open_position": d.position, "outcome": d.outcome,
        "resolved_by": d.resolved_by, "resolved_at": format_time(d.resolved_at), "rationale": d.rationale,
        "awarded_to": d.awarded_to, "resolved_position": d.resolved_position,
    }


def pool_view(pool: Pool, pooled: list[str], held: int, converted: int) -> dict[str, Any]:
    """The shape of `pool show`; a pool not created yet has no name, rules or members (the
    leads the log places in it all the same are counted: history may be stated before it)."""
    if not pool.exists:
        return {"pool": pool.id, "name": None, "rules": {}, "rules_version": None, "members": [],
                "pooled": pooled, "held_count": held, "converted_count": converted, "rule_versions": [],
                "exists": False}
    return {
        "pool": pool.id, "name": pool.name, "rules": rules_dict(pool.rules),
        "rules_version": pool.rules_version, "members": sorted(pool.members),
        "pooled": pooled, "held_count": held, "converted_count": converted,
        "rule_versions": [
            {"version": rv.version, "since": format_time(rv.since), "position": rv.position,
             "rules": rules_dict(rv.rules)} for rv in pool.rule_versions
        ],
    }
