"""Parsing and formatting of what people type: durations, times, duplicate-check keys."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from ledger.errors import InvalidInput
from ledger.values import (
    add, day_of, format_duration, format_time, lead_keys, normal_company, normal_email,
    normal_phone, parse_duration, parse_time,
)

# --- durations ------------------------------------------------------------------------------


@pytest.mark.parametrize("text, seconds", [
    ("90m", 90 * 60),
    ("12h", 12 * 3600),
    ("30d", 30 * 86400),
    ("45s", 45),
    ("0", 0),
    ("7", 7 * 86400),  # a bare number means days
    (" 3d ", 3 * 86400),
])
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


def test_parse_duration_takes_whole_seconds_as_int():
    assert parse_duration(3600) == 3600


@pytest.mark.parametrize("text", ["", "d", "1w", "-1d", "1.5d", "30 days", "abc", "3d2h"])
def test_parse_duration_rejects(text):
    with pytest.raises(InvalidInput) as e:
        parse_duration(text, "--idle-limit")
    assert e.value.code == "invalid_input"
    assert "--idle-limit" in e.value.message


def test_parse_duration_rejects_negative_int():
    with pytest.raises(InvalidInput):
        parse_duration(-5)


@pytest.mark.parametrize("seconds, text", [
    (0, "0"), (90 * 60, "90m"), (12 * 3600, "12h"), (30 * 86400, "30d"), (45, "45s"), (86400 + 60, "1441m"),
])
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text
    assert parse_duration(text) == seconds


# --- times ----------------------------------------------------------------------------------


def test_parse_time_z_suffix_is_utc():
    assert parse_time("2026-03-02T09:00:00Z") == datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    assert parse_time("2026-03-02T09:00:00z") == datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def test_parse_time_converts_offsets_to_utc():
    value = parse_time("2026-03-02T17:00:00+08:00")
    assert value == datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    assert value.utcoffset() == timedelta(0)


def test_parse_time_without_zone_is_utc():
    assert parse_time("2026-03-02T09:00:00") == datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    assert parse_time(datetime(2026, 3, 2, 9, 0)) == datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def test_parse_time_keeps_fractions():
    assert parse_time("2026-03-02T10:00:01.200Z") == datetime(2026, 3, 2, 10, 0, 1, 200000, tzinfo=UTC)


def test_parse_time_none_is_none():
    assert parse_time(None) is None


@pytest.mark.parametrize("text", ["yesterday", "2026-13-01T00:00:00Z", "2026-03-02 25:00", ""])
def test_parse_time_rejects(text):
    with pytest.raises(InvalidInput) as e:
        parse_time(text, "--at")
    assert "--at" in e.value.message


def test_format_time_is_utc_with_z():
    cst = timezone(timedelta(hours=8))
    assert format_time(datetime(2026, 3, 2, 17, 0, tzinfo=cst)) == "2026-03-02T09:00:00Z"
    assert format_time(datetime(2026, 3, 2, 9, 0, 1, 200000, tzinfo=UTC)) == "2026-03-02T09:00:01.200000Z"
    assert format_time(datetime(2026, 3, 2, 9, 0, tzinfo=UTC)) == "2026-03-02T09:00:00Z"
    assert format_time(datetime(2026, 3, 2, 9, 0, 0, 1500, tzinfo=UTC)) == "2026-03-02T09:00:00.001500Z"
    assert format_time(datetime(2026, 3, 2, 9, 0, 0, 1500, tzinfo=cst)) == "2026-03-02T01:00:00.001500Z"
    assert format_time(None) is None


def test_format_then_parse_round_trips():
    value = datetime(2026, 3, 2, 9, 0, 1, 123456, tzinfo=UTC)
    assert parse_time(format_time(value)) == value


def test_day_of_is_the_utc_day():
    cst = timezone(timedelta(hours=8))
    # 07:30 on 3 March in Shanghai is still 2 March in UTC.
    assert day_of(datetime(2026, 3, 3, 7, 30, tzinfo=cst)) == "2026-03-02"
    assert day_of(datetime(2026, 3, 3, 8, 0, tzinfo=cst)) == "2026-03-03"


def test_add_seconds():
    assert add(datetime(2026, 3, 2, tzinfo=UTC), 86400) == datetime(2026, 3, 3, tzinfo=UTC)


# --- duplicate-check keys -------------------------------------------------------------------


@pytest.mark.parametrize("phone", [
    "13800138000", "+86 138 0013 8000", "+8613800138000", "0086 138-0013-8000", "008613800138000",
    "(138) 0013 8000", "  +86-138-0013-8000  ",
])
def test_normal_phone_drops_formatting_and_china_code(phone):
    assert normal_phone(phone) == "13800138000"


def test_normal_phone_keeps_other_digits():
    # Only +86 / 0086 is a country code; a bare leading 86 is part of the number.
    assert normal_phone("8613800138000") == "8613800138000"
    assert normal_phone("+1 415 555 0100") == "14155550100"
    assert normal_phone("021-6888-0000") == "02168880000"


@pytest.mark.parametrize("phone", [None, "", "   ", "n/a"])
def test_normal_phone_empty(phone):
    assert normal_phone(phone) is None


@pytest.mark.parametrize("email", ["Buyer@Example.COM", "  buyer@example.com ", "BUYER@EXAMPLE.COM\t"])
def test_normal_email_lowercases_and_trims(email):
    assert normal_email(email) == "buyer@example.com"


@pytest.mark.parametrize("email", [None, "", "  "])
def test_normal_email_empty(email):
    assert normal_email(email) is None


def test_normal_company_folds_case_and_space():
    forms = ["Acme Trading Co", "ACME TRADING CO", "  acme   trading\tco ", "Acme Trading\u3000Co"]
    assert len({normal_company(f) for f in forms}) == 1
    assert normal_company("Acme Trading Co") != normal_company("Acme Trading Ltd")


def test_normal_company_chinese_names():
    assert normal_company("上海 机械 有限公司") == normal_company("上海　机械　有限公司")
    assert normal_company("上海机械有限公司") != normal_company("杭州机械有限公司")


@pytest.mark.parametrize("company", [None, "", "   "])
def test_normal_company_empty(company):
    assert normal_company(company) is None


def test_lead_keys_only_present_fields():
    assert lead_keys(None, None, None) == []
    assert lead_keys("Acme", None, " X@Y.cn ") == [("email", "x@y.cn"), ("company", normal_company("Acme"))]
    assert lead_keys(None, "+86 138 0013 8000", None) == [("phone", "13800138000")]


@pytest.mark.parametrize("secret", [bytes(range(32)), b"k" * 64, b"long" * 40, b""])
def test_the_key_hasher_is_hmac_sha256(secret):
    """The duplicate check's hashes are HMAC-SHA-256 of kind and value, whole: raw bytes, or
    their hex for the index of a store made by an earlier version."""
    import hmac

    from ledger.sealing import KeyHasher

    raw, hexed = KeyHasher(secret), KeyHasher(secret, raw=False)
    for kind, value in [("phone", "13700000001"), ("email", "a@x.cn"), ("company", "上海贸易"), ("phone", "")]:
        expected = hmac.digest(secret, f"{kind}\n{value}".encode(), "sha256")
        assert raw(kind, value) == expected and hexed(kind, value) == expected.hex()
