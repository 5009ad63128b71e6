"""Receipts and tree heads from a real store (spec section 8), on both backends: the stored
Merkle tree, digests that stay valid while the log grows, receipts checked with no store,
stores from before the tree, and files that are not intact ledgers."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
from datetime import datetime
from pathlib import Path

import pytest

from ledger import checkpoint, codec, merkle
from ledger import events as ev
from ledger.application import Ledger
from ledger.codec import GENESIS
from ledger.errors import InvalidInput
from ledger.receipt_check import check_receipt
from ledger.state import lead_stream
from ledger.store import NewEvent
from ledger.store.merkle import COPY_FROM, MERKLE_TABLE
from tests.conftest import run_cli
from tests.integration.test_fixture_store import FIXTURE, copy_to_postgresql
from tests.integration.test_integrity import Raw

DAY2 = "2026-03-03T09:00:00Z"


@pytest.fixture(autouse=True)
def no_signing_key(monkeypatch):
    monkeypatch.delenv("LEADLEDGER_SIGNING_KEY", raising=False)


def check(file: Path, *args: str):
    """verify-receipt, which needs no store: a store URL that names nothing."""
    return run_cli("sqlite:///nowhere/none.db", "verify-receipt", str(file), *args)


def recomputed_root(led: Ledger, size: int) -> bytes:
    """The tree head at `size` computed from the events alone, as an auditor would."""
    frontier = merkle.Frontier()
    for row in led.store.read_log_raw(after=0, limit=size):
        frontier.append(merkle.leaf_hash(bytes.fromhex(codec.decode_raw(row[4]).hash)))
    return frontier.root()


def test_a_claims_receipt_is_checked_with_no_store(world, store_url, tmp_path):
    file = tmp_path / "claim.json"
    out = run_cli(store_url, "claim", "L-1", "--receipt", str(file), actor="alice")
    assert out.code == 0, out
    receipt = json.loads(file.read_text())
    assert receipt["event"]["position"] == out.json["position"]
    assert receipt["event"]["type"] == "LeadClaimed" and receipt["event"]["stream"] == "lead:L-1"
    assert receipt["tree_size"] == world.store.max_position()
    assert bytes.fromhex(receipt["root"]) == recomputed_root(world, receipt["tree_size"])
    ok = check(file)
    assert ok.code == 0, ok
    assert ok.json["position"] == receipt["event"]["position"] and ok.json["signed"] is False
    receipt["event"]["owner"] = "bob"  # any bound field changed: the check fails, naming it
    file.write_text(json.dumps(receipt))
    failed = check(file)
    assert failed.code == 6 and failed.json["failed"] == "event"


@pytest.mark.parametrize("command", [("claim", "L-1"), ("assign", "L-1", "--to", "alice")])
@pytest.mark.parametrize("problem", ["missing folder", "a folder", "bad key", "missing key"])
def test_a_receipt_that_could_not_be_made_refuses_the_command_before_it_records(
        world, store_url, tmp_path, monkeypatch, command, problem):
    folder = tmp_path / "receipts"
    folder.mkdir()
    file = {"missing folder": folder / "no" / "r.json", "a folder": folder}.get(problem, folder / "r.json")
    if problem == "bad key":
        (tmp_path / "bad.key").write_text("not a key")
        monkeypatch.setenv("LEADLEDGER_SIGNING_KEY", str(tmp_path / "bad.key"))
    if problem == "missing key":
        monkeypatch.setenv("LEADLEDGER_SIGNING_KEY", str(tmp_path / "none.key"))
    before = world.store.max_position()
    out = run_cli(store_url, *command, "--receipt", str(file), actor="alice" if command[0] == "claim" else "mgr")
    assert out.code == 2 and out.json["error"]["code"] == "invalid_input", out
    assert world.store.max_position() == before  # nothing recorded, not even a refusal
    assert not any(folder.iterdir())


def test_a_receipt_lost_after_its_event_was_recorded_is_a_warning(world, store_url, tmp_path):
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full to fill")
    out = run_cli(store_url, "claim", "L-1", "--receipt", "/dev/full", actor="alice")
    assert out.code == 0 and out.json["event"] == "LeadClaimed", out  # the one object: the claim's
    position = out.json["position"]
    assert f"receipt {position} --out" in out.stderr
    assert run_cli(store_url, "owner", "L-1").json["owner"] == "alice"


def test_receipt_digest_and_verify_receipt_of_every_event(busy_log, store_url, tmp_path):
    size = busy_log.store.max_position()
    head = run_cli(store_url, "digest").json
    assert head["position"] == size and head["signature"] is None
    assert bytes.fromhex(head["root"]) == recomputed_root(busy_log, size)
    assert checkpoint.parse_digest(head["digest"]).root.hex() == head["root"]
    for position in range(1, size + 1):
        out = run_cli(store_url, "receipt", str(position))
        assert out.code == 0, out
        assert out.json["root"] == head["root"] and out.json["event"]["position"] == position
        file = tmp_path / f"r{position}.json"
        file.write_text(out.stdout)
        assert check(file).code == 0


def test_signed_heads_and_receipts(busy_log, store_url, tmp_path, monkeypatch):
    key = tmp_path / "signing.pem"
    public = run_cli(store_url, "keygen", str(key)).json["public_key"]
    head = run_cli(store_url, "digest", "--signing-key", str(key)).json
    assert head["public_key"] == public and head["signature"]
    assert checkpoint.parse_digest(head["digest"]).verify(checkpoint.parse_public_key(public))
    monkeypatch.setenv("LEADLEDGER_SIGNING_KEY", str(key))
    file = tmp_path / "r.json"
    assert run_cli(store_url, "receipt", "3", "--out", str(file)).code == 0
    assert check(file, "--public-key", public).code == 0
    other = checkpoint.b64(checkpoint.public_key_of(checkpoint.write_new_key(tmp_path / "other.pem")))
    assert check(file, "--public-key", other).json["failed"] == "signature"


def test_digests_stay_valid_as_the_log_grows(busy_log, store_url, tmp_path):
    old = run_cli(store_url, "digest").json
    busy_log.claim("carol", "L-3", at=DAY2)
    busy_log.add_person("root", "eve", "Eve", "rep", at=DAY2)
    assert run_cli(store_url, "digest", "--upto", str(old["position"])).json["digest"] == old["digest"]
    out = run_cli(store_url, "verify", "--digest", old["digest"])
    assert out.code == 0, out
    assert out.json["digest_position"] == old["position"]
    file = tmp_path / "r.json"
    assert run_cli(store_url, "receipt", "2", "--digest", old["digest"], "--out", str(file)).code == 0
    assert json.loads(file.read_text())["consistency_proof"]
    ok = check(file, "--digest", old["digest"])
    assert ok.code == 0, ok and ok.json["digest_position"] == old["position"]
    now = run_cli(store_url, "digest").json["digest"]  # the receipt's own head: extends itself, no proof needed
    assert json.loads(file.read_text())["root"] == checkpoint.parse_digest(now).root.hex()
    assert check(file, "--digest", now).code == 0


def test_a_digest_later_than_the_receipt_is_bad_input_and_the_ledger_gives_one_that_extends_it(
        busy_log, store_url, tmp_path):
    file = tmp_path / "r.json"
    assert run_cli(store_url, "receipt", "2", "--out", str(file)).code == 0
    busy_log.claim("carol", "L-3", at=DAY2)
    later = run_cli(store_url, "digest").json["digest"]
    out = check(file, "--digest", later)
    assert (out.code, out.json["error"]["code"]) == (2, "invalid_input"), out
    assert "`leadledger receipt 2 --digest D`" in out.json["error"]["message"]
    assert run_cli(store_url, "receipt", "2", "--digest", later, "--out", str(file)).code == 0  # as it says
    assert check(file, "--digest", later).code == 0


def test_receipts_of_events_with_no_sealed_data_hold(busy_log, store_url, tmp_path):
    """The change feed leaves `sealed` out where it is null: a lead added with no personal
    data, a follow-up logged once the lead was erased. The record holds it null."""
    added = busy_log.add_lead("mgr", "M-1", "east", company="Acme Ltd", at=DAY2)["position"]
    busy_log.erase_lead("root", "L-1", "request", at=DAY2)
    noted = busy_log.follow_up("bob", "L-1", "called again", at=DAY2)["position"]
    sealed = next(e["position"] for e in busy_log.iter_events() if e["type"] == "LeadAdded" and e.get("sealed"))
    for position in (added, noted):
        file = tmp_path / f"r{position}.json"
        assert run_cli(store_url, "receipt", str(position), "--out", str(file)).code == 0
        receipt = json.loads(file.read_text())
        assert "sealed" not in receipt["event"] and '"sealed":null' in receipt["record"]["state"]
        out = check(file)
        assert out.code == 0, out
        assert check_receipt(receipt)["ok"]
    receipt = busy_log.receipt(sealed)  # a record that holds a sealed field: it is bound
    del receipt["event"]["sealed"]
    file = tmp_path / "forged.json"
    file.write_text(json.dumps(receipt))
    out = check(file)
    assert (out.code, out.json["failed"]) == (6, "event") and "sealed" in out.json["error"]["message"]


def test_a_signing_key_path_with_a_nul_is_invalid_input(busy_log, tmp_path):
    path = str(tmp_path / "k.pem") + "\x00"
    for call in (lambda: busy_log.digest(None, path), lambda: busy_log.receipt(2, None, path)):
        with pytest.raises(InvalidInput, match="not a valid file name") as e:
            call()
        assert (e.value.exit_code, e.value.code) == (2, "invalid_input")


def test_a_signing_key_file_too_large_to_be_one_is_invalid_input(busy_log, store_url, tmp_path):
    big = tmp_path / "big.pem"
    big.write_bytes(b"-" * (checkpoint.MAX_KEY + 1))
    for path in [str(big)] + (["/dev/zero"] if Path("/dev/zero").exists() else []):  # it never ends
        for command in (["digest"], ["receipt", "2"]):
            out = run_cli(store_url, *command, "--signing-key", path)
            assert (out.code, out.json["error"]["code"]) == (2, "invalid_input"), out
            assert "larger than" in out.json["error"]["message"]


@pytest.mark.parametrize("command", [("digest",), ("receipt", "1")])
def test_an_empty_signing_key_path_is_invalid_input(busy_log, store_url, command):
    out = run_cli(store_url, *command, "--signing-key", "")
    assert (out.code, out.json.get("error", {}).get("code")) == (2, "invalid_input"), out


def test_a_receipt_is_not_made_against_a_digest_this_log_does_not_extend(busy_log, store_url, tmp_path):
    with Ledger(f"sqlite:///{tmp_path / 'other.db'}") as other:
        other.init("root", "Root")
        elsewhere = other.digest()["digest"]
    size = busy_log.store.max_position()
    mine = checkpoint.parse_digest(run_cli(store_url, "digest", "--upto", "5").json["digest"])
    changed = checkpoint.head(mine.origin, mine.size, bytes(32)).digest()  # this log's origin, another root
    for digest in (elsewhere, changed):
        out = run_cli(store_url, "receipt", "2", "--digest", digest, "--out", str(tmp_path / "r.json"))
        assert (out.code, out.json["error"]["code"]) == (6, "integrity_violation"), out
        assert run_cli(store_url, "verify", "--digest", digest).code == 6
    assert not (tmp_path / "r.json").exists() and busy_log.store.max_position() == size


@pytest.mark.parametrize("args", [["--upto", "999"], ["--upto", "x"], ["--upto", "-1"]])
def test_a_digest_beyond_the_log_or_not_a_position_is_invalid_input(busy_log, store_url, args):
    out = run_cli(store_url, "digest", *args)
    assert out.code == 2 and out.json["error"]["code"] == "invalid_input"


@pytest.mark.parametrize("position", ["0", "999", "abc"])
def test_a_receipt_of_no_event_is_invalid_input(busy_log, store_url, position):
    out = run_cli(store_url, "receipt", position)
    assert out.code == 2 and out.json["error"]["code"] == "invalid_input"


def test_the_tree_is_stored_with_each_append(busy_log):
    size = busy_log.store.max_position()
    assert busy_log.store.tree.size() == size
    leaves = busy_log.store.tree.leaves(0, size)
    assert [leaves[i] for i in range(size)] == [
        merkle.leaf_hash(bytes.fromhex(s.hash)) for s in busy_log.store.read_log(after=0, limit=size)]


def _mth(leaves: list[bytes]) -> bytes:
    """RFC 9162's MTH over leaf hashes, written as the RFC writes it."""
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return hashlib.sha256(b"\x01" + _mth(leaves[:k]) + _mth(leaves[k:])).digest()


def test_appends_of_any_size_store_each_perfect_subtree_as_the_rfc_defines_it(busy_log, store_url):
    """Appends of 1 to 16 events (a few go as a VALUES list, more as arrays) at every alignment,
    by two writers that take turns and sometimes append twice in a row (on PostgreSQL a writer
    alone hashes the subtrees itself, one that follows another's append has the server hash
    them): each perfect subtree the log holds is stored, with MTH of its leaves, and no other."""
    made = 0
    with Ledger(store_url) as other:
        for writer, count in [(0, 1), (1, 2), (0, 3), (0, 1), (0, 5), (1, 8), (1, 9), (0, 16), (1, 4),
                              (0, 7), (1, 1), (1, 1), (1, 12), (0, 2), (1, 3)]:
            added = [ev.LeadAdded(occurred_at=datetime.fromisoformat(DAY2), actor="mgr",
                                  lead=f"T-{made + i}", pool="east", attributes=ev.Attributes())
                     for i in range(count)]
            (busy_log, other)[writer].store.append([NewEvent(lead_stream(e.lead), 1, GENESIS, e) for e in added])
            made += count
    store = busy_log.store
    size = store.max_position()
    leaves = [merkle.leaf_hash(bytes.fromhex(s.hash)) for s in store.read_log(after=0, limit=size)]
    perfect = {(level, idx) for level in range(size.bit_length()) for idx in range(size >> level)}
    stored = store.tree.nodes(perfect | {(level, size >> level) for level in range(size.bit_length() + 1)})
    assert stored == {(level, idx): _mth(leaves[idx << level:(idx + 1) << level]) for level, idx in perfect}
    assert busy_log.verify()["ok"] is True


def test_an_import_stores_the_tree(busy_log, store_url, tmp_path):
    """Enough leads that their subtrees (about two rows an event) go by COPY on PostgreSQL."""
    before = busy_log.store.max_position()
    csv = tmp_path / "leads.csv"
    csv.write_text("id,company,phone\n" + "".join(f"M-{i},Co {i},+86 138 0000 {i:04d}\n" for i in range(COPY_FROM)))
    out = run_cli(store_url, "lead", "import", str(csv), "--pool", "east", actor="root")
    assert out.code == 0, out
    size = busy_log.store.max_position()
    assert size > before + COPY_FROM // 2 and busy_log.store.tree.size() == size
    assert bytes.fromhex(run_cli(store_url, "digest").json["root"]) == recomputed_root(busy_log, size)
    assert run_cli(store_url, "verify").code == 0


@pytest.fixture
def v1_url(backend, store_url, tmp_path) -> str:
    """A copy of the fixture store written before the tree (on PostgreSQL, copied into it)."""
    copy = tmp_path / "store-v1.db"
    shutil.copyfile(FIXTURE / "store-v1.db", copy)
    if backend == "postgresql":
        copy_to_postgresql(copy, store_url, store_url.rsplit("schema=", 1)[1])
        return store_url
    return f"sqlite:///{copy}"


def test_an_old_store_gets_its_tree_and_answers_the_same(v1_url):
    with Ledger(v1_url) as led:
        size = led.store.max_position()
        assert not led.store.tree.size()  # written before the tree
        expected = recomputed_root(led, size)
        head = led.digest()
        assert bytes.fromhex(head["root"]) == expected and head["position"] == size
        assert led.store.tree.size() == size  # built once, on this first use
        assert led.verify(head["digest"])["ok"] is True
        led.add_person("root", "newcomer", "New Comer", "rep")  # now: after everything in the fixture
        assert led.verify(head["digest"])["ok"] is True
        assert led.store.tree.size() == size + 1


def test_every_event_of_an_old_store_has_a_receipt_that_holds(v1_url):
    # Its events lack fields added since (a sealed field), which the check reads with the codec
    # where what the standard library reads of them differs.
    older = 0
    with Ledger(v1_url) as led:
        for position in range(1, led.store.max_position() + 1):
            receipt = led.receipt(position)
            assert check_receipt(receipt)["position"] == position
            stored = json.loads(receipt["record"]["state"])["event"]
            older += stored["type"] in ("LeadAdded", "FollowUpLogged") and "sealed" not in stored
    assert older  # the fixture holds events of an older shape: stored before sealing


def test_a_read_only_old_store_answers_from_the_events(tmp_path):
    copy = tmp_path / "store-v1.db"
    shutil.copyfile(FIXTURE / "store-v1.db", copy)
    os.chmod(copy, 0o444)
    if os.geteuid() == 0:  # root writes whatever the mode: make the file immutable instead
        if subprocess.run(["chattr", "+i", str(copy)], capture_output=True).returncode != 0:
            pytest.skip("cannot make a file read-only for this user")
    try:
        with Ledger(f"sqlite:///{copy}") as led:
            head = led.digest()
            assert bytes.fromhex(head["root"]) == recomputed_root(led, head["position"])
            receipt = led.receipt(head["position"])
            assert receipt["root"] == head["root"]
            assert led.verify(head["digest"])["ok"] is True  # no stored tree: the events' own
    finally:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", str(copy)], check=True)
        os.chmod(copy, 0o644)
    con = sqlite3.connect(copy)
    try:
        assert not con.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (MERKLE_TABLE,)).fetchall()
    finally:
        con.close()


@pytest.mark.parametrize("damage", ["truncated", "garbage", "zeroed header"])
def test_a_damaged_store_is_not_ok(busy_log, store_url, damage):
    """SQLite: the file's bytes damaged. PostgreSQL keeps its own files (their damage is the
    server's to report, not a ledger's); the same damage there is rows changed behind the
    ledger's back by a superuser: the events cut away, every record overwritten, the first
    record's bytes zeroed. An empty log is a valid log: the cut is caught by a digest."""
    old = run_cli(store_url, "digest").json["digest"]
    path = Path(store_url.removeprefix("sqlite:///")) if store_url.startswith("sqlite") else None
    busy_log.close()
    if path is not None:
        data = path.read_bytes()
        path.write_bytes({"truncated": data[:len(data) // 3], "garbage": b"not a database at all " * 200,
                          "zeroed header": bytes(100) + data[100:]}[damage])
    else:
        Raw(busy_log).run({"truncated": "DELETE FROM {events}",
                           "garbage": "UPDATE {events} SET state = %s",
                           "zeroed header": "UPDATE {events} SET state = %s WHERE {pos} = 1"}[damage],
                          {"truncated": [], "garbage": [b"not a database at all"],
                           "zeroed header": [bytes(100)]}[damage])
    args = ["--digest", old] if path is None and damage == "truncated" else []
    out = run_cli(store_url, "verify", *args)
    assert out.code == 6, out
    assert out.json["ok"] is False and out.json["error"]["code"] == "integrity_violation"
    if path is None:
        assert out.json["first_bad_position"] == 1
    out = run_cli(store_url, "verify", "--digest", old)  # an old digest does not pass either
    assert out.code == 6, out
    assert out.json["ok"] is False and out.json["error"]["code"] == "integrity_violation"


@pytest.fixture
def busy_log(world):
    world.claim("alice", "L-1", at=DAY2)
    world.follow_up("alice", "L-1", "called", at=DAY2)
    world.release("alice", "L-1", at=DAY2)
    world.claim("bob", "L-1", at=DAY2)
    return world
