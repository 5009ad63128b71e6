"""Parsing and formatting of the values people type: times, durations, lead keys."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import msgspec

from ledger.errors import InvalidInput

_DURATION = re.compile(r"^\s*(\d+)\s*([smhd]?)\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "": 86400}


def parse_duration(text: str | int, name: str = "duration") -> int:
    """'90m', '12h', '30d' (a bare number means days) -> seconds."""
    if isinstance(text, int):
        if text < 0:
            raise InvalidInput(f"{name} must not be negative")
        return text
    m = _DURATION.match(str(text))
    if not m:
        raise InvalidInput(f"invalid {name} {text!r}: write it like 90m, 12h or 30d")
    return int(m.group(1)) * _UNITS[m.group(2)]


def format_duration(seconds: int) -> str:
    if seconds == 0:
        return "0"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def parse_time(text: str | datetime | None, name: str = "--at") -> datetime | None:
    """ISO 8601 -> an aware UTC datetime. A time without a zone is taken as UTC."""
    if text is None or isinstance(text, datetime):
        if isinstance(text, datetime) and text.tzinfo is None:
            return text.replace(tzinfo=UTC)
        return text.astimezone(UTC) if text else None
    raw = str(text).strip()
    try:
        value = datetime.fromisoformat(raw[:-1] + "+00:00" if raw.endswith(("Z", "z")) else raw)
    except ValueError:
        raise InvalidInput(
            f"invalid time for {name}: {text!r}; use ISO 8601, e.g. 2026-03-02T09:00:00Z"
        ) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


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


def add(value: datetime, seconds: int) -> datetime:
    return value + timedelta(seconds=seconds)


# --- lead keys for the duplicate check ------------------------------------------------------

def normal_phone(phone: str | None) -> str | None:
    if not phone:
        return None
    text = phone.strip()
    if text.startswith("+86"):
        text = text[3:]
    elif text.startswith("0086"):
        text = text[4:]
    plain = text.replace(" ", "").replace("-", "")  # the usual separators: digits are left
    digits = plain if plain.isdigit() else "".join(filter(str.isdigit, text))
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
