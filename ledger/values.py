"""The input vocabulary: parsing, limits and formatting of the values people type — times,
durations, counts, positions, ids — and the keys of the duplicate check."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

import msgspec

from ledger.errors import InvalidInput, LedgerError, NotFound
from ledger.i18n import N_, _, gettext

# --- durations and counts -------------------------------------------------------------------

_DURATION = re.compile(r"^\s*(\d+)\s*([smhd]?)\s*$", re.ASCII)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "": 86400}
MIN_DURATION = 60  # 1m
MAX_DURATION = 3650 * 86400  # 3650d
MAX_COUNT = 1_000_000
MAX_POSITION = 2**63 - 1
_WHOLE = re.compile(r"^\s*(\d+)\s*$", re.ASCII)


def _whole(value: object) -> int | None:
    """A whole number from an int or a string of digits; None for anything else. A string
    longer than 2^63-1 is not converted (int() of a huge string is slow, or refused)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and (m := _WHOLE.match(value)):
        digits = m.group(1).lstrip("0") or "0"
        return int(digits) if len(digits) <= 19 else MAX_POSITION + 1
    return None

# A rule's limits: (kind, smallest value other than 0, whether 0 is allowed). A duration of 0
# switches its rule off (idle/hold: never recycle; cooldown: none; warn_before: no early
# warning), as the decisions read it. A claim_limit of 0 is a pool nobody may claim from
# (counts are 0 to 1,000,000).
RULE_LIMITS = {
    "claim_limit": ("count", 0, True),
    "daily_claim_limit": ("count", 1, True),
    "idle_limit": ("duration", MIN_DURATION, True),
    "hold_limit": ("duration", MIN_DURATION, True),
    "cooldown": ("duration", MIN_DURATION, True),
    "warn_before": ("duration", MIN_DURATION, True),
}


def parse_duration(text: str | int, name: str = "duration") -> int:
    """'90m', '12h', '30d' (a bare number means days) -> seconds, at most 3650d."""
    if isinstance(text, bool) or not isinstance(text, (str, int)):
        raise InvalidInput(_("invalid {name} {text}: write it like 90m, 12h or 30d", name=name, text=quote(str(text))))
    if isinstance(text, int):
        seconds = text
        if seconds < 0:
            raise InvalidInput(_("{name} must not be negative", name=name))
    else:
        m = _DURATION.match(text)
        if not m:
            raise InvalidInput(_("invalid {name} {text}: write it like 90m, 12h or 30d", name=name, text=quote(text)))
        digits = m.group(1).lstrip("0") or "0"  # no int() of a huge number: it is too long anyway
        seconds = MAX_DURATION + 1 if len(digits) > 12 else int(digits) * _UNITS[m.group(2)]
    if seconds > MAX_DURATION:
        raise InvalidInput(_("{name} {text} is too long: at most 3650d", name=name, text=quote(str(text))))
    return seconds


def parse_count(value: str | int, name: str = "count", minimum: int = 0) -> int:
    """A whole number from `minimum` to 1,000,000."""
    number = _whole(value)
    if number is None:
        raise InvalidInput(_("{name} must be a whole number, not {value}", name=name, value=quote(str(value))))
    if not minimum <= number <= MAX_COUNT:
        raise InvalidInput(_("{name} must be from {minimum} to {maximum}, not {value}", name=name, minimum=minimum,
                              maximum=format(MAX_COUNT, ","), value=quote(str(value))))
    return number


def parse_rule(name: str, value: str | int) -> int:
    """One rule's value (seconds for durations), within the limits of input."""
    if name not in RULE_LIMITS:
        raise InvalidInput(_("unknown rule {rule}", rule=repr(name)))
    kind, smallest, zero_ok = RULE_LIMITS[name]
    option = f"--{name.replace('_', '-')}"
    if kind == "count":
        return parse_count(value, option, minimum=0 if zero_ok else smallest)
    seconds = parse_duration(value, option)
    if seconds == 0 and zero_ok:
        return 0
    if seconds < smallest:
        if zero_ok:
            raise InvalidInput(_("{option} must be from 1m to 3650d (or 0), not {value}", option=option,
                                 value=quote(str(value))))
        raise InvalidInput(_("{option} must be from 1m to 3650d, not {value}", option=option, value=quote(str(value))))
    return seconds


def format_duration(seconds: int) -> str:
    if seconds == 0:
        return "0"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def parse_position(text: str | int, name: str = N_("position")) -> int:
    """A position in the log: a whole number from 0 to 2^63-1."""
    number = _whole(text)
    if number is None or not 0 <= number <= MAX_POSITION:
        raise InvalidInput(_("invalid {name} {text}: a whole number from 0 to {top}", name=gettext(name),
                             text=quote(str(text)), top=MAX_POSITION))
    return number


# --- ids ------------------------------------------------------------------------------------

MAX_ID = 128
QUOTE = 40  # a message quotes at most this many characters of what was typed
# Invisible or direction-changing characters: an id holding one looks like another id.
_BAD_CATEGORIES = ("Cc", "Cf", "Cs", "Zl", "Zp")


def quote(value: str) -> str:
    """`value` quoted for a message: at most its first 40 characters, controls escaped."""
    return repr(value[:QUOTE]) + ("…" if len(value) > QUOTE else "")


def check_id(value: object, what: str) -> str:
    """An id of a lead, person or pool: 1 to 128 characters, no surrounding whitespace, no
    ':', no control or formatting (bidirectional, zero-width) characters. Returns it."""
    if not isinstance(value, str):
        raise InvalidInput(_("invalid {what}: it must be text", what=gettext(what)))
    problem = None
    if not value:
        problem = _("it is empty")
    elif len(value) > MAX_ID:
        problem = _("it has {length} characters, at most {most} are allowed", length=len(value), most=MAX_ID)
    elif value != value.strip():
        problem = _("it starts or ends with whitespace")
    elif ":" in value:
        problem = _("it holds ':'")
    elif any(unicodedata.category(c) in _BAD_CATEGORIES for c in value):
        problem = _("it holds a control or formatting character")
    if problem:
        raise InvalidInput(_("invalid {what} {value}: {problem}", what=gettext(what), value=quote(value),
                             problem=problem), value=value[:QUOTE])
    return value


def unknown_lead(lead_id: str) -> LedgerError:
    """The error of a lead not found: `unknown_lead`, or for an id no lead could have, what is
    wrong with it (`invalid_input`)."""
    check_id(lead_id, N_("lead id"))
    return NotFound("unknown_lead", _("no lead {lead}", lead=quote(lead_id)), lead=lead_id)


# --- times ----------------------------------------------------------------------------------

FUTURE_SLACK = 300  # seconds: clocks differ a little; more than this is a mistake


def parse_time(text: str | datetime | None, name: str = "--at") -> datetime | None:
    """ISO 8601 -> an aware UTC datetime. A time without an offset is UTC."""
    if text is None or isinstance(text, datetime):
        if isinstance(text, datetime) and text.tzinfo is None:
            return text.replace(tzinfo=UTC)
        return text.astimezone(UTC) if text else None
    raw = str(text).strip()
    try:
        if len(raw) > 64 or not raw.isprintable():  # fromisoformat lets some of these through
            raise ValueError(raw)
        value = datetime.fromisoformat(raw[:-1] + "+00:00" if raw.endswith(("Z", "z")) else raw)
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
    except (ValueError, OverflowError):  # overflow: year 1 or 9999 moved into UTC
        raise InvalidInput(
            _("invalid time for {name}: {text}; use ISO 8601, e.g. 2026-03-02T09:00:00Z", name=name,
              text=quote(str(text)))
        ) from None


def check_at(at: datetime, now: datetime, *, not_before: Iterable[tuple[str, datetime | None]] = (),
             name: str = "--at") -> datetime:
    """A command's time may go back, never forward (more than 5 minutes after `now`, the
    store's clock), and never before what it concerns existed: each `(what, time)` of
    `not_before` reads as "--at ... is earlier than {what} ({time})". Returns `at`."""
    if at > add(now, FUTURE_SLACK):  # (held at the calendar's end, where a dry run's --now may be)
        raise InvalidInput(_("{name} {at} is in the future: more than 5 minutes after the store's clock ({now})",
                             name=name, at=format_time(at), now=format_time(now)), at=format_time(at),
                           now=format_time(now))
    for what, earliest in not_before:
        if earliest is not None and at < earliest:
            raise InvalidInput(_("{name} {at} is earlier than {what} ({earliest})", name=name, at=format_time(at),
                                 what=what, earliest=format_time(earliest)),
                               at=format_time(at), earliest=format_time(earliest))
    return at


_encode = msgspec.json.Encoder().encode


def format_time(value: datetime | None) -> str | None:
    """ISO 8601 in UTC with "Z", microseconds only when there are some."""
    if value is None:
        return None
    if value.tzinfo is UTC:  # as stored events decode: msgspec writes them the same way, quicker
        return _encode(value)[1:-1].decode()
    value = value.astimezone(UTC)
    text = value.isoformat(timespec="microseconds" if value.microsecond else "seconds")
    return text.replace("+00:00", "Z")


def day_of(value: datetime) -> str:
    return value.astimezone(UTC).date().isoformat()


EARLIEST = datetime.min.replace(tzinfo=UTC)
LATEST = datetime.max.replace(tzinfo=UTC)


def add(value: datetime, seconds: int) -> datetime:
    """`value` moved by `seconds`, held at the ends of the calendar: a deadline past year 9999
    is its last instant (it never comes), a warning due before year 1 its first."""
    try:
        return value + timedelta(seconds=seconds)
    except OverflowError:
        return LATEST if seconds > 0 else EARLIEST


# --- lead keys for the duplicate check ------------------------------------------------------

# China's country code as people write it: +86, 0086, (+86), (86), or 86 and a separator
# ("86-", "86 "). A bare 86 run into the digits ("8613800138000") is left alone: it may be
# part of the number itself, and old stores keyed it so.
_CHINA = re.compile(r"^(?:\(\s*(?:\+|00)?\s*86\s*\)|(?:\+|00)\s*86|86(?=[\s\-./)]+\d))",
                    re.ASCII)


_NOT_DIGIT = re.compile(r"[^0-9]")  # ASCII digits only: NFKC has made full-width ones ASCII


def normal_phone(phone: str | None) -> str | None:
    """NFKC (full-width digits become ASCII), country code 86 removed, then digits only."""
    if not phone:
        return None
    text = unicodedata.normalize("NFKC", phone).strip()
    text = _CHINA.sub("", text, count=1)
    digits = _NOT_DIGIT.sub("", text)
    return digits or None


def normal_email(email: str | None) -> str | None:
    text = (email or "").strip().lower()
    return text or None


def normal_company(company: str | None) -> str | None:
    text = "".join((company or "").split()).casefold()
    return text or None


def lead_keys(company: str | None, phone: str | None, email: str | None) -> list[tuple[str, str]]:
    """The (kind, value) keys the duplicate check compares, in the order phone, email, company."""
    keys = []
    if phone and (value := normal_phone(phone)):
        keys.append(("phone", value))
    if email and (value := normal_email(email)):
        keys.append(("email", value))
    if company and (value := normal_company(company)):
        keys.append(("company", value))
    return keys
