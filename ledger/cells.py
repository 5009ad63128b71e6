"""The cells of an import file: which field a column names, and each cell's value as the
ledger wants it (text, or an aware UTC time), or the reason the row is rejected.

Kept apart from `values` (the ledger's own input vocabulary): these are the looser forms
spreadsheets and other CRMs write — Chinese column names, Excel number and date cells,
`2026/3/2 9:00`, `2026年3月2日` — read in a zone the importer names. `parse_row` then checks
a row's fields the way `lead add` checks its input.

A rejected row carries a translated message and a stable English code (`REASONS`), so that
a tool can tell why whatever the reader's language.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ledger import events as ev
from ledger import inputs
from ledger.errors import InvalidInput
from ledger.i18n import N_, _, gettext
from ledger.values import MAX_ID, check_at, check_id, format_time, lead_keys, parse_time

ATTRIBUTE_FIELDS = ("company", "contact", "phone", "email", "region", "industry", "source")
TIME_FIELDS = ("owner_since", "last_follow_up")
FIELDS = ("id", *ATTRIBUTE_FIELDS)
ALL_FIELDS = (*FIELDS, "owner", *TIME_FIELDS)

# the usual column names of Chinese spreadsheets and CRM exports
HEADER_NAMES = {
    "id": ("编号", "线索编号", "客户编号", "lead"),
    "company": ("客户名称", "公司名称", "公司", "企业名称"),
    "contact": ("联系人", "姓名", "联系人姓名"),
    "phone": ("手机", "手机号", "电话", "联系电话"),
    "email": ("邮箱", "电子邮箱", "邮件"),
    "region": ("地区", "省份", "城市", "区域"),
    "industry": ("行业", "所属行业"),
    "source": ("来源", "线索来源", "客户来源"),
    "owner": ("负责人", "归属人", "所属人", "跟进人"),
    "owner_since": ("领取时间", "分配时间", "负责时间"),
    "last_follow_up": ("最后跟进时间", "最近跟进时间"),
}
NAMES = {name: field for field, names in HEADER_NAMES.items() for name in (field, *names)}

_SCIENTIFIC = re.compile(r"\s*[+-]?\d+(?:\.\d*)?[eE][+-]?\d+\s*")
_SLASHED = re.compile(r"(\d{4})[/.-](\d{1,2})[/.-](\d{1,2})(?:[ T]+(\d{1,2}):(\d{2})(?::(\d{2}))?)?")
_CHINESE = re.compile(r"(\d{4})年(\d{1,2})月(\d{1,2})日?(?:\s*(\d{1,2})[:时](\d{2})分?(?:[:分]?(\d{2})秒?)?)?")


# Why a row is rejected: the `code` of each entry of an import's `rejected` list.
REASONS = (
    "malformed_row",      # the line cannot be read as a row (CSV fields, JSON)
    "invalid_id",         # the id is missing or breaks the rules of ids
    "repeated_id",        # the id repeats an earlier row of the file
    "invalid_value",      # a text field of the wrong type, with a control character, ...
    "invalid_time",       # a time that cannot be read, does not exist or is out of order
    "time_out_of_range",  # a time later than the import's, or before the pool or a person existed
    "invalid_owner",      # an owner that is no id, or a person who may not hold leads
    "unknown_person",     # an owner nobody is registered as
    "owner_inactive",     # an owner who is deactivated
    "not_pool_member",    # an owner who is not a member of the pool
)


class RowError(ValueError):
    """What is wrong with one cell: the row is rejected with this message and `code`."""

    def __init__(self, message: str, code: str = "invalid_value"):
        super().__init__(message)
        self.code = code


class Rejected(str):
    """A rejected row's message with its code: still a str, for callers that read rows as
    (line, fields or message)."""

    code: str

    def __new__(cls, message: str, code: str) -> Rejected:
        self = super().__new__(cls, message)
        self.code = code
        return self


def reason(message: str) -> str:
    """The code of a rejected row's message (one given as plain text: unreadable)."""
    return getattr(message, "code", "malformed_row")


def header_key(name: object) -> str:
    """A column name as compared: NFKC (full-width letters), trimmed, lower-case, no BOM."""
    return unicodedata.normalize("NFKC", str(name if name is not None else "")).replace("\ufeff", "").strip().lower()


def parse_mapping(items: tuple[str, ...] | list[str]) -> dict[str, str]:
    """`--map COLUMN=FIELD` options as {column key: field}."""
    mapping: dict[str, str] = {}
    for item in items:
        column, sep, field = item.rpartition("=")
        column, field = header_key(column), field.strip().lower()
        if not sep or not column or not field:
            raise InvalidInput(_("invalid --map {item}: write COLUMN=FIELD, e.g. --map 客户级别=source", item=repr(item)))
        if field not in ALL_FIELDS:
            raise InvalidInput(_("invalid --map {item}: {field} is not a field (fields: {fields})", item=repr(item),
                                 field=repr(field), fields=", ".join(ALL_FIELDS)))
        if column in mapping and mapping[column] != field:
            raise InvalidInput(_("--map names column {column} twice", column=repr(column)))
        mapping[column] = field
    return mapping


def zone(name: str | None) -> ZoneInfo:
    """The IANA zone of `--tz` (UTC when not given)."""
    try:
        return ZoneInfo((name or "UTC").strip())
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise InvalidInput(_("unknown time zone {zone}: give an IANA name such as Asia/Shanghai or UTC", zone=repr(name))) from None


def integral(value: float) -> str | None:
    """A number cell's integer digits, exactly (Excel keeps a phone as a float), or None."""
    return str(int(value)) if value == value and value not in (float("inf"), float("-inf")) \
        and value == int(value) else None


def text(field: str, value: object, json: bool = False) -> str:
    """A text field's value from a cell. A JSON number or boolean is the wrong type; an Excel
    number is its digits (a phone with a fraction is no phone)."""
    if type(value) is str:
        if field == "phone" and ("E" in value or "e" in value) and _SCIENTIFIC.fullmatch(value):
            raise RowError(_("phone {phone} is in scientific notation, its digits are lost: "
                             "format the column as text and export again", phone=repr(value.strip())))
        return value
    if value is None:
        return ""
    if isinstance(value, bool) or json or not isinstance(value, (int, float, date, time)):
        raise RowError(_("{field} must be text, not {kind}", field=field, kind=_kind(value)),
                       {"id": "invalid_id", "owner": "invalid_owner"}.get(field, "invalid_value"))
    if isinstance(value, (date, time)):
        return value.isoformat(sep=" ") if isinstance(value, datetime) else value.isoformat()
    digits = integral(float(value)) if isinstance(value, float) else str(value)
    if digits is not None:
        return digits
    if field == "phone":
        raise RowError(_("phone {phone} is a number with a fraction", phone=repr(value)))
    return repr(value)


def _kind(value: object) -> str:
    if isinstance(value, bool):
        return f"{str(value).lower()}"
    kind = {int: N_("a number"), float: N_("a number"), list: N_("a list"), dict: N_("an object"),
            time: N_("a time of day alone"), timedelta: N_("a duration")}.get(type(value))
    return gettext(kind) if kind else type(value).__name__


def moment(field: str, value: object, tz: ZoneInfo) -> datetime | None:
    """A time field's value: an aware UTC datetime, None for an empty cell. A time without
    an offset (and an Excel date cell) is in `tz`."""
    if type(value) is str:
        if not value or value.isspace():
            return None
        local = _parse(value)
        if local is None:
            raise RowError(_("{field} {value} is not a time (write e.g. 2026-03-02 09:00, "
                             "2026/3/2 9:00 or 2026年3月2日 9:00)", field=field, value=repr(value.strip()[:40])),
                           "invalid_time")
    elif isinstance(value, datetime):
        local = value
    elif isinstance(value, date):
        local = datetime.combine(value, time())
    elif value is None:
        return None
    else:
        raise RowError(_("{field} must be a time, not {kind}", field=field, kind=_kind(value)), "invalid_time")
    try:
        if local.tzinfo is not None:
            return local.astimezone(UTC)
        offset = _day_offset(tz, local.toordinal())
        if offset is not None:  # made whole: `replace(tzinfo=...)` costs twice the constructor
            u = local - offset
            return datetime(u.year, u.month, u.day, u.hour, u.minute, u.second, u.microsecond, UTC)
        utc = local.replace(tzinfo=tz).astimezone(UTC)  # a day the clocks change: look closely
    except OverflowError:
        raise RowError(_("{field} {time} is out of range", field=field, time=local.isoformat(sep=" ")),
                       "invalid_time") from None
    if utc.astimezone(tz).replace(tzinfo=None) != local:
        raise RowError(_("{field} {time} does not exist in {zone} (the clocks went forward)", field=field,
                         time=local.isoformat(sep=" "), zone=tz.key), "invalid_time")
    return utc


@lru_cache(maxsize=4096)
def _day_offset(tz: ZoneInfo, ordinal: int) -> timedelta | None:
    """The zone's offset all through one local day, or None on a day the clocks change (so
    most times cost one look-up, not a round trip through the zone rules)."""
    start = datetime.fromordinal(ordinal)
    end = start + timedelta(hours=23, minutes=59, seconds=59)
    offsets = {tz.utcoffset(t) for t in (start, start.replace(fold=1), end, end.replace(fold=1))}
    return offsets.pop() if len(offsets) == 1 else None


def _parse(raw: str) -> datetime | None:
    text_ = raw.strip()
    if not text_.isascii():
        text_ = unicodedata.normalize("NFKC", text_)  # full-width digits and colons
    if "/" not in text_ and "年" not in text_:
        try:
            return datetime.fromisoformat(text_)
        except ValueError:
            pass
    match = _SLASHED.fullmatch(text_) or _CHINESE.fullmatch(text_)
    if match is None:
        return None
    y, mo, d, h, mi, s = match.groups()
    try:
        return datetime(int(y), int(mo), int(d), int(h or 0), int(mi or 0), int(s or 0))
    except ValueError:
        return None


# --- a row as the ledger takes it ---------------------------------------------------------

HELD_FIELDS = ("owner", "owner_since", "last_follow_up")
_NOT_ATTRIBUTES = ("id", "lead", *HELD_FIELDS)
Floors = Iterable[tuple[str, "datetime | None"]]  # (what, when it began): no time of a row is earlier


class Held(NamedTuple):
    owner: str
    since: datetime  # when he took it: the lead is added and assigned then
    follow_up: datetime | None
    since_from: str  # the field `since` was read from ("--at": the import's time)


class Row(NamedTuple):
    line: int
    lead: str
    attributes: ev.Attributes
    keys: list[tuple[str, str]]
    held: Held | None


_new_row = tuple.__new__


def parse_row(line: int, fields: dict[str, Any] | str, at: datetime, floors: Floors = ()) -> Row | Rejected:
    """One row checked on its own, as `lead add` checks its input (`at`: the import's time;
    `floors`: what its times may not be earlier than), or why it is rejected. A cell's
    surrounding whitespace is the spreadsheet's, not the id's: it is trimmed."""
    if isinstance(fields, str):
        return fields if isinstance(fields, Rejected) else Rejected(fields, "malformed_row")
    code = "invalid_id"
    try:
        lead_id = fields.get("id") or fields.get("lead") or ""
        if isinstance(lead_id, int) and not isinstance(lead_id, bool):
            lead_id = str(lead_id)
        lead_id = _checked_id(lead_id.strip() if isinstance(lead_id, str) else lead_id, N_("lead id"))
        code = "invalid_value"
        attrs = inputs.attributes(fields, skip=_NOT_ATTRIBUTES)
        owner = fields.get("owner")
        held = _held(owner, fields, at, list(floors)) if owner else None
    except InvalidInput as e:
        return Rejected(e.message, code)
    except RowError as e:
        return Rejected(str(e), e.code)
    # made as a plain tuple: a NamedTuple's own constructor costs a plain row more than the rest here
    return _new_row(Row, (line, lead_id, attrs, lead_keys(attrs.company, attrs.phone, attrs.email), held))


def _checked_id(value: object, what: str) -> str:
    """`values.check_id`, after a quick look that passes most ids of a large file at once."""
    if type(value) is str and 0 < len(value) <= MAX_ID and value.isprintable() and ":" not in value \
            and value[0] != " " and value[-1] != " ":
        return value
    return check_id(value, what)


def _held(owner: Any, fields: dict[str, Any], at: datetime, floors: Floors) -> Held | None:
    """The owner and times of a held row. Without `owner_since` he took it at his last
    follow-up, if the row gives one (he held it then), else at the import's time; a
    follow-up before he took it is not his, and rejects the row."""
    if not isinstance(owner, str):
        raise RowError(_("owner must be text"), "invalid_owner")
    owner = owner.strip()
    if not owner:
        return None
    try:
        _checked_id(owner, N_("owner"))
    except InvalidInput as e:
        raise RowError(e.message, "invalid_owner") from None
    since = _moment(fields.get("owner_since"), "owner_since", at, floors)
    follow = _moment(fields.get("last_follow_up"), "last_follow_up", at, floors)
    if since and follow and follow < since:
        raise RowError(_("last_follow_up {follow} is earlier than owner_since {since}: "
                         "a follow-up of the owner's comes after he took the lead",
                         follow=format_time(follow), since=format_time(since)), "invalid_time")
    if since:
        return Held(owner, since, follow, "owner_since")
    return Held(owner, follow, follow, "last_follow_up") if follow else Held(owner, at, None, "--at")


def _moment(value: Any, name: str, at: datetime, floors: Floors) -> datetime | None:
    """A time of the row: not later than the import's time, nor earlier than its floors."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, (str, datetime)):
        raise RowError(_("{name} must be a time", name=name), "invalid_time")
    try:
        moment = parse_time(value, name)
    except InvalidInput as e:
        raise RowError(e.message, "invalid_time") from None
    if moment > at:
        raise RowError(_("{name} {time} is later than the import's time ({at})", name=name,
                         time=format_time(moment), at=format_time(at)), "time_out_of_range")
    try:
        return check_at(moment, at, not_before=floors, name=name)
    except InvalidInput as e:
        raise RowError(e.message, "time_out_of_range") from None
