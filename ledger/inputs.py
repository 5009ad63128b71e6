"""Checks and conversions of what callers pass in: lead attributes, pool rules (ids: `values.check_id`)."""

from __future__ import annotations

import re
from typing import Any

import msgspec

from ledger import events as ev
from ledger.errors import InvalidInput
from ledger.i18n import _
from ledger.shapes import DURATION_RULES, RULE_NAMES
from ledger.values import parse_duration

ATTRIBUTES: tuple[str, ...] = ev.Attributes.__struct_fields__
_ATTRIBUTE_SET = frozenset(ATTRIBUTES)
# Control characters and lone surrogates: PostgreSQL stores no NUL, no store a lone surrogate,
# and no reader sees the others. A tab or a line break is text (an Excel cell of two lines).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def attributes(fields: dict[str, Any], skip: tuple[str, ...] = ()) -> ev.Attributes:
    """A lead's attributes from its fields (those named in `skip` aside): known names only,
    text (or a number) without control characters, trimmed, empty ones left out; an email
    must have an '@'."""
    values = {}
    unknown, wrong, control = [], [], []
    for k, v in fields.items():
        if k not in _ATTRIBUTE_SET:
            if k not in skip and v is not None and v != "":
                unknown.append(k)
        elif v is not None:
            if type(v) is not str:
                if isinstance(v, bool) or not isinstance(v, (str, int)):
                    wrong.append(k)
                    continue
                v = str(v)
            v = v.strip()
            if v:
                values[k] = v
                if not v.isprintable() and _CONTROL.search(v):  # most text is printable: one quick look
                    control.append(k)
    if unknown:
        raise InvalidInput(_("unknown lead field(s): {fields}", fields=", ".join(sorted(unknown))))
    if wrong:
        raise InvalidInput(_("lead field {field} must be text", field=min(wrong, key=ATTRIBUTES.index)))
    if control:
        raise InvalidInput(_("lead field {field} holds a control character", field=min(control, key=ATTRIBUTES.index)))
    if "email" in values and "@" not in values["email"]:
        raise InvalidInput(_("invalid email {email}", email=repr(values["email"])))
    return ev.Attributes(**values)


def rules(base: ev.Rules, changes: dict[str, Any]) -> ev.Rules:
    """`base` with the rules named in `changes` (None: unchanged) parsed and checked."""
    values = {}
    for name, value in changes.items():
        if value is None:
            continue
        if name not in RULE_NAMES:
            raise InvalidInput(_("unknown rule {rule}", rule=repr(name)))
        option = f"--{name.replace('_', '-')}"
        if name in DURATION_RULES:
            values[name] = parse_duration(value, option)
            continue
        try:
            values[name] = int(value)
        except (TypeError, ValueError):
            raise InvalidInput(_("{option} must be a whole number, not {value}", option=option, value=repr(value))) from None
        if values[name] < 0 or (name == "claim_limit" and values[name] < 1):
            if name == "claim_limit":
                raise InvalidInput(_("{option} must be at least 1", option=option))
            raise InvalidInput(_("{option} must be zero or more", option=option))
    return msgspec.structs.replace(base, **values)
