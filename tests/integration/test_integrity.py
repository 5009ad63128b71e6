"""Tamper evidence: verify finds each kind of tampering at the right position, and digests.

The tampering is done beside the ledger, straight in the database: on SQLite as the
file's owner (who drops the append-only triggers first), on PostgreSQL as a superuser with
triggers off (an application role is refused, see test_append_only). The verifier is also fed forged records: rehashed,
undecodable, with duplicated keys, claiming false predecessors.
"""

from __future__ import annotations

import sqlite3

import msgspec
import psycopg
import pytest

from commands import integrity as integrity_commands
from ledger import checkpoint, codec, merkle
from ledger.application import Ledger
from ledger.errors import IntegrityViolation, InvalidInput
from ledger.integrity import parse_digest
from ledger.receipt_check import check_receipt
from ledger.store import APPEND_ONLY, EVENTS_TABLE
from ledger.store.merkle import MERKLE_TABLE
from tests.conftest import PG, T0, event_count, run_cli

DAY2 = "2026-03-03T09:00:00Z"


class Raw:
    """The events table, reached around the ledger."""

    def __init__(self, ledger: Ledger) -> None:
        self.store = ledger.store

    def run(self, sql: str, params: list | tuple = ()) -> list[tuple]:
        if self.store.kind == "sqlite":
            sql = sql.format(events=EVENTS_TABLE, pos="rowid", tree=MERKLE_TABLE).replace("%s", "?")
            con = sqlite3.connect(self.store.path)
            try:
                for op in ("update", "delete"):  # the file's owner can drop the append-only triggers
                    con.execute(f"DROP TRIGGER IF EXISTS {APPEND_ONLY}_{op}")
                    con.execute(f"DROP TRIGGER IF EXISTS {MERKLE_TABLE}_no_{op}")
                rows = con.execute(sql, list(params)).fetchall()
                con.commit()
            finally:
                con.close()
            return rows
        sql = sql.format(events=f'"{self.store.schema}".{EVENTS_TABLE}', pos="notification_id",
                         tree=f'"{self.store.schema}".{MERKLE_TABLE}')
        with psycopg.connect(PG) as con:
            con.execute("SET session_replication_role = replica")  # superuser: triggers off
            cur = con.execute(sql, list(params))
            return cur.fetchall() if cur.description else []

    def row(self, position: int) -> tuple[str, int, bytes]:
        (stream, version, state), = self.run(
            "SELECT originator_id, originator_version, state FROM {events} WHERE {pos} = %s", [position])
        return stream, version, bytes(state)

    def set_state(self, position: int, state: bytes) -> None:
        self.run("UPDATE {events} SET state = %s WHERE {pos} = %s", [state, position])

    def delete(self, position: int) -> None:
        self.run("DELETE FROM {events} WHERE {pos} = %s", [position])

    def set_leaf(self, position: int, state: bytes) -> None:
        """The stored tree's leaf of a position made the leaf of this record (its parents kept)."""
        leaf = merkle.leaf_hash(bytes.fromhex(codec.decode_raw(state).hash))
        self.run("UPDATE {tree} SET hash = %s WHERE level = 0 AND idx = %s", [leaf, position - 1])


def forge(state: bytes, stream: str, version: int, *, event: bytes | None = None,
          prev: str | None = None, at: bytes | None = None) -> bytes:
    """A record rewritten as a forger would: new content, its hash recomputed to match."""
    raw = codec.decode_raw(state)
    event = bytes(raw.event) if event is None else event
    prev = raw.prev if prev is None else prev
    at = bytes(raw.recorded_at) if at is None else at
    digest = codec.chain_hash(stream, version, prev, at, event)
    return (b'{"hash":"' + digest.encode() + b'","prev":"' + prev.encode() + b'","recorded_at":'
            + at + b',"event":' + event + b"}")


def positions(ledger: Ledger, stream: str) -> list[int]:
    return [s.position for s in ledger.store.read_stream(stream)]


@pytest.fixture
def busy(world: Ledger) -> Ledger:
    """The world plus some history: lead:L-1 has six events, desk:east:alice several."""
    world.claim("alice", "L-1", at=DAY2)
    world.follow_up("alice", "L-1", "called", channel="call", at=DAY2)  # the note is sealed: tamper with the channel
    world.release("alice", "L-1", at=DAY2)
    world.claim("bob", "L-1", at=DAY2)
    world.claim("alice", "L-2", at=DAY2)
    world.follow_up("bob", "L-1", "visited", at=DAY2)
    return world


def bad(store_url: str, *args: str):
    """Run verify through the CLI, expect an integrity violation, return its report."""
    out = run_cli(store_url, "verify", *args)
    assert out.code == 6, out
    report = out.json
    assert report["ok"] is False
    assert report["error"]["code"] == "integrity_violation"
    assert report["problem"]
    return report


# --- honest logs -----------------------------------------------------------------------------

def test_an_honest_log_verifies(busy, store_url):
    out = run_cli(store_url, "verify")
    assert out.code == 0, out
    assert out.json == {"ok": True, "events_checked": event_count(busy), "first_bad_position": None,
                        "problem": None}
    text = run_cli(store_url, "verify", as_json=False)
    assert text.code == 0 and "every chain intact" in text.stdout


def test_a_later_log_extends_an_earlier_digest(busy, store_url):
    taken = run_cli(store_url, "digest")
    assert taken.code == 0
    assert taken.json["position"] == busy.store.max_position()
    assert checkpoint.parse_digest(taken.json["digest"]).size == taken.json["position"]
    busy.claim("carol", "L-3", at=DAY2)
    out = run_cli(store_url, "verify", "--digest", taken.json["digest"])
    assert out.code == 0, out
    assert out.json["ok"] is True
    assert out.json["digest_position"] == taken.json["position"]
    assert out.json["events_checked"] == taken.json["position"]  # the digest's events, not the log's
    assert run_cli(store_url, "digest").json["digest"] != taken.json["digest"]
    text = run_cli(store_url, "verify", "--digest", taken.json["digest"], as_json=False)
    assert text.code == 0 and "extends the digest" in text.stdout and "every chain intact" not in text.stdout


def test_the_same_log_gives_the_same_digest(busy, store_url):
    assert run_cli(store_url, "digest").json == run_cli(store_url, "digest").json


def test_progress_counts_every_event(busy):
    seen = []
    report = busy.verify(progress=seen.append)
    assert sum(seen) == report["events_checked"] == event_count(busy)


def test_a_large_store_shows_a_progress_bar_on_stderr_only(busy, store_url, monkeypatch):
    monkeypatch.setattr(integrity_commands, "PROGRESS_FROM", 1)
    out = run_cli(store_url, "verify")
    assert out.code == 0
    assert out.json["ok"] is True  # stdout holds exactly the report
    assert "verifying" in out.stderr


# --- tampering, found by the chains ----------------------------------------------------------

def test_a_changed_byte_is_found_at_its_event(busy, store_url):
    target = positions(busy, "lead:L-1")[3]  # the release
    stream, version, state = Raw(busy).row(target)
    assert b'"reason":null' in state or b"alice" in state
    Raw(busy).set_state(target, state.replace(b"alice", b"alicf", 1))
    report = bad(store_url)
    assert report["first_bad_position"] == target
    assert report["events_checked"] == event_count(busy)
    assert "does not match its bytes" in report["problem"]


def test_a_rewritten_and_rehashed_event_is_found_at_itself_not_its_successor(busy, store_url):
    lead = positions(busy, "lead:L-1")
    target = lead[2]  # the first follow-up; later events of the stream follow it
    stream, version, state = Raw(busy).row(target)
    raw = codec.decode_raw(state)
    Raw(busy).set_state(target, forge(state, stream, version, event=bytes(raw.event).replace(b'"channel":"call"', b'"channel":"email"')))
    report = bad(store_url)
    assert report["first_bad_position"] == target
    assert f"position {target} was rewritten" in report["problem"]


def test_a_deleted_middle_event_is_found_at_its_missing_position(busy, store_url):
    lead = positions(busy, "lead:L-1")
    Raw(busy).delete(lead[2])
    report = bad(store_url)
    assert report["first_bad_position"] == lead[2]
    assert f"position {lead[2]} is missing" in report["problem"]


def test_a_deleted_first_event_of_a_stream_is_found(busy, store_url):
    lead = positions(busy, "lead:L-1")
    Raw(busy).delete(lead[0])
    assert bad(store_url)["first_bad_position"] == lead[0]


def test_swapped_contents_are_found_at_the_earlier_event(busy, store_url):
    lead = positions(busy, "lead:L-1")
    raw = Raw(busy)
    first, second = raw.row(lead[1])[2], raw.row(lead[4])[2]
    raw.set_state(lead[1], second)
    raw.set_state(lead[4], first)
    assert bad(store_url)["first_bad_position"] == lead[1]


def test_swapped_versions_are_found_at_the_earlier_event(busy, store_url):
    lead = positions(busy, "lead:L-1")
    raw = Raw(busy)
    v1, v2 = raw.row(lead[1])[1], raw.row(lead[2])[1]
    raw.run("UPDATE {events} SET originator_version = -1 WHERE {pos} = %s", [lead[1]])
    raw.run("UPDATE {events} SET originator_version = %s WHERE {pos} = %s", [v1, lead[2]])
    raw.run("UPDATE {events} SET originator_version = %s WHERE {pos} = %s", [v2, lead[1]])
    assert bad(store_url)["first_bad_position"] == lead[1]


def test_an_event_moved_to_another_stream_is_found_at_itself(busy, store_url):
    lead = positions(busy, "lead:L-1")
    target = lead[4]  # bob's claim, moved to the end of lead:L-3's stream
    next_version = len(positions(busy, "lead:L-3")) + 1
    Raw(busy).run("UPDATE {events} SET originator_id = %s, originator_version = %s WHERE {pos} = %s",
                  ["lead:L-3", next_version, target])
    report = bad(store_url)
    assert report["first_bad_position"] == target
    assert "moved" in report["problem"]


def test_a_changed_type_column_is_found(busy, store_url):
    """Queries select events by their type column; it must match the event it holds."""
    target = positions(busy, "lead:L-1")[1]  # a LeadClaimed
    Raw(busy).run("UPDATE {events} SET topic = %s WHERE {pos} = %s", ["FollowUpLogged", target])
    report = bad(store_url)
    assert report["first_bad_position"] == target
    assert "LeadClaimed" in report["problem"]


def test_the_first_bad_position_is_the_earliest_over_the_whole_log(busy, store_url):
    """A rewrite found late (through its successor) still wins over an earlier-found change."""
    lead = positions(busy, "lead:L-1")
    desk = positions(busy, "desk:east:bob")
    raw = Raw(busy)
    early = lead[2]  # found only at the stream's last event, lead[5]
    changed = desk[-1]
    assert early < changed < lead[5]
    stream, version, state = raw.row(early)
    raw.set_state(early, forge(state, stream, version, event=bytes(codec.decode_raw(state).event)
                               .replace(b'"channel":"call"', b'"channel":"email"')))
    raw.set_state(changed, raw.row(changed)[2].replace(b'"held":1', b'"held":0', 1))
    assert bad(store_url)["first_bad_position"] == early


def test_a_digest_reads_the_stored_tree_and_verify_finds_the_broken_log(busy, store_url):
    """`digest` answers from the stored tree without a scan; `verify` finds the altered event.
    A byte changed without its recorded hash is the chains' to find: `verify --digest` checks
    what the digest binds, the recorded hashes, and they still hold."""
    taken = run_cli(store_url, "digest").json
    target = positions(busy, "lead:L-2")[1]
    stream, version, state = Raw(busy).row(target)
    Raw(busy).set_state(target, state.replace(b"alice", b"carol", 1))
    assert run_cli(store_url, "digest").json == taken
    assert bad(store_url)["first_bad_position"] == target
    assert run_cli(store_url, "verify", "--digest", taken["digest"]).code == 0
    with pytest.raises(IntegrityViolation) as caught:  # nor does the event's receipt hold
        check_receipt(busy.receipt(target))
    assert caught.value.details["failed"] == "record"


# --- forged records --------------------------------------------------------------------------

@pytest.mark.parametrize("garbage", [b"", b"not json", b"[]", b'{"hash":1}', b'{"hash":"x","prev":"y"}',
                                     None, "text, not bytes"])  # NULL, and (SQLite) a text value
def test_an_undecodable_record_is_found(busy, store_url, garbage):
    target = positions(busy, "lead:L-1")[2]
    Raw(busy).set_state(target, garbage)
    report = bad(store_url)
    assert report["first_bad_position"] == target
    assert "do not decode" in report["problem"]


@pytest.mark.parametrize("part", [{"event": b'{"type":"Nothing","x":1}'}, {"at": b'"yesterday"'}, {"at": b"1"}])
def test_a_rehashed_record_whose_event_or_time_does_not_decode_is_found(busy, store_url, part):
    target = positions(busy, "lead:L-1")[5]  # the stream's last: no successor to give it away
    stream, version, state = Raw(busy).row(target)
    Raw(busy).set_state(target, forge(state, stream, version, **part))
    report = bad(store_url)
    assert report["first_bad_position"] == target
    assert "do not decode" in report["problem"]


def test_a_duplicated_event_key_cannot_smuggle_an_unhashed_event(busy, store_url):
    target = positions(busy, "lead:L-1")[3]
    stream, version, state = Raw(busy).row(target)
    raw = codec.decode_raw(state)
    smuggled = bytes(raw.event).replace(b"alice", b"mallory")
    Raw(busy).set_state(target, state[:-1] + b',"event":' + smuggled + b"}")
    assert bad(store_url)["first_bad_position"] == target


def test_a_first_event_that_claims_a_predecessor_is_found(busy, store_url):
    target = positions(busy, "lead:L-4")[0]
    stream, version, state = Raw(busy).row(target)
    Raw(busy).set_state(target, forge(state, stream, version, prev="f" * 64))
    report = bad(store_url)
    assert report["first_bad_position"] == target


def test_a_rehashed_chain_rewrite_passes_the_chains_but_not_the_tree(busy, store_url):
    """Rewrite the last event of a stream and re-hash it: the chains hold, the stored tree (and
    an old digest, and an old lld1 digest) show it, the tree naming the event."""
    taken = run_cli(store_url, "digest").json
    old = busy.integrity.digest()["digest"]
    target = positions(busy, "lead:L-2")[-1]
    stream, version, state = Raw(busy).row(target)
    Raw(busy).set_state(target, forge(state, stream, version, event=bytes(codec.decode_raw(state).event)
                                      .replace(b"alice", b"carol")))
    assert bad(store_url)["first_bad_position"] == target
    report = bad(store_url, "--digest", taken["digest"])
    assert report["first_bad_position"] == target
    assert report["digest_position"] == taken["position"]
    assert bad(store_url, "--digest", old)["first_bad_position"] == target


# --- tampering only a digest shows -----------------------------------------------------------

def test_a_deleted_last_event_of_a_stream_is_found_with_a_digest(busy, store_url):
    taken = run_cli(store_url, "digest").json
    target = positions(busy, "desk:east:carol") or positions(busy, "lead:L-2")
    Raw(busy).delete(target[-1])
    assert bad(store_url)["first_bad_position"] == target[-1]  # every chain is whole; a position is missing
    report = bad(store_url, "--digest", taken["digest"])
    assert report["first_bad_position"] == target[-1]
    assert report["digest_position"] == taken["position"]


def test_a_deleted_newest_event_is_found_at_its_position_with_a_digest(busy, store_url):
    taken = run_cli(store_url, "digest").json
    last = busy.store.max_position()
    stream, version, state = Raw(busy).row(last)
    assert positions(busy, stream)[-1] == last
    Raw(busy).delete(last)
    assert bad(store_url)["first_bad_position"] == last  # the stored tree goes on where the log stops
    report = bad(store_url, "--digest", taken["digest"])
    assert report["first_bad_position"] == last
    assert "removed" in report["problem"]


def test_a_truncated_tail_is_found_at_its_first_missing_position(busy, store_url):
    keep = positions(busy, "lead:L-1")[1]
    taken = run_cli(store_url, "digest").json
    Raw(busy).run("DELETE FROM {events} WHERE {pos} > %s", [keep])
    report = bad(store_url)  # the stored tree goes on where the log stops
    assert report["first_bad_position"] == keep + 1
    assert f"ends at position {keep}, but the stored Merkle tree records events up to position {taken['position']}" \
        in report["problem"]
    report = bad(store_url, "--digest", taken["digest"])
    assert report["first_bad_position"] == keep + 1
    assert f"ends at position {keep}" in report["problem"]


def test_a_digest_of_another_longer_ledger_is_named_so(busy, store_url, tmp_path):
    """Not "events were removed": the digest is another ledger's, whose log is longer."""
    with Ledger(f"sqlite:///{tmp_path / 'other.db'}") as other:
        other.init("boss", "Boss", at=DAY2)
        for i in range(event_count(busy) + 5):
            other.add_person("boss", f"q{i}", f"Q {i}", "rep", at=DAY2)
        digest = other.digest()["digest"]
    report = bad(store_url, "--digest", digest)
    assert report["first_bad_position"] is None
    assert "another ledger" in report["problem"]


def test_a_truncated_then_regrown_log_is_found(busy, store_url):
    """After a truncation new events may reach the digest's position again (SQLite reuses it)."""
    taken = run_cli(store_url, "digest").json
    Raw(busy).run("DELETE FROM {events} WHERE {pos} > %s", [taken["position"] - 3])
    busy.add_person("root", "eve", "Eve", "rep", at=DAY2)
    busy.add_person("root", "fay", "Fay", "rep", at=DAY2)
    busy.add_person("root", "gus", "Gus", "rep", at=DAY2)
    busy.add_person("root", "hal", "Hal", "rep", at=DAY2)
    assert busy.store.max_position() > taken["position"]
    # positions are reused: the stored tree still holds the events that were cut off
    assert bad(store_url)["first_bad_position"] == taken["position"] - 2
    report = bad(store_url, "--digest", taken["digest"])
    assert report["first_bad_position"] == taken["position"] - 2


# --- an old tree head against the stored tree, and rows changed under it ---------------------

def rewrite(raw: Raw, position: int, old: bytes = b"alice", new: bytes = b"carol") -> bytes:
    """The event at `position` rewritten as a forger would (hash recomputed); its new record."""
    stream, version, state = raw.row(position)
    forged = forge(state, stream, version, event=bytes(codec.decode_raw(state).event).replace(old, new))
    raw.set_state(position, forged)
    return forged


@pytest.fixture
def longer(busy: Ledger) -> Ledger:
    """The busy world grown to a few levels of tree (a few dozen events)."""
    for i in range(12):
        busy.add_person("root", f"p{i}", f"P {i}", "rep", at=DAY2)
    return busy


def test_the_digest_check_reads_the_digests_events_not_the_whole_log(longer, store_url):
    old = run_cli(store_url, "digest", "--upto", "20").json
    seen: list[int] = []
    report = longer.verify(old["digest"], progress=seen.append)
    assert report == {"ok": True, "events_checked": 20, "first_bad_position": None, "problem": None,
                      "digest_position": 20}
    assert sum(seen) == 20 < longer.store.max_position()


def test_a_store_rewritten_in_the_middle_is_caught_by_an_old_digest_at_its_position(longer, store_url):
    """A stream rewritten from its second event on, every later event re-chained: the chains
    hold; the stored tree (plain verify) and an old digest (by its proofs) name the first one."""
    old = run_cli(store_url, "digest").json
    lead = positions(longer, "lead:L-1")
    raw = Raw(longer)
    prev = None
    for position in lead[1:]:
        stream, version, state = raw.row(position)
        event = bytes(codec.decode_raw(state).event).replace(b"alice", b"mallory").replace(b"bob", b"mallory")
        forged = forge(state, stream, version, event=event, prev=prev)
        raw.set_state(position, forged)
        prev = codec.decode_raw(forged).hash
    assert bad(store_url)["first_bad_position"] == lead[1]
    report = bad(store_url, "--digest", old["digest"])
    assert report["first_bad_position"] == lead[1]
    assert report["events_checked"] == old["position"]
    assert f"up to position {old['position']} is not the one the digest was taken of" in report["problem"]


def test_a_rewrite_after_the_digest_is_not_the_digests_to_find(longer, store_url):
    old = run_cli(store_url, "digest", "--upto", "20").json
    target = positions(longer, "desk:east:bob")[-1]
    assert target > 20
    rewrite(Raw(longer), target, b'"held":', b'"held": ')
    assert run_cli(store_url, "verify", "--digest", old["digest"]).code == 0
    assert bad(store_url)["first_bad_position"] == target  # the stored tree recorded another event


def test_an_event_rewritten_with_its_tree_leaf_is_caught_by_a_digest_but_not_named(longer, store_url):
    """A forger who rewrites a stream's last event and the stored leaf of its position: the
    chains and the stored leaves agree with the events; the leaf's parent does not, and an old
    digest fails. No position is named: below that parent nothing stored is to be trusted."""
    old = run_cli(store_url, "digest").json
    target = positions(longer, "lead:L-2")[-1]
    raw = Raw(longer)
    raw.set_leaf(target, rewrite(raw, target))
    assert run_cli(store_url, "verify").code == 0
    report = bad(store_url, "--digest", old["digest"])
    assert report["first_bad_position"] is None
    assert "is not the one the digest was taken of" in report["problem"]


def test_an_event_rewritten_with_the_whole_tree_is_caught_by_a_digest_but_not_named(longer, store_url):
    """The forger also drops the stored tree; the ledger builds it again from the events as they
    are. Everything the store holds agrees; only a digest kept outside it shows the change."""
    old = run_cli(store_url, "digest").json
    target = positions(longer, "lead:L-2")[-1]
    raw = Raw(longer)
    rewrite(raw, target)
    raw.run("DELETE FROM {tree}")
    assert run_cli(store_url, "digest").json["digest"] != old["digest"]  # rebuilt on this first use
    assert run_cli(store_url, "verify").code == 0
    report = bad(store_url, "--digest", old["digest"])
    assert report["first_bad_position"] is None
    assert "is not the one the digest was taken of" in report["problem"]


def test_a_stored_tree_changed_under_intact_events_is_named(longer, store_url):
    """Tree rows changed, the events intact: they extend the digest, the stored tree does not;
    the position whose stored leaf and every parent above it were changed is named."""
    old = run_cli(store_url, "digest").json
    size = old["position"]
    target = 6
    raw = Raw(longer)
    for level in range(size.bit_length()):
        raw.run("UPDATE {tree} SET hash = %s WHERE level = %s AND idx = %s",
                [bytes(32), level, (target - 1) >> level])
    report = bad(store_url, "--digest", old["digest"])
    assert report["first_bad_position"] == target
    assert "not the one the stored Merkle tree recorded" in report["problem"]


def test_a_stored_parent_changed_alone_fails_a_digest_without_a_position(longer, store_url):
    old = run_cli(store_url, "digest").json
    top = merkle.root_keys(old["position"])[0]
    Raw(longer).run("UPDATE {tree} SET hash = %s WHERE level = %s AND idx = %s", [bytes(32), *top])
    report = bad(store_url, "--digest", old["digest"])
    assert report["first_bad_position"] is None
    assert "consistency proof" in report["problem"]


# --- digests that cannot be checked ----------------------------------------------------------

def test_a_digest_of_another_ledger_is_an_integrity_violation(busy, store_url, tmp_path):
    with Ledger(f"sqlite:///{tmp_path / 'other.db'}") as other:
        other.init("root", "Root Admin", at=T0)
        foreign = other.digest()["digest"]
    report = bad(store_url, "--digest", foreign)
    assert report["first_bad_position"] is None
    assert "another ledger" in report["problem"]


def test_the_digest_of_an_empty_log_is_extended_by_any_log(busy):
    assert busy.verify("lld1:-:0:-")["ok"] is True


GOOD = "lld1:" + "0" * 16 + ":5:" + "a" * 64


@pytest.mark.parametrize("text", [
    "", "lld1", "nonsense", GOOD.replace("lld1", "lld2"), GOOD.replace(":5:", ":0:"),
    GOOD.replace(":5:", ":-5:"), GOOD.replace(":5:", ":²:"), GOOD.replace(":5:", ":5.0:"),
    GOOD[:-1], GOOD + "a", GOOD[:-2] + "zz", GOOD.replace("a" * 64, "aa " * 21 + "a"),
    GOOD.replace("0" * 16, "0" * 15), GOOD + ":extra", GOOD.replace(":5:", ":99999999999999999999:"),
])
def test_a_malformed_digest_is_invalid_input_and_checks_nothing(busy, store_url, text):
    before = event_count(busy)
    out = run_cli(store_url, "verify", "--digest", text)
    assert out.code == 2, out
    assert out.json["error"]["code"] == "invalid_input"
    assert "malformed digest" in out.json["error"]["message"]
    assert "ok" not in out.json
    assert event_count(busy) == before
    with pytest.raises(InvalidInput):
        busy.verify(text)


def test_a_digest_beyond_the_log_is_refused(busy, store_url):
    real = parse_digest(busy.integrity.digest()["digest"])
    ahead = f"lld1:{real.ledger}:{real.position + 10}:{real.rolling}"
    report = bad(store_url, "--digest", ahead)
    assert report["first_bad_position"] == real.position + 1
    with pytest.raises(IntegrityViolation) as caught:
        busy.verify(ahead)
    assert caught.value.details["first_bad_position"] == real.position + 1


def test_text_output_names_the_position(busy, store_url):
    target = positions(busy, "lead:L-1")[1]
    stream, version, state = Raw(busy).row(target)
    Raw(busy).set_state(target, state.replace(b"alice", b"alicf", 1))
    out = run_cli(store_url, "verify", as_json=False)
    assert out.code == 6
    assert out.stdout == ""
    assert f"position {target}" in out.stderr and "[integrity_violation]" in out.stderr


def plain(value) -> bool:
    """Only JSON's own types: dict with text keys, list, text, int, float, bool, None."""
    if isinstance(value, dict):
        return all(isinstance(k, str) and plain(v) for k, v in value.items())
    if isinstance(value, list):
        return all(plain(v) for v in value)
    return value is None or isinstance(value, (str, int, float, bool))


def test_reports_decode_as_json(busy):
    """Every field of the report is plain JSON (the CLI prints it as is): it survives a JSON
    round trip unchanged, a good report and a failing one alike."""
    good = busy.verify()
    assert good["ok"] is True and plain(good)
    assert msgspec.json.decode(msgspec.json.encode(good)) == good
    target = positions(busy, "lead:L-1")[1]
    stream, version, state = Raw(busy).row(target)
    Raw(busy).set_state(target, state.replace(b"alice", b"alicf", 1))
    with pytest.raises(IntegrityViolation) as caught:
        busy.verify()
    failed = caught.value.to_dict()
    assert failed["first_bad_position"] == target and plain(failed)
    assert msgspec.json.decode(msgspec.json.encode(failed)) == failed
