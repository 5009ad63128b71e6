"""A lead's personal data opened for the outputs that show it (one key read per lead, or
per batch of events), and blanked once it is erased."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from typing import Any

from ledger import events as ev
from ledger import sealing
from ledger.shapes import event_dict
from ledger.store import Store, Stored
from ledger.store.personal import ERASED


def is_erased(stored: Iterable[Stored]) -> bool:
    return any(isinstance(s.event, ev.PersonalDataErased) for s in stored)


def opened(store: Store, stored: list[Stored], key: bytes | None = None, *,
           erased: bool | None = None) -> list[Stored]:
    """A lead's stored events with their personal fields opened (one key read); once erased,
    blanked, the fields an old event holds in the clear too. IntegrityViolation when a
    sealed field does not open."""
    if not stored:
        return stored
    erased = is_erased(stored) if erased is None else erased
    if erased:
        return [s._replace(event=sealing.erased_copy(s.event)) for s in stored]
    if key is None and any(getattr(s.event, "sealed", None) for s in stored):
        key = lead_key(store, stored[0].event.lead)
    return [s._replace(event=sealing.unseal(s.event, key, s.stream, s.version)) for s in stored]


def lead_key(store: Store, lead_id: str) -> bytes | None:
    key = store.personal.keys_of([lead_id]).get(lead_id)
    return key or None  # ERASED (b"") is no key


def opened_log(store: Store, stored: list[Stored]) -> tuple[list[Stored], set[str]]:
    """Events of many leads (the change feed), opened with one key read per batch; and the
    leads among them that are erased."""
    leads = {s.event.lead for s in stored if getattr(s.event, "sealed", None) or sealing.personal_of(s.event)
             or isinstance(s.event, ev.PersonalDataErased)}
    if not leads:
        return stored, set()
    keys = store.personal.keys_of(list(leads))
    out = []
    for s in stored:
        lead = getattr(s.event, "lead", None)
        if lead not in leads:
            out.append(s)
        elif keys.get(lead) == ERASED:  # erased: blank whatever the event holds
            out.append(s._replace(event=sealing.erased_copy(s.event)))
        else:
            out.append(s._replace(event=sealing.unseal(s.event, keys.get(lead), s.stream, s.version)))
    return out, {lead for lead in leads if keys.get(lead) == ERASED}


def with_personal(store: Store, answer: dict[str, Any], stored: list[Stored]) -> dict[str, Any]:
    """`lead show`'s answer with the lead's personal fields opened (one key read), or null and
    `"erased": true` once erased. `stored`: the lead's events, as read for the answer (its
    `LeadAdded` holds the fields)."""
    lead_id = answer["lead"]
    key = store.personal.keys_of([lead_id]).get(lead_id)
    if key == ERASED:  # only then: answers about other leads stay as they were
        answer["erased"] = True
    added = next((s for s in stored if isinstance(s.event, ev.LeadAdded)), None)
    if added is None:
        return answer
    event = sealing.erased_copy(added.event) if key == ERASED else sealing.unseal(
        added.event, key, added.stream, added.version)
    attributes = dict(answer.get("attributes") or {})
    for name in sealing.PERSONAL_ATTRIBUTES:
        value = getattr(event.attributes, name)
        if value is None:
            attributes.pop(name, None)
        else:
            attributes[name] = value
    if key == ERASED:
        attributes.update(dict.fromkeys(sealing.PERSONAL_ATTRIBUTES))
    answer["attributes"] = attributes
    return answer


def feed_rows(store: Store, stored: list[Stored]) -> list[dict[str, Any]]:
    """Events as the change feed gives them (`export events`, and the event of a receipt):
    opened, or once erased null with `"erased": true` (one key read for them all)."""
    events, erased = opened_log(store, stored)
    rows = []
    for s in events:
        row = shown(event_dict(s), getattr(s.event, "lead", None) in erased)
        row["stream"] = s.stream
        rows.append(row)
    return rows


def marked_notes(store: Store, rows: Iterator[dict[str, Any]], batch: int = 1000) -> Iterator[dict[str, Any]]:
    """Rows of `follow_ups` as exports give them: an erased lead's with its note null and
    `"erased": true`, as every output shows it (the table holds the empty text there: its
    column is NOT NULL in tables made before notes could be erased). One key read a batch."""
    for chunk in iter(lambda: list(itertools.islice(rows, batch)), []):
        keys = store.personal.keys_of(sorted({r["lead"] for r in chunk}))
        for row in chunk:
            yield {**row, "note": None, "erased": True} if keys.get(row["lead"]) == ERASED else row


def shown(row: dict[str, Any], erased: bool) -> dict[str, Any]:
    """An event as outputs print it (`shapes.event_dict`): once its lead is erased, its
    personal fields named as null and `"erased": true`. An event stored before sealing has no
    `sealed` to show: its answer stays as it was."""
    if "sealed" in row and row["sealed"] is None:
        del row["sealed"]
    if not erased:
        return row
    if row.get("type") == "LeadAdded":
        row["attributes"] = {**row.get("attributes", {}), **dict.fromkeys(sealing.PERSONAL_ATTRIBUTES)}
    elif row.get("type") == "FollowUpLogged":
        row["note"] = None
    row["erased"] = True
    return row
