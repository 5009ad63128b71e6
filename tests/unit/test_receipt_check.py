"""The offline receipt verifier: what it accepts, and every forgery it must reject (naming it)."""

from __future__ import annotations

import copy
import json
import re
from datetime import UTC, datetime, timedelta

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger import chain, checkpoint, codec, merkle, receipt_check, shapes
from ledger import events as ev
from ledger.errors import IntegrityViolation, InvalidInput
from ledger.receipt_check import BACKDATED_AFTER, check_receipt, utc_microseconds
from tests.receipt_kit import T0, sample_log

KEY = Ed25519PrivateKey.generate()
PUBLIC = checkpoint.public_key_of(KEY)
OTHER = Ed25519PrivateKey.generate()


@pytest.fixture(scope="module")
def log():
    return sample_log(40)


def fails(receipt, check: str, digest=None, public_key=None) -> str:
    with pytest.raises(IntegrityViolation) as e:
        check_receipt(receipt, digest, public_key)
    assert e.value.details == {"ok": False, "failed": check}, e.value.message
    assert e.value.exit_code == 6 and e.value.code == "integrity_violation"
    return e.value.message


def test_every_event_of_the_log_has_a_receipt_that_holds(log):
    for position in range(1, log.size + 1):
        for size in (position, log.size):
            out = check_receipt(log.receipt(position, size, KEY), None, PUBLIC)
            assert out["ok"] and out["position"] == position and out["tree_size"] == size
            assert out["signed"] and out["key_checked"] and out["public_key"] == checkpoint.b64(PUBLIC)
            assert checkpoint.parse_digest(out["digest"]) == log.head(size, KEY)


def test_an_unsigned_receipt_holds_without_a_key(log):
    receipt = log.receipt(3)
    assert receipt["signature"] is None and receipt["public_key"] is None
    out = check_receipt(receipt)
    assert out["signed"] is False and out["public_key"] is None
    assert "signature" in fails(receipt, "signature", public_key=PUBLIC)  # but not when a key is required


def test_the_receipt_survives_json(log):
    receipt = json.loads(json.dumps(log.receipt(5, key=KEY), ensure_ascii=False))
    assert check_receipt(receipt, None, PUBLIC)["ok"]


def test_backdated_is_computed_as_the_change_feed_does(log):
    assert BACKDATED_AFTER == shapes.BACKDATED_AFTER
    flags = {log.feed[p]["backdated"] for p in log.feed}
    assert flags == {True, False}  # the sample has both, and each receipt holds
    claimed = next(p for p in log.feed if log.feed[p]["type"] == "LeadClaimed")
    receipt = log.receipt(claimed)
    receipt["event"]["backdated"] = False
    fails(receipt, "event")


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ORIGIN = re.compile(r"[!-*,-~]{1,200}", re.ASCII)  # C2SP's origin line: printable, no space, no '+'
SIZE = re.compile(r"0|[1-9][0-9]{0,18}", re.ASCII)


@given(st.one_of(st.text(max_size=210), st.text(st.characters(min_codepoint=0, max_codepoint=127), max_size=210)))
def test_an_origin_is_taken_as_the_checkpoint_format_says(origin):
    try:
        checkpoint.head(origin, 1, bytes(32))
        taken = True
    except InvalidInput:
        taken = False
    assert taken is bool(ORIGIN.fullmatch(origin))


@given(st.one_of(st.text(max_size=22), st.integers(0, 2**64).map(str), st.integers(0, 99).map(lambda n: f"0{n}")))
def test_a_tree_size_is_taken_as_the_checkpoint_format_says(size):
    note = f"leadledger/x\n{size}\n{checkpoint.b64(bytes(32))}\n"
    try:
        taken = checkpoint.parse_note(note).size == int(size)
    except InvalidInput:
        taken = False
    assert taken is bool(SIZE.fullmatch(size) and int(size) < 2**63 and "\n" not in size)


@given(st.text(), st.integers(1, 2**40), st.binary(max_size=40), st.binary(max_size=2000))
def test_the_check_and_the_store_hash_a_record_alike(stream, version, at, event):
    """The check hashes with the interpreter's own SHA-256, the store with OpenSSL's."""
    prev = chain.GENESIS
    assert chain.chain_hash(stream, version, prev, at, event) == codec.chain_hash(stream, version, prev, at, event)


@given(st.datetimes(timezones=st.just(UTC)))
def test_a_stored_time_is_counted_as_datetime_counts_it(moment):
    text = msgspec.json.encode(moment)[1:-1].decode()  # as a stored record holds it
    lag = moment - EPOCH
    assert utc_microseconds(text) == (lag.days * 86_400 + lag.seconds) * 1_000_000 + lag.microseconds


@pytest.mark.parametrize("text", [
    "0000-01-01T00:00:00Z", "2023-02-29T00:00:00Z", "2024-02-30T00:00:00Z", "2024-04-31T00:00:00Z",
    "2024-13-01T00:00:00Z", "2024-00-01T00:00:00Z", "2024-01-01T24:00:00Z", "2024-01-01T00:60:00Z",
    "2024-01-01T00:00:60Z", "2024-01-01T00:00:00+00:00", "2024-01-01T00:00:00", "2024-01-01T00:00:00.1234567Z",
    "２０２４-01-01T00:00:00Z", "2024-01-01 00:00:00Z",
])
def test_a_time_in_another_form_is_left_to_the_codec(text):
    with pytest.raises(ValueError):
        utc_microseconds(text)


def test_backdated_starts_past_five_minutes_to_the_microsecond():
    at = utc_microseconds("2024-02-29T00:05:00Z") - utc_microseconds("2024-02-29T00:00:00Z")
    assert at == BACKDATED_AFTER * 1_000_000
    assert utc_microseconds("2024-02-29T00:05:00.000001Z") - utc_microseconds("2024-02-29T00:00:00Z") == at + 1


# --- a changed event ----------------------------------------------------------------------

@pytest.mark.parametrize(("field", "value"), [
    ("rep", "bob"), ("lead", "L-9"), ("pool", "west"), ("type", "LeadAssigned"), ("actor", "mallory"),
    ("actor_kind", "rule"), ("occurred_at", "2026-03-02T09:00:00Z"), ("recorded_at", "2027-01-01T00:00:00Z"),
    ("stream", "lead:L-9"), ("version", 1), ("held_before", 0), ("held_before", "4"), ("rules_version", True),
    ("extra", "a field the record does not have"),
])
def test_a_changed_event_field_fails(log, field, value):
    receipt = log.receipt(7)  # a claim of L-2, version 2 of its stream
    assert receipt["event"]["type"] == "LeadClaimed" and repr(receipt["event"].get(field)) != repr(value)
    receipt["event"][field] = value
    assert repr(field) in fails(receipt, "event")


def test_a_removed_event_field_fails(log):
    receipt = log.receipt(7)
    del receipt["event"]["rep"]
    fails(receipt, "event")


def test_a_changed_nested_field_fails(log):
    receipt = log.receipt(3)  # LeadAdded: attributes
    receipt["event"]["attributes"]["company"] = "Another Company"
    assert "attributes.company" in fails(receipt, "event")


def test_personal_fields_are_not_bound(log):
    added, note = log.receipt(3), log.receipt(5)
    assert added["event"]["attributes"]["phone"] and note["event"]["note"]
    added["event"]["attributes"].update(phone=None, contact=None, email=None)
    note["event"]["note"] = None
    assert check_receipt(added)["ok"] and check_receipt(note)["ok"]


def read_by_the_codec(receipt):
    """The receipt with its record's first two keys swapped: the same bytes hashed, laid out
    otherwise than the codec writes, so the check reads the record with the codec."""
    state = receipt["record"]["state"]
    raw = codec.decode_raw(state.encode())
    head = f'{{"hash":"{raw.hash}","prev":"{raw.prev}",'
    assert state.startswith(head)
    swapped = f'{{"prev":"{raw.prev}","hash":"{raw.hash}",' + state[len(head):]
    assert receipt_check._RECORD.fullmatch(swapped) is None
    return {**receipt, "record": {**receipt["record"], "state": swapped}}


def holds(receipt) -> None:
    """The receipt holds, read by the standard library and by the codec."""
    assert check_receipt(receipt)["ok"] and check_receipt(read_by_the_codec(receipt))["ok"]


def fails_both(receipt, check: str) -> str:
    fails(read_by_the_codec(receipt), check)
    return fails(receipt, check)


def test_a_null_sealed_field_the_feed_leaves_out_is_taken_as_absent(log):
    """The change feed leaves `sealed` out when null (a lead added with no personal data, a
    follow-up of an erased lead); the record holds it null: the receipt holds."""
    for position in (3, 5):  # LeadAdded, FollowUpLogged: stored with "sealed":null
        receipt = log.receipt(position)
        assert '"sealed":null' in receipt["record"]["state"]
        del receipt["event"]["sealed"]
        holds(receipt)
        receipt["event"]["sealed"] = "AAAA"  # not null: bound
        assert "sealed" in fails_both(receipt, "event")


def test_a_field_left_out_fails_unless_the_feed_leaves_it_out():
    log = sample_log(3)
    at = T0 + timedelta(days=1)
    position = log.append("lead:S-1", ev.LeadAdded(occurred_at=at, actor="root", lead="S-1", pool="east",
                                                   attributes=ev.Attributes(company="S"), sealed="c2VhbGVk"))
    receipt = log.receipt(position)
    holds(receipt)
    del receipt["event"]["sealed"]  # the record holds a sealed text: bound
    assert "sealed" in fails_both(receipt, "event")
    receipt = log.receipt(1)  # PersonRegistered: its team is null, and the feed shows it
    del receipt["event"]["team"]
    assert "team" in fails_both(receipt, "event")


@pytest.mark.parametrize(("position", "field", "value"), [
    (1, "note", "a forged note"), (3, "note", None), (7, "note", "a forged note"),  # a follow-up's only
    (1, "erased", True), (2, "erased", True),  # a lead's events only
    (3, "erased", False), (5, "erased", "yes"), (7, "erased", None),  # only as the feed shows it: true
])
def test_a_personal_field_added_to_an_event_that_never_has_it_fails(log, position, field, value):
    receipt = log.receipt(position)
    assert field not in receipt["event"]
    receipt["event"][field] = value
    assert repr(field) in fails_both(receipt, "event")


def test_a_personal_field_is_text_or_null(log):
    added, note = log.receipt(3), log.receipt(5)
    added["event"]["attributes"]["phone"] = 5
    note["event"]["note"] = {"forged": True}
    assert "attributes.phone" in fails_both(added, "event")
    assert "note" in fails_both(note, "event")


def test_erased_is_taken_on_a_leads_events_as_the_change_feed_shows_it(log):
    for position in (3, 5, 7):  # LeadAdded, FollowUpLogged, LeadClaimed
        receipt = log.receipt(position)
        receipt["event"]["erased"] = True
        holds(receipt)


@pytest.mark.parametrize(("part", "old", "new"), [
    ("stream", "lead:L-2", "lead:L-\ud800"),
    ("state", '"rep":"alice"', '"rep":"al\ud800ice"'),  # read by the standard library
    ("state", '{"hash"', '{"\udfff":1,"hash"'),  # by the codec
])
def test_a_lone_surrogate_in_the_record_fails_naming_it(log, part, old, new):
    """JSON's \\ud800 is a lone surrogate: text with no UTF-8 bytes to hash."""
    receipt = log.receipt(7)
    assert old in receipt["record"][part]
    receipt["record"][part] = receipt["record"][part].replace(old, new)
    forged = json.loads(json.dumps(receipt))  # as a receipt file holds it: escaped
    assert forged == receipt
    assert part in fails(forged, "record")


def test_a_changed_record_fails(log):
    receipt = log.receipt(7)
    receipt["record"]["state"] = receipt["record"]["state"].replace('"held_before":1', '"held_before":5')
    receipt["event"]["held_before"] = 5
    assert "does not match" in fails(receipt, "record")
    for part, value in [("stream", "lead:L-9"), ("version", 3)]:
        receipt = log.receipt(7)
        receipt["record"][part] = value
        fails(receipt, "record")
    receipt = log.receipt(7)
    receipt["record"]["state"] = "{not json"
    fails(receipt, "record")


def test_a_rewritten_and_rehashed_record_fails(log):
    """Rewritten with its hash recomputed, the record holds, but it is not the leaf in the tree."""
    receipt = log.receipt(7)
    stream, version, state = log.rows[7]
    raw = codec.decode_raw(state)
    forged_event = bytes(raw.event).replace(b'"rep":"alice"', b'"rep":"bob"')
    digest = codec.chain_hash(stream, version, raw.prev, bytes(raw.recorded_at), forged_event)
    receipt["record"]["state"] = (f'{{"hash":"{digest}","prev":"{raw.prev}","recorded_at":'
                                  f'{bytes(raw.recorded_at).decode()},"event":{forged_event.decode()}}}')
    receipt["event"]["rep"] = "bob"
    fails(receipt, "leaf_hash")
    receipt["leaf_hash"] = merkle.leaf_hash(bytes.fromhex(digest)).hex()
    fails(receipt, "inclusion_proof")


# --- a changed proof or head --------------------------------------------------------------

def test_a_changed_proof_node_fails(log):
    receipt = log.receipt(7, key=KEY)
    for i in range(len(receipt["inclusion_proof"])):
        forged = copy.deepcopy(receipt)
        node = forged["inclusion_proof"][i]
        forged["inclusion_proof"][i] = ("0" if node[0] != "0" else "1") + node[1:]
        fails(forged, "inclusion_proof")


def test_a_proof_for_another_position_fails(log):
    receipt, other = log.receipt(7), log.receipt(10)
    receipt["inclusion_proof"] = other["inclusion_proof"]
    fails(receipt, "inclusion_proof")
    moved = log.receipt(7)
    moved["event"]["position"] = 10
    fails(moved, "inclusion_proof")


def test_a_truncated_or_oversized_proof_fails(log):
    receipt = log.receipt(7)
    fails({**receipt, "inclusion_proof": receipt["inclusion_proof"][:-1]}, "inclusion_proof")
    fails({**receipt, "inclusion_proof": [*receipt["inclusion_proof"], receipt["root"]]}, "inclusion_proof")
    assert "at most 64" in fails({**receipt, "inclusion_proof": [receipt["root"]] * 65}, "inclusion_proof")
    fails({**receipt, "inclusion_proof": "ab" * 32}, "inclusion_proof")


def test_a_changed_tree_size_or_root_fails(log):
    receipt = log.receipt(7, key=KEY)
    fails({**receipt, "tree_size": 0}, "tree_size")
    fails({**receipt, "tree_size": -1}, "tree_size")
    fails({**receipt, "tree_size": "40"}, "tree_size")
    fails({**receipt, "tree_size": 6}, "position")
    fails({**receipt, "tree_size": receipt["tree_size"] + 1}, "signature")  # the same path, but not the signed size
    fails({**receipt, "root": log.receipt(7, 20)["root"]}, "inclusion_proof")


def test_a_head_signed_by_another_key_fails(log):
    forged = log.receipt(7, key=OTHER)
    out = check_receipt(forged)  # it holds together, and says which key signed it
    assert out["public_key"] == checkpoint.b64(checkpoint.public_key_of(OTHER)) and not out["key_checked"]
    assert "another key" in fails(forged, "signature", public_key=PUBLIC)
    mixed = {**forged, "public_key": checkpoint.b64(PUBLIC)}
    fails(mixed, "signature")
    fails(mixed, "signature", public_key=PUBLIC)
    signed = log.receipt(7, key=KEY)
    fails({**signed, "public_key": None}, "signature")
    fails({**signed, "origin": "leadledger/0000000000000000"}, "signature")
    fails({**signed, "origin": "two words"}, "origin")


@pytest.mark.parametrize(("field", "value"), [
    ("leaf_hash", "AB" * 32), ("leaf_hash", "ab" * 31), ("leaf_hash", "zz" * 32), ("leaf_hash", None),
    ("root", "0x" + "ab" * 31), ("root", 12),
    ("signature", "not base64!"), ("signature", "AAAA"), ("signature", 5),
    ("public_key", "AAAA"), ("public_key", "====" * 11),
])
def test_malformed_fields_fail_naming_them(log, field, value):
    receipt = log.receipt(7, key=KEY)
    receipt[field] = value
    fails(receipt, field)


def test_a_malformed_proof_node_names_it(log):
    receipt = log.receipt(7)
    receipt["inclusion_proof"][1] = receipt["inclusion_proof"][1].upper()
    fails(receipt, "inclusion_proof[1]")


def test_not_a_receipt(log):
    fails([], "receipt")
    fails({}, "event")
    receipt = log.receipt(7)
    del receipt["record"]
    fails(receipt, "record")
    receipt = log.receipt(7)
    receipt["event"]["position"] = "8"
    fails(receipt, "event")


# --- with a digest ------------------------------------------------------------------------

def test_a_receipt_extends_an_older_digest(log):
    for m in (0, 1, 7, 8, 16, 33, 40):
        receipt = log.receipt(7, key=KEY, since=m)
        out = check_receipt(receipt, checkpoint.parse_digest(log.head(m, KEY).digest()), PUBLIC)
        assert out["digest_position"] == m


def test_a_digest_the_receipt_does_not_extend_fails(log):
    other = sample_log(20, start=T0 + timedelta(days=1))  # the same kind of events, another log
    receipt = log.receipt(7, since=12)
    forked = checkpoint.head(log.origin(), 12, other.head(12).root)  # same origin, another history
    assert "does not extend" in fails(receipt, "digest", digest=forked)
    assert "another log" in fails(receipt, "digest", digest=other.head(12))
    no_proof = log.receipt(7)
    assert "no consistency_proof" in fails(no_proof, "digest", digest=log.head(12))
    forged = log.receipt(7, since=12)
    forged["consistency_proof"][0] = forged["consistency_proof"][1]
    fails(forged, "digest", digest=log.head(12))
    fails({**log.receipt(7, since=12), "consistency_proof": ["zz"]}, "consistency_proof[0]", digest=log.head(12))


def test_a_digest_later_than_the_receipt_is_bad_input(log):
    """The receipt holds no proof about a later head: not checkable offline, and no failure."""
    receipt = log.receipt(7, size=20, since=20)
    with pytest.raises(InvalidInput) as e:
        check_receipt(receipt, log.head(21))
    assert (e.value.exit_code, e.value.code) == (2, "invalid_input")
    assert "`leadledger receipt 7 --digest D`" in e.value.message
    assert e.value.details == {"digest_position": 21, "tree_size": 20}
    other = sample_log(30, start=T0 + timedelta(days=1))
    assert "another log" in fails(receipt, "digest", digest=other.head(30))  # another log's: a failure
    fails({**receipt, "root": log.head(19).root.hex()}, "inclusion_proof", digest=log.head(21))  # checked first


def test_a_digest_with_a_bad_signature_by_the_key_fails(log):
    head = log.head(12, KEY)
    bad = checkpoint.TreeHead(head.origin, head.size, head.root,
                              (checkpoint.NoteSignature(head.origin, head.signatures[0].key_id, b"\x00" * 64),))
    fails(log.receipt(7, key=KEY, since=12), "digest", digest=bad, public_key=PUBLIC)
    assert check_receipt(log.receipt(7, key=KEY, since=12), log.head(12, OTHER), PUBLIC)["ok"]  # not its key


def test_malformed_digests_and_keys_are_bad_input():
    for text in ["", "lld1:0123456789abcdef:5:" + "0" * 64, "llh1:!!!", "llh1:" + checkpoint.b64(b"x\n1\n")]:
        with pytest.raises(InvalidInput):
            checkpoint.parse_digest(text)
    for text in ["", "AAAA", "x" * 44]:
        with pytest.raises(InvalidInput):
            checkpoint.parse_public_key(text)
