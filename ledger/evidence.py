"""Disputes as auditors read them: one with the evidence to settle it, or the list of them."""

from __future__ import annotations

from contextlib import closing
from typing import Any

import msgspec

from ledger import codec, refusals
from ledger import events as ev
from ledger.disclosure import is_erased, opened
from ledger.repository import Repository
from ledger.sealing import PERSONAL_ATTRIBUTES
from ledger.shapes import attributes_dict, dispute_brief, event_dict, ownership_intervals, rules_row
from ledger.state import Dispute, Lead, Pool, lead_stream
from ledger.store import Store, Stored, log_batches
from ledger.values import format_time, lead_keys
from projections.queries import ReadModels
from projections.runner import Projector

PERSONAL_KEYS = ("phone", "email")  # the duplicate check's keys that are personal data (company is not)
ATTEMPTS = (ev.LeadClaimed, ev.LeadAssigned, ev.LeadReassigned, ev.ClaimRefused, ev.AssignmentRefused)


class Evidence:
    def __init__(self, repo: Repository, views: Projector, models: ReadModels):
        self.repo = repo
        self.views = views
        self.models = models

    def show(self, dispute_id: str) -> dict[str, Any]:
        """A dispute with the evidence to settle it."""
        self.repo.ready()
        lead = self.repo.disputed_lead(dispute_id)
        d = lead.dispute(dispute_id)
        stored = self.repo.store.read_stream(lead_stream(lead.id))
        erased = is_erased(stored)
        stored = opened(self.repo.store, stored, erased=erased)  # personal fields: one key read
        lead = self.repo.lead(lead.id, stored=stored)
        pool = self.repo.pool(lead.pool)
        attributes = {k: v for k, v in attributes_dict(lead).items() if v}
        if erased:
            attributes.update(dict.fromkeys(PERSONAL_ATTRIBUTES))
        return {
            **dispute_brief(d),
            "lead_now": {"status": lead.status, "owner": lead.owner, "pool": lead.pool,
                         "attributes": attributes, **({"erased": True} if erased else {})},
            "evidence": self._evidence(lead, d, stored, pool),
        }

    def _evidence(self, lead: Lead, d: Dispute, stored: list[Stored], pool: Pool) -> dict[str, Any]:
        attempts = [_attempt(s) for s in stored if isinstance(s.event, ATTEMPTS)]
        erased_at = _erased_at(stored)
        follow_ups = [_follow_up(s, erased_at is not None) for s in stored if isinstance(s.event, ev.FollowUpLogged)]
        used = {a["rules_version"] for a in attempts} | {
            s.event.rules_version for s in stored if isinstance(s.event, (ev.LeadRecycled, ev.RecycleWarned))}
        duplicates = self._duplicates(lead, stored, erased_at)
        for dup in duplicates:  # the same customer worked under another lead counts too
            follow_ups += dup.pop("follow_ups")
        follow_ups.sort(key=lambda f: f["position"])
        ownership = _intervals(stored)
        involved = sorted(
            {a["rep"] for a in attempts} | {f["rep"] for f in follow_ups if f["lead"] == lead.id}
            | {i["owner"] for i in ownership} | {d.opened_by} | ({d.awarded_to} if d.awarded_to else set()))
        return {
            "ownership": ownership,
            "attempts": attempts,
            "follow_ups": follow_ups,
            "rules": _rule_rows(pool, used),
            "duplicates": duplicates,
            "involved": involved,
            "by_rep": [_rep_summary(rep, ownership, attempts, follow_ups, lead.id) for rep in involved],
            "dispute_events": [event_dict(s) for s in stored
                               if isinstance(s.event, (ev.DisputeOpened, ev.DisputeResolved))
                               and s.event.dispute == d.id],
            "backdated": [s.position for s in stored if event_dict(s)["backdated"]],
        }

    def _duplicates(self, lead: Lead, stored: list[Stored], erased_at: int | None) -> list[dict[str, Any]]:
        """Leads sharing a phone, email or company with this one, either way round (its own
        `LeadAdded`'s matches, and the leads the index finds, or once its erasure (at position
        `erased_at`) deleted its index, the later leads' `LeadAdded` matches to it), with who
        held them when and the follow-ups logged on them; a value either lead's erasure took
        is null."""
        a = lead.attributes
        own = dict(lead_keys(a.company, a.phone, a.email))
        found = {(m.lead, m.field) for s in stored if isinstance(s.event, ev.LeadAdded) for m in s.event.duplicates}
        if erased_at is None:  # its keys are indexed: one look-up finds the leads matched since
            found.update((k.lead, k.kind) for k in self.repo.store.find_keys(list(own.items())) if k.lead != lead.id)
        else:
            found.update(_matched_later(self.repo.store, lead.id, stored[0].position, erased_at))
        out, seen = [], set()
        for other_id, field in sorted(found):
            raw = self.repo.store.read_stream(lead_stream(other_id))
            other_erased = is_erased(raw)
            other_stream = opened(self.repo.store, raw, erased=other_erased)
            other = self.repo.lead(other_id, stored=other_stream, must_exist=False)
            first = other_id not in seen
            seen.add(other_id)
            added_event = other_stream[0] if other_stream else None
            taken = other_erased and field in PERSONAL_KEYS
            out.append({
                "lead": other_id, "field": field, "value": None if taken else own.get(field),
                "status": other.status if other.exists else None, "owner": other.owner,
                "pool": other.pool or None,
                "added_at": format_time(added_event.event.occurred_at) if added_event else None,
                "added_position": added_event.position if added_event else None,
                "ownership": _intervals(other_stream),
                "follow_ups": [_follow_up(s, other_erased) for s in other_stream
                               if first and isinstance(s.event, ev.FollowUpLogged)],
                **({"erased": True} if other_erased else {}),
            })
        return out

    def listing(self, open_only: bool = False) -> dict[str, Any]:
        self.repo.ready()
        self.views.catch_up()
        return {"disputes": self.models.disputes(open_only)}


# --- evidence rows ---------------------------------------------------------------------------

def _intervals(stored: list[Stored]) -> list[dict[str, Any]]:
    """Ownership intervals, each with the conversion (deal) made while it lasted, if any."""
    intervals = ownership_intervals(stored)
    for s in stored:
        if isinstance(s.event, ev.LeadConverted):
            for i in intervals:
                if i["start_position"] < s.position and (i["end_position"] is None or s.position < i["end_position"]):
                    i.update(converted_at=format_time(s.event.occurred_at), deal=s.event.deal,
                             converted_position=s.position)
    return intervals


def _attempt(s: Stored) -> dict[str, Any]:
    e = s.event
    refused = isinstance(e, ev.Refusal)
    row = event_dict(s)
    return {
        "position": s.position, "type": type(e).__name__, "rep": e.rep, "actor": e.actor,
        "occurred_at": row["occurred_at"], "recorded_at": row["recorded_at"], "backdated": row["backdated"],
        "accepted": not refused, "reason": getattr(e, "reason", None), "message": refusals.reword(e.message) if refused else None,
        "owner_then": e.owner if refused else getattr(e, "from_rep", None),
        "owner_since_position": e.owner_since_position if refused else None,
        "facts": dict(e.facts) if refused else {}, "rules_version": e.rules_version,
        "dispute": getattr(e, "dispute", None),
    }


def _follow_up(s: Stored, erased: bool) -> dict[str, Any]:
    row = event_dict(s)
    e = s.event
    return {"position": s.position, "lead": e.lead, "rep": e.rep, "occurred_at": row["occurred_at"],
            "recorded_at": row["recorded_at"], "backdated": row["backdated"], "channel": e.channel,
            "note": e.note, **({"erased": True} if erased else {})}


def _erased_at(stored: list[Stored]) -> int | None:
    return next((s.position for s in stored if isinstance(s.event, ev.PersonalDataErased)), None)


def _matched_later(store: Store, lead_id: str, added: int, erased_at: int) -> list[tuple[str, str]]:
    """(lead, field) of each match to `lead_id` that a lead added after it recorded, for an
    erased lead (whose index went with its key). Such a lead came after it and before its
    erasure, so only that stretch of the log is read, and only the `LeadAdded` records naming
    it are decoded."""
    needle, own = msgspec.json.encode(lead_id), lead_stream(lead_id)
    found = []
    with closing(log_batches(store, after=added)) as batches:
        for rows in batches:
            for position, stream, _version, topic, state in rows:
                if position > erased_at:
                    return found
                if topic == "LeadAdded" and stream != own and needle in state:
                    event = codec.decode_event(state)
                    found += [(event.lead, m.field) for m in event.duplicates if m.lead == lead_id]
    return found


def _rule_rows(pool: Pool, used: set[int | None]) -> list[dict[str, Any]]:
    """Every rule version of the lead's pool: when it was in force, and whether it decided here."""
    rows = []
    versions = pool.rule_versions
    for n, rv in enumerate(versions):
        until = versions[n + 1].since if n + 1 < len(versions) else None
        rows.append({**rules_row(pool, rv.version), "until": format_time(until), "used": rv.version in used})
    return rows


def _rep_summary(rep: str, ownership: list[dict], attempts: list[dict], follow_ups: list[dict],
                 lead_id: str) -> dict[str, Any]:
    """One rep's part in the story: first attempt, holdings, refusals, contact with the customer."""
    mine = [a for a in attempts if a["rep"] == rep]
    held = [i for i in ownership if i["owner"] == rep]
    fus = [f for f in follow_ups if f["rep"] == rep]
    here = [f for f in fus if f["lead"] == lead_id]

    def first(rows: list[dict]) -> str | None:
        return f"{rows[0]['occurred_at']} (#{rows[0]['position']})" if rows else None

    return {
        "rep": rep,
        "first_attempt": first(mine),
        "first_held": first([{"occurred_at": i["from"], "position": i["start_position"]} for i in held]),
        "times_held": len(held),
        "refused": sum(1 for a in mine if not a["accepted"]),
        "follow_ups": len(here),
        "follow_ups_on_duplicates": len(fus) - len(here),
        "first_follow_up": first(fus),
        "last_follow_up": f"{fus[-1]['occurred_at']} (#{fus[-1]['position']})" if fus else None,
    }
