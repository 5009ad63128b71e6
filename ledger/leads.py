"""lead add | import | show."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

import msgspec

from ledger import decisions, inputs
from ledger import events as ev
from ledger.acting import Acting, When
from ledger.codec import GENESIS
from ledger.errors import InvalidInput, Refused
from ledger.repository import Repository
from ledger.state import HELD, POOLED, Person, Pool, lead_stream
from ledger.store import LeadKey, NewEvent
from ledger.values import check_id, format_time, lead_keys
from projections.runner import collector_paused

IMPORT_BATCH = 10_000  # leads per appended (all-or-nothing) batch of an import

Row = tuple[int, str, ev.Attributes, list[tuple[str, str]]]  # an import row: line, lead, attributes, keys


class Leads:
    def __init__(self, repo: Repository, acting: Acting):
        self.repo = repo
        self.acting = acting

    def add(self, actor: str, lead_id: str, pool_id: str, *, allow_duplicate: bool = False,
            at: When = None, **fields: Any) -> dict[str, Any]:
        def attempt(by: Person, when: datetime) -> dict[str, Any]:
            pool = self.repo.pool(pool_id)
            when = self.acting.when(when, at, by, pool)
            decisions.check_member(by, pool)
            lead = self.repo.lead(lead_id, must_exist=False)
            if lead.exists:
                raise Refused("already_exists", f"lead {lead_id} already exists (pool {lead.pool})",
                              lead=lead_id)
            event, keys, found = self._new_lead(by, lead_id, pool, fields, when, allow_duplicate)
            # A key taken meanwhile raises DuplicateKeys, a Conflict: the retry re-checks and refuses.
            stored = self.repo.commit([lead.head], [event], keys=keys, unique_keys=not allow_duplicate)
            return {"lead": lead_id, "event": "LeadAdded", "position": stored[0].position, "owner": None,
                    "pool": pool_id, "status": POOLED, "occurred_at": format_time(when), "duplicates": found}

        return self.acting.run(actor, "lead.add", at, attempt, lambda: check_id(lead_id, "lead id"))

    def _new_lead(self, by: Person, lead_id: str, pool: Pool, fields: dict[str, Any],
                  at: datetime, allow_duplicate: bool) -> tuple[ev.LeadAdded, list[LeadKey], list[dict]]:
        """Decide a LeadAdded: the duplicate check against the key index."""
        attributes = inputs.attributes(fields)
        keys = lead_keys(attributes.company, attributes.phone, attributes.email)
        matches = [k for k in self.repo.store.find_keys(keys) if k.lead != lead_id]
        found = [ev.DuplicateMatch(lead=k.lead, field=k.kind, value=k.value) for k in matches]
        if found and not allow_duplicate:
            first = found[0]
            other = self.repo.lead(first.lead)
            where = {"owner": other.owner} if other.owner else {"pool": other.pool}
            raise Refused(
                "duplicate_lead",
                f"lead {lead_id} has the same {first.field} as lead {first.lead} "
                + (f"(held by {other.owner})" if other.owner else f"(in pool {other.pool})"),
                lead=lead_id, existing=first.lead, field=first.field, **where,
                matches=[msgspec.to_builtins(m) for m in found],
            )
        event = ev.LeadAdded(occurred_at=at, actor=by.id, lead=lead_id, pool=pool.id,
                             attributes=attributes, duplicates=found)
        return event, [LeadKey(k, v, lead_id) for k, v in keys], [msgspec.to_builtins(m) for m in found]

    def import_rows(self, actor: str, pool_id: str, rows: Iterable[tuple[int, dict[str, Any] | str]],
                    *, allow_duplicate: bool = False, at: When = None, batch: int = IMPORT_BATCH,
                    progress: Callable[[int], None] | None = None) -> dict[str, Any]:
        """Import (line, fields) rows; a row given as a string is a parse error for that line.

        Rows are appended in batches, each all or nothing; a re-run skips leads that already exist.
        """
        by = self.acting.actor(actor, "lead.import")
        when = self.acting.time(at)
        pool = self.repo.pool(pool_id)
        decisions.check_member(by, pool)
        report: dict[str, Any] = {"imported": 0, "skipped_existing": 0, "duplicates": [], "rejected": []}
        seen_ids: set[str] = set()
        chunk: list[Row] = []

        def flush() -> None:
            self.repo.retry(lambda: self._import_chunk(by, pool, chunk, when, allow_duplicate, report))
            if progress:
                progress(len(chunk))
            chunk.clear()

        with collector_paused():  # the rows and batches make no cycles to collect
            for line, fields in rows:
                row = _import_row(line, fields, report)
                if row is None:
                    continue
                if row[1] in seen_ids:
                    report["skipped_existing"] += 1
                    continue
                seen_ids.add(row[1])
                chunk.append(row)
                if len(chunk) >= batch:
                    flush()
            if chunk:
                flush()
        return report

    def _import_chunk(self, by: Person, pool: Pool, chunk: list[Row], at: datetime,
                      allow_duplicate: bool, report: dict[str, Any]) -> None:
        """Append one batch of new leads (or none, on a lost race: Conflict, and the batch is redone).

        The key index (which holds the keys of the file's earlier batches too) is read once,
        outside the append lock, to name each duplicate; the append then checks under the lock
        that no lead was stored since that read (else it looks at the keys again there), so a
        lead added meanwhile is never duplicated. The report changes only once the batch is in.
        """
        store = self.repo.store
        checked_at = store.max_position()  # before the reads below: what they see at least
        existing = store.existing_streams([lead_stream(lead_id) for _, lead_id, _, _ in chunk])
        candidates = [row for row in chunk if lead_stream(row[1]) not in existing]
        indexed = {(k.kind, k.value): k.lead for k in store.find_keys(
            [key for *_, keys in candidates for key in keys])}
        events, new_keys, dups = [], [], []
        batch_keys: dict[tuple[str, str], str] = {}
        for line, lead_id, attrs, keys in candidates:
            matches = [ev.DuplicateMatch(lead=other, field=k[0], value=k[1]) for k in keys
                       if (other := indexed.get(k) or batch_keys.get(k))]
            if matches and not allow_duplicate:
                dups.append({"line": line, "lead": lead_id, "duplicate_of": matches[0].lead,
                             "field": matches[0].field, "value": matches[0].value})
                continue
            events.append(NewEvent(lead_stream(lead_id), 1, GENESIS, ev.LeadAdded(
                occurred_at=at, actor=by.id, lead=lead_id, pool=pool.id, attributes=attrs, duplicates=matches)))
            new_keys.extend([(kind, value, lead_id) for kind, value in keys])
            for k in keys:
                batch_keys.setdefault(k, lead_id)
        if events:
            store.append_bulk(events, keys=new_keys, unique_keys=not allow_duplicate, checked_at=checked_at)
        report["imported"] += len(events)
        report["skipped_existing"] += len(chunk) - len(candidates)
        report["duplicates"].extend(dups)

    def show(self, lead_id: str) -> dict[str, Any]:
        self.repo.ready()
        lead = self.repo.lead(lead_id)
        due = (decisions.deadline(lead, self.repo.pool(lead.pool), self.acting.clock())
               if lead.status == HELD else None)
        return {
            "lead": lead.id, "pool": lead.pool, "status": lead.status, "owner": lead.owner,
            "since": format_time(lead.placed_at), "since_position": lead.placed_position,
            "last_follow_up": format_time(lead.last_follow_up), "deal": lead.deal,
            "recycle_at": format_time(due.at) if due else None, "recycle_rule": due.rule if due else None,
            "attributes": msgspec.to_builtins(lead.attributes), "version": lead.head.version,
            "disputes": [d.id for d in lead.disputes],
        }


def _import_row(line: int, fields: dict[str, Any] | str, report: dict[str, Any]) -> Row | None:
    """One row of an import checked, or None (and the rejection reported)."""
    if isinstance(fields, str):
        report["rejected"].append({"line": line, "error": fields})
        return None
    try:
        lead_id = str(fields.get("id") or fields.get("lead") or "").strip()
        inputs.check_id(lead_id, "lead id")
        attrs = inputs.attributes(fields, skip=("id", "lead"))
    except InvalidInput as e:
        report["rejected"].append({"line": line, "error": e.message})
        return None
    return line, lead_id, attrs, lead_keys(attrs.company, attrs.phone, attrs.email)
