"""The limits of input and of time: durations, counts, rule values, positions, ids, phones,
the time checks, and the refusals that come with them (last_admin)."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from commands.output import unexpected
from ledger import decisions
from ledger import events as ev
from ledger.errors import InvalidInput, LastAdmin, Refused
from ledger.state import Head, Lead, Person, Pool, advance, person_stream, pool_stream, replay
from ledger.values import (
    MAX_POSITION, check_at, check_id, normal_phone, parse_count, parse_duration, parse_position,
    parse_rule, parse_time,
)

T = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def refused(call, *args, **kwargs) -> InvalidInput:
    with pytest.raises(InvalidInput) as e:
        call(*args, **kwargs)
    assert e.value.code == "invalid_input" and e.value.exit_code == 2
    return e.value


# --- durations and rule values --------------------------------------------------------------

@pytest.mark.parametrize("text, seconds", [("1m", 60), ("3650d", 3650 * 86400), ("0", 0), ("90m", 5400),
                                           ("12h", 43200), ("0030d", 30 * 86400)])
def test_durations_within_limits(text, seconds):
    for rule in ("idle_limit", "hold_limit", "cooldown", "warn_before"):
        assert parse_rule(rule, text) == seconds


@pytest.mark.parametrize("text", ["3651d", "87601h", "99999999999999999999d", "999999999d", "1" * 5000,
                                  "59s", "1s", "-1d", "-0", "1.5d", "30 days", "garbage", "", "１d",
                                  "٣d", "1d\x00"])
def test_durations_outside_limits(text):
    err = refused(parse_rule, "idle_limit", text)
    assert "--idle-limit" in err.message and len(err.message) < 200


def test_duration_ints_are_seconds_with_the_same_limits():
    assert parse_rule("cooldown", 0) == 0 and parse_rule("cooldown", 60) == 60
    for bad in (59, -60, 3650 * 86400 + 1, 2**70, True, 1.5, None):
        refused(parse_rule, "cooldown", bad)


def test_parse_duration_alone_caps_at_3650d():
    assert parse_duration("3650d") == 3650 * 86400
    refused(parse_duration, "3651d")
    refused(parse_duration, 2**64)


@pytest.mark.parametrize("rule, text, value", [
    ("claim_limit", "0", 0), ("claim_limit", "1", 1), ("claim_limit", "1000000", 1_000_000), ("daily_claim_limit", "0", 0),
    ("daily_claim_limit", " 1000000 ", 1_000_000), ("claim_limit", 50, 50),
])
def test_counts_within_limits(rule, text, value):
    assert parse_rule(rule, text) == value


@pytest.mark.parametrize("rule, text", [
    ("claim_limit", "-1"), ("claim_limit", "1000001"), ("daily_claim_limit", "-1"),
    ("daily_claim_limit", "1e3"), ("claim_limit", "1.0"), ("claim_limit", "99999999999999999999999"),
    ("claim_limit", ""), ("claim_limit", "ten"), ("claim_limit", True), ("daily_claim_limit", 10**7),
])
def test_counts_outside_limits(rule, text):
    err = refused(parse_rule, rule, text)
    assert f"--{rule.replace('_', '-')}" in err.message


def test_unknown_rule():
    refused(parse_rule, "speed_limit", "1")


@given(st.integers(min_value=-(2**80), max_value=2**80))
def test_counts_are_checked_as_numbers_and_as_text(n):
    for value in (n, str(n)):
        if 0 <= n <= 1_000_000:
            assert parse_count(value, "--n") == n
        else:
            refused(parse_count, value, "--n")


# --- positions ------------------------------------------------------------------------------

@given(st.integers(min_value=-(2**70), max_value=2**70))
def test_positions_from_0_to_2_63_minus_1(n):
    for value in (n, str(n), f" {n} "):
        if 0 <= n <= MAX_POSITION:
            assert parse_position(value, "--since") == n
        else:
            assert "--since" in refused(parse_position, value, "--since").message


@pytest.mark.parametrize("text", ["", "x", "1.0", "+1", "0x10", "1_000", "１", "9" * 10000, None, True])
def test_positions_refuse_what_is_not_a_whole_number(text):
    refused(parse_position, text, "--upto")


# --- ids ------------------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["L-1001", "a", "x" * 128, "上海-客户 7", "alice.chen@east", "L 1"])
def test_good_ids(value):
    assert check_id(value, "lead id") == value


@pytest.mark.parametrize("value", [
    "", "x" * 129, " L-1", "L-1 ", "\tL", "L\u3000", "lead:1", "L\x00", "L\n1", "L\x7f", "L\u0085",
    "L\u202e1", "L\u2066", "L\u2067", "L\u2068", "L\u2069", "L\u200e", "L\u200f", "L\u061c", "L\u200b",
    "L\ufeff", "L\u2028", "L\ud800",
])
def test_bad_ids(value):
    err = refused(check_id, value, "lead id")
    assert err.message.startswith("invalid lead id")


def test_bad_id_messages_quote_at_most_40_characters():
    err = refused(check_id, "A" * 39 + "B" + "C" * 500, "person id")
    assert "A" * 39 + "B" in err.message and "C" not in err.message
    assert err.details["value"] == "A" * 39 + "B"
    shown = refused(check_id, "x\u202ey", "pool id").message
    assert "\u202e" not in shown and "\\u202e" in shown  # the character is shown, not obeyed


@pytest.mark.parametrize("value", [None, 7, b"L-1"])
def test_ids_are_text(value):
    refused(check_id, value, "lead id")


# --- phones ---------------------------------------------------------------------------------

@pytest.mark.parametrize("phone", [
    "13800138000", "(+86)13800138000", "１３８００１３８０００", "0086-138-0013-8000", "+86 138 0013 8000",
    "+8613800138000", "008613800138000", "86-13800138000", "86 138 0013 8000", "(86) 138 0013 8000",
    "（＋８６）１３８００１３８０００", "＋８６ １３８ ００１３ ８０００", " +86-138-0013-8000 ", "(0086)13800138000",
    "+ 86 138.0013.8000",
])
def test_phone_spellings_are_one_key(phone):
    assert normal_phone(phone) == "13800138000"


def test_a_bare_leading_86_is_part_of_the_number():
    assert normal_phone("8613800138000") == "8613800138000"  # no +, 00, brackets or separator
    assert normal_phone("86") == "86"
    assert normal_phone("+1 (86) 555 0100") == "1865550100"  # 86 only at the start is a code


# --- times ----------------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "2026-02-30",
                                  "2026-03-02T09:00:00+24:00", "x" * 10000, "2026-03-02T09:00:00\x00"])
def test_parse_time_refuses_times_that_cannot_be_utc(text):
    assert "--at" in refused(parse_time, text).message


def test_check_at_allows_five_minutes_of_clock_skew():
    assert check_at(T + timedelta(minutes=5), T) == T + timedelta(minutes=5)
    err = refused(check_at, T + timedelta(minutes=5, seconds=1), T)
    assert "future" in err.message and err.details["now"] == "2026-03-02T09:00:00Z"
    assert "--now" in refused(check_at, T + timedelta(days=1), T, name="--now").message


def test_check_at_refuses_times_before_what_it_concerns():
    floors = [("the registration of alice", T), ("the creation of pool east", T + timedelta(hours=1))]
    assert check_at(T + timedelta(hours=1), T + timedelta(days=1), not_before=floors)
    err = refused(check_at, T + timedelta(minutes=30), T + timedelta(days=1), not_before=floors)
    assert "the creation of pool east" in err.message and err.details["earliest"] == "2026-03-02T10:00:00Z"
    assert check_at(T, T, not_before=[("nothing known", None)]) == T


# --- state: when people and pools came to be ------------------------------------------------

class Recorded(NamedTuple):  # what `advance` reads of a stored event
    position: int
    version: int
    event: ev.Event
    hash: str = "h"


def rec(event, position=1, version=1):
    return Recorded(position, version, event)


def registered(pid, role="rep", at=T) -> Person:
    e = ev.PersonRegistered(occurred_at=at, actor="root", person=pid, name=pid, role=role)
    return advance(Person(Head(person_stream(pid)), pid), rec(e))


def test_state_knows_when_a_person_was_registered_and_a_pool_created():
    assert Person(Head("person:x"), "x").registered_at is None
    alice = registered("alice", at=T + timedelta(days=1))
    assert alice.registered_at == T + timedelta(days=1)
    off = advance(alice, rec(ev.PersonDeactivated(occurred_at=T + timedelta(days=2), actor="root",
                                                  person="alice"), 2, 2))
    assert off.registered_at == alice.registered_at and not off.active
    created = ev.PoolCreated(occurred_at=T, actor="root", pool="east", name="East", rules=ev.Rules())
    changed = ev.PoolRulesChanged(occurred_at=T + timedelta(days=3), actor="root", pool="east",
                                  rules=ev.Rules(claim_limit=3), rules_version=2)
    pool = replay(Pool(Head(pool_stream("east")), "east"), [rec(created), rec(changed, 2, 2)])
    assert pool.created_at == T and pool.rules_version == 2


def test_check_when_names_the_first_floor_passed():
    alice = registered("alice", at=T + timedelta(days=1))
    pool = replay(Pool(Head("pool:east"), "east"),
                  [rec(ev.PoolCreated(occurred_at=T + timedelta(days=2), actor="root", pool="east",
                                      name="E", rules=ev.Rules()))])
    lead = Lead(Head("lead:L-1"), "L-1", pool="east", exists=True, last_event_at=T + timedelta(days=3))
    now = T + timedelta(days=10)
    assert decisions.check_when(T + timedelta(days=3), now, alice, pool, lead) == T + timedelta(days=3)
    cases = [(T, "registration of alice"), (T + timedelta(days=1, hours=1), "creation of pool east"),
             (T + timedelta(days=2, hours=1), "lead L-1's latest event"), (now + timedelta(hours=1), "future")]
    for at, words in cases:
        assert words in refused(decisions.check_when, at, now, alice, pool, lead).message


# --- last admin -----------------------------------------------------------------------------

def test_the_last_active_admin_cannot_be_deactivated():
    root = registered("root", "admin")
    with pytest.raises(LastAdmin) as e:
        decisions.check_not_last_admin(root, active_admins=1)
    assert isinstance(e.value, Refused)
    assert (e.value.code, e.value.exit_code, e.value.details) == ("last_admin", 1, {"person": "root"})
    decisions.check_not_last_admin(root, active_admins=2)
    decisions.check_not_last_admin(registered("alice"), active_admins=1)  # not an admin
    gone = advance(root, rec(ev.PersonDeactivated(occurred_at=T, actor="root", person="root"), 2, 2))
    decisions.check_not_last_admin(gone, active_admins=0)  # already inactive: actor_inactive decides


# --- what the command line makes of exceptions it did not expect -----------------------------

@pytest.mark.parametrize("error, code, status", [
    (sqlite3.OperationalError("disk I/O error"), "store_unavailable", 5),
    (sqlite3.DatabaseError("file is not a database"), "store_unavailable", 5),
    (psycopg.OperationalError("server closed the connection"), "store_unavailable", 5),
    (PermissionError(13, "Permission denied"), "store_unavailable", 5),
    (psycopg.DataError("value out of range"), "invalid_input", 2),
    (OverflowError("Python int too large to convert to SQLite INTEGER"), "invalid_input", 2),
    (KeyError("x"), "invalid_input", 2),
])
def test_unexpected_exceptions_get_a_code_and_a_status_from_0_to_6(error, code, status):
    mapped = unexpected(error)
    assert (mapped.code, mapped.exit_code) == (code, status)
    assert type(error).__name__ in mapped.message and "\n" not in mapped.message
