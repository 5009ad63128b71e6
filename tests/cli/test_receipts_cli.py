"""`keygen` and `verify-receipt`: they need no store; exit 0, 2 and 6; JSON shapes.
Receipts are built from real stored events on SQLite and PostgreSQL."""

from __future__ import annotations

import copy
import io
import json
import subprocess
import sys
import os
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import cli
from commands import offline
from commands import root as commands_root
from ledger import chain, checkpoint
from ledger.errors import InvalidInput
from tests.conftest import Run, run_cli
from tests.receipt_kit import from_ledger

AT1 = "2026-03-03T09:00:00Z"
RESULT_KEYS = {"ok", "position", "stream", "version", "tree_size", "root", "signed", "public_key", "key_checked",
               "digest"}


@pytest.fixture
def nowhere(tmp_path) -> str:
    """A store that does not exist: commands that need no store must not touch it."""
    return f"sqlite:///{tmp_path / 'absent' / 'no.db'}"


@pytest.fixture
def signed(world, tmp_path):
    """A real log with a claim and a follow-up, a key, and receipts of its events."""
    world.claim("alice", "L-1", at=AT1)
    world.follow_up("alice", "L-1", "called the buyer", channel="call", at=AT1)
    log = from_ledger(world)
    key = Ed25519PrivateKey.generate()
    return log, key, checkpoint.b64(checkpoint.public_key_of(key)), tmp_path


def write(tmp_path, receipt, name="receipt.json") -> str:
    path = tmp_path / name
    path.write_text(json.dumps(receipt, ensure_ascii=False), encoding="utf-8")
    return str(path)


@pytest.fixture(params=["plain", "click"])
def route(request) -> str:
    """How the line is run: as given (a plain `verify-receipt` skips click) or by click."""
    return request.param


def verify(route: str, store: str, *args: str, as_json: bool = True):
    return run_cli(store, "verify-receipt", *args, as_json=as_json, through_click=route == "click")


def integrity_error(run) -> dict:
    assert run.code == 6, run
    out = json.loads(run.stdout)
    assert out["ok"] is False and out["failed"]
    assert out["error"]["code"] == "integrity_violation" and out["failed"] in out["error"]["message"]
    return out


def bad_input(run) -> dict:
    assert run.code == 2, run
    err = json.loads(run.stdout)["error"]
    assert err["code"] == "invalid_input" and err["message"]
    return err


# --- keygen -------------------------------------------------------------------------------

def test_keygen_writes_a_private_key_only_its_owner_may_read(tmp_path, nowhere):
    path = tmp_path / "signing.pem"
    run = run_cli(nowhere, "keygen", str(path))
    assert run.code == 0 and run.stderr == "", run
    out = json.loads(run.stdout)
    assert out == {"key_file": str(path), "public_key": out["public_key"]}
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    key = checkpoint.load_signing_key(path)
    assert checkpoint.b64(checkpoint.public_key_of(key)) == out["public_key"]
    assert checkpoint.parse_public_key(out["public_key"])
    assert not (tmp_path / "absent").exists()


def test_keygen_never_overwrites_a_file(tmp_path, nowhere):
    path = tmp_path / "signing.pem"
    path.write_text("precious")
    err = bad_input(run_cli(nowhere, "keygen", str(path)))
    assert "exists" in err["message"]
    assert path.read_text() == "precious"
    text = run_cli(nowhere, "keygen", str(path), as_json=False)
    assert text.code == 2 and text.stdout == "" and "[invalid_input]" in text.stderr
    bad_input(run_cli(nowhere, "keygen", str(tmp_path / "no-such-dir" / "k.pem")))


def test_keygen_text_output(tmp_path, nowhere):
    run = run_cli(nowhere, "keygen", str(tmp_path / "k.pem"), as_json=False)
    assert run.code == 0 and "public key" in run.stdout and run.stderr == ""


@pytest.mark.parametrize("path", ["", "k.pem\x00"])
def test_a_signing_key_path_that_names_no_file_is_bad_input(path):
    with pytest.raises(InvalidInput, match="not a valid file name"):
        checkpoint.load_signing_key(path)


def test_a_signing_key_file_is_read_up_to_its_limit(tmp_path):
    key = tmp_path / "k.pem"
    checkpoint.write_new_key(key)
    padded = key.read_bytes() + b"\n" * (checkpoint.MAX_KEY - key.stat().st_size)
    key.write_bytes(padded)  # PEM with trailing lines, at the limit: still a key
    assert checkpoint.load_signing_key(key)
    key.write_bytes(padded + b"\n")
    with pytest.raises(InvalidInput, match="larger than"):
        checkpoint.load_signing_key(key)


# --- verify-receipt: what holds -----------------------------------------------------------

def test_a_receipt_of_each_stored_event_verifies(signed, nowhere, route):
    log, key, public, tmp_path = signed
    for position in range(1, log.size + 1):
        path = write(tmp_path, log.receipt(position, key=key))
        run = verify(route, nowhere, path, "--public-key", public)
        assert run.code == 0 and run.stderr == "", run
        out = json.loads(run.stdout)
        assert RESULT_KEYS <= out.keys() and out["ok"] and out["position"] == position
        assert out["tree_size"] == log.size and out["key_checked"] and out["public_key"] == public
        assert out["digest"].startswith(checkpoint.PREFIX)
    assert not os.path.exists(nowhere.removeprefix("sqlite:///"))


def test_the_change_feed_object_is_the_receipts_event(signed):
    log, *_ = signed
    types = {log.feed[p]["type"] for p in log.feed}
    assert {"LeadClaimed", "FollowUpLogged", "LeadAdded"} <= types
    claim = next(p for p in log.feed if log.feed[p]["type"] == "LeadClaimed")
    assert log.receipt(claim)["event"] == log.feed[claim]
    assert log.feed[claim]["rep"] == "alice" and log.feed[claim]["position"] == claim


def test_with_a_digest_and_without_a_key(signed, nowhere, route):
    log, key, public, tmp_path = signed
    old = log.head(log.size - 3, key).digest()
    path = write(tmp_path, log.receipt(2, key=key, since=log.size - 3))
    out = json.loads(verify(route, nowhere, path, "--digest", old).stdout)
    assert out["ok"] and out["digest_position"] == log.size - 3 and out["key_checked"] is False
    text = verify(route, nowhere, path, "--digest", old, as_json=False)
    assert text.code == 0 and text.stdout.startswith("ok:") and "compare it" in text.stdout
    raw_note = log.head(log.size - 3).note()  # the note as is, not base64
    assert verify(route, nowhere, path, "--digest", raw_note).code == 0


def test_from_stdin(signed, nowhere):
    log, *_ = signed
    runner = CliRunner()
    with runner.isolation(input=json.dumps(log.receipt(3))) as (out, _err, _):
        with pytest.raises(SystemExit) as done:
            cli.main(["--store", nowhere, "--json", "verify-receipt", "-"])
    assert done.value.code == 0 and json.loads(out.getvalue())["signed"] is False


# --- verify-receipt: what fails -----------------------------------------------------------

def test_a_forged_receipt_fails_naming_what(signed, nowhere, route):
    log, key, public, tmp_path = signed
    claim = next(p for p in log.feed if log.feed[p]["type"] == "LeadClaimed")
    good = log.receipt(claim, key=key)
    other = Ed25519PrivateKey.generate()
    forgeries = {
        "event": lambda r: r["event"].update(rep="bob"),
        "inclusion_proof": lambda r: r["inclusion_proof"].pop(),
        "leaf_hash": lambda r: r.update(leaf_hash="00" * 32),
        "tree_size": lambda r: r.update(tree_size=0),
        "root": lambda r: r.update(root="xyz"),
    }
    for failed, forge in forgeries.items():
        receipt = copy.deepcopy(good)
        forge(receipt)
        out = integrity_error(verify(route, nowhere, write(tmp_path, receipt), "--public-key", public))
        assert out["failed"] == failed
    resigned = write(tmp_path, log.receipt(claim, key=other))
    assert integrity_error(verify(route, nowhere, resigned, "--public-key", public))["failed"] == "signature"
    text = verify(route, nowhere, resigned, "--public-key", public, as_json=False)
    assert text.code == 6 and text.stdout == "" and "[integrity_violation]" in text.stderr


def test_a_digest_the_log_does_not_extend_fails(signed, nowhere, route):
    log, key, public, tmp_path = signed
    path = write(tmp_path, log.receipt(2, key=key, size=log.size - 1, since=log.size - 1))
    forked = checkpoint.head(log.origin(), log.size - 1, bytes(32)).digest()  # this log's origin, another root
    out = integrity_error(verify(route, nowhere, path, "--digest", forked, "--public-key", public))
    assert out["failed"] == "digest"


def test_a_digest_later_than_the_receipt_is_bad_input_not_a_failure(signed, nowhere, route):
    """A genuine receipt holds no proof about a later head: it cannot be checked offline."""
    log, key, public, tmp_path = signed
    path = write(tmp_path, log.receipt(2, key=key, size=log.size - 1, since=log.size - 1))
    later = log.head(log.size, key).digest()
    err = bad_input(verify(route, nowhere, path, "--digest", later, "--public-key", public))
    assert "`leadledger receipt 2 --digest D`" in err["message"] and "offline" in err["message"]
    assert (err["digest_position"], err["tree_size"]) == (log.size, log.size - 1)
    other = Ed25519PrivateKey.generate()  # still a failure when the receipt is forged: checked first
    assert integrity_error(verify(route, nowhere, write(tmp_path, log.receipt(2, key=other, size=log.size - 1)),
                                  "--digest", later, "--public-key", public))["failed"] == "signature"


def test_an_unreadable_file_is_bad_input(signed, nowhere, route):
    log, key, public, tmp_path = signed
    bad_input(verify(route, nowhere, str(tmp_path / "missing.json")))
    for name, content in [("text.json", b"not json"), ("list.json", b"[1, 2]"), ("bin.json", b"\xff\xfe\x00"),
                          ("deep.json", b"[" * 100_000)]:
        (tmp_path / name).write_bytes(content)
        bad_input(verify(route, nowhere, str(tmp_path / name)))
    path = write(tmp_path, log.receipt(2, key=key))
    assert "digest" in bad_input(verify(route, nowhere, path, "--digest", "lld1:nonsense"))["message"]
    assert "public key" in bad_input(verify(route, nowhere, path, "--public-key", "AAAA"))["message"]
    usage = verify(route, nowhere)
    assert usage.code == 2 and json.loads(usage.stdout)["error"]["code"] == "invalid_input"


def test_a_record_nested_too_deeply_to_read_fails(signed, nowhere, route):
    """A forger's record, its hash made to match, whose event nests deeper than Python reads."""
    log, key, public, tmp_path = signed
    receipt = log.receipt(2, key=key)
    record = receipt["record"]
    stored = json.loads(record["state"])
    depth = sys.getrecursionlimit() - 20
    event = json.dumps(stored["event"])[:-1] + ', "deep": ' + "[" * depth + "]" * depth + "}"
    at = json.dumps(stored["recorded_at"])
    digest = chain.chain_hash(record["stream"], record["version"], stored["prev"], at.encode(), event.encode())
    record["state"] = f'{{"hash":"{digest}","prev":"{stored["prev"]}","recorded_at":{at},"event":{event}}}'
    assert integrity_error(verify(route, nowhere, write(tmp_path, receipt)))["failed"]


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_a_plain_line_answers_as_click_does(signed, nowhere, lang):
    log, key, public, tmp_path = signed
    good = log.receipt(2, key=key)
    forged = copy.deepcopy(good)
    forged["root"] = "00" * 32
    files = [write(tmp_path, good, "good.json"), write(tmp_path, forged, "forged.json")]
    for args in ([files[0]], [files[0], "--public-key", public], [files[1]], [str(tmp_path / "missing.json")],
                 [files[0], "--digest", "lld1:nonsense"], [f"--public-key={public}", files[0]]):
        for as_json in (True, False):
            plain, clicked = (run_cli(nowhere, "--lang", lang, "verify-receipt", *args, as_json=as_json,
                                      through_click=through) for through in (False, True))
            assert plain == clicked and plain.code in (0, 2, 6)


# --- verify-receipt: input that is no receipt, forged fields ------------------------------

def verify_stdin(route: str, store: str, data: bytes) -> Run:
    """verify-receipt - with `data` on stdin, in-process (plain or through click)."""
    argv = ["--store", store, "--json", "verify-receipt", "-"]
    with CliRunner().isolation(input=data) as (out, err, _):
        try:
            (commands_root.invoke if route == "click" else cli.main)(argv)
            code = 0
        except SystemExit as e:
            code = e.code
    return Run(code, out.getvalue().decode(), err.getvalue().decode())


@pytest.mark.parametrize(("part", "old", "new"), [
    ("stream", "lead:L-1", "lead:L-\ud800"), ("state", '"rep":"alice"', '"rep":"al\ud800ice"'),
])
def test_a_lone_surrogate_in_the_record_fails_on_file_and_stdin_alike(signed, nowhere, route, part, old, new):
    log, key, public, tmp_path = signed
    claim = next(p for p in log.feed if log.feed[p]["type"] == "LeadClaimed")
    receipt = log.receipt(claim, key=key)
    assert old in receipt["record"][part]
    receipt["record"][part] = receipt["record"][part].replace(old, new)
    text = json.dumps(receipt)  # JSON escapes it: \\ud800
    path = tmp_path / "forged.json"
    path.write_text(text, encoding="ascii")
    assert integrity_error(verify(route, nowhere, str(path)))["failed"] == "record"
    assert integrity_error(verify_stdin(route, nowhere, text.encode()))["failed"] == "record"


def test_bytes_that_are_not_utf8_are_bad_input_on_file_and_stdin_alike(signed, nowhere, route):
    log, _key, _public, tmp_path = signed
    data = json.dumps(log.receipt(2)).replace('"version"', '"\xff"', 1).encode("latin-1")
    (tmp_path / "ff.json").write_bytes(data)
    assert "utf-8" in bad_input(verify(route, nowhere, str(tmp_path / "ff.json")))["message"]
    assert "utf-8" in bad_input(verify_stdin(route, nowhere, data))["message"]


def test_stdin_whose_text_layer_keeps_bad_bytes_as_surrogates_is_bad_input(signed):
    """Python's stdin keeps undecodable bytes as surrogates under the C locale or UTF-8 mode."""
    log, *_ = signed
    data = json.dumps(log.receipt(2)).replace('"version"', '"\xff"', 1).encode("latin-1")
    env = {**os.environ, "PYTHONIOENCODING": "utf-8:surrogateescape"}
    run = subprocess.run([sys.executable, "-c", "import cli; cli.main()", "--json", "verify-receipt", "-"],
                         input=data, env=env, capture_output=True, timeout=120, check=False,
                         cwd=Path(cli.__file__).parent)
    assert run.returncode == 2 and b"Traceback" not in run.stderr, run.stderr
    assert json.loads(run.stdout)["error"]["code"] == "invalid_input"


def test_a_text_stdin_with_surrogates_is_not_text(monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO('{"event": "\udcff"}'))
    with pytest.raises(InvalidInput, match="not a JSON receipt"):
        offline.read("-")


def test_input_larger_than_a_receipt_is_bad_input(signed, nowhere, route):
    log, _key, _public, tmp_path = signed

    def padded(size: int) -> str:  # the receipt with a field the check does not read, `size` bytes long
        head = json.dumps(log.receipt(2))[:-1] + ', "pad": "'
        return head + "a" * (size - len(head) - 2) + '"}'

    big = padded(offline.MAX_RECEIPT + 1)
    (tmp_path / "big.json").write_text(big)
    assert "larger than" in bad_input(verify(route, nowhere, str(tmp_path / "big.json")))["message"]
    assert "larger than" in bad_input(verify_stdin(route, nowhere, big.encode()))["message"]
    (tmp_path / "fits.json").write_text(padded(offline.MAX_RECEIPT))
    assert verify(route, nowhere, str(tmp_path / "fits.json")).code == 0
    if Path("/dev/zero").exists():  # it never ends: read up to the limit only
        assert "larger than" in bad_input(verify(route, nowhere, "/dev/zero"))["message"]


def test_a_file_name_with_a_nul_is_bad_input():
    with pytest.raises(InvalidInput, match="not a valid file name"):
        offline.read("receipt.json\x00")


@pytest.mark.parametrize(("field", "value"), [("note", "a forged note"), ("erased", True)])
def test_a_personal_field_forged_onto_an_event_that_never_has_it_fails(signed, nowhere, route, field, value):
    log, key, public, tmp_path = signed
    granted = next(p for p in log.feed if log.feed[p]["type"] == "MembersGranted")
    receipt = log.receipt(granted, key=key)
    assert verify(route, nowhere, write(tmp_path, receipt), "--public-key", public).code == 0
    receipt["event"][field] = value
    out = integrity_error(verify(route, nowhere, write(tmp_path, receipt), "--public-key", public))
    assert out["failed"] == "event" and repr(field) in out["error"]["message"]
