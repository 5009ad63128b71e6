"""The files commands write of their own (receipts, exports, pages, keys), through the real entry
point on SQLite and PostgreSQL: never over the store's own files or the signing key, whole or not
at all, and `--signing-key` on the commands that take `--receipt`."""

from __future__ import annotations

import builtins
import errno
import io
import json
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from commands.files import replacing
from ledger import checkpoint
from tests.conftest import run_cli

AT1 = "2026-03-03T09:00:00Z"
# (actor, command, its file option), each on the `world` below
WRITERS = [
    ("alice", ["claim", "L-2"], "--receipt"),
    ("mgr", ["assign", "L-3", "--to", "bob"], "--receipt"),
    (None, ["receipt", "3"], "--out"),
    (None, ["export", "holdings"], "--out"),
    (None, ["report", "--from", "2026-01-01", "--to", "2026-04-01"], "--html"),
    (None, ["dispute", "show", "L-1-D1"], "--html"),
]
WRITER_IDS = ["claim", "assign", "receipt", "export", "report", "dispute-show"]
# (actor, command) of every command that takes --receipt, on the `world` below
RECORDERS = [
    ("alice", ["claim", "L-2"]),
    ("mgr", ["assign", "L-3", "--to", "bob"]),
    ("mgr", ["reassign", "L-4", "--to", "carol", "--reason", "bob on leave"]),
    ("audrey", ["dispute", "resolve", "L-1-D1", "--uphold", "--rationale", "alice called first"]),
]


@pytest.fixture(autouse=True)
def no_signing_key(monkeypatch):
    monkeypatch.delenv("LEADLEDGER_SIGNING_KEY", raising=False)


@pytest.fixture
def disputed(world):
    """The world with L-1 held by alice and disputed by bob, L-4 held by bob."""
    world.claim("alice", "L-1", at=AT1)
    world.claim("bob", "L-4", at=AT1)
    world.open_dispute("bob", "L-1", "I called first", at=AT1)
    return world


def new_key(path: Path) -> str:
    """A signing key written to `path`; its public key, as verify-receipt takes it."""
    return checkpoint.b64(checkpoint.public_key_of(checkpoint.write_new_key(path)))


def refused(run, ledger, before: int) -> str:
    """A refusal: exit 2, invalid_input, nothing recorded; its message."""
    assert run.code == 2, run
    error = run.json["error"]
    assert error["code"] == "invalid_input", run
    assert ledger.store.max_position() == before
    return error["message"]


def intact(store_url: str) -> None:
    run = run_cli(store_url, "verify")
    assert run.code == 0, run


def leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if p.name.startswith(".leadledger-")]


# --- never over the store's own files --------------------------------------------------------

@pytest.mark.parametrize("backend", ["sqlite"])  # a PostgreSQL store has no files to name
@pytest.mark.parametrize("actor, command, option", WRITERS, ids=WRITER_IDS)
@pytest.mark.parametrize("spelling", ["ledger.db", "./ledger.db", "sub/../ledger.db", "link.json",
                                      "ledger.db-wal", "ledger.db-shm", "ledger.db-journal", "ledger.db-lock",
                                      "ABSOLUTE"])
def test_an_output_never_names_a_file_of_the_sqlite_store(disputed, store_url, tmp_path, monkeypatch, backend,
                                                          actor, command, option, spelling):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    (tmp_path / "link.json").symlink_to("ledger.db")
    target = str(tmp_path / "ledger.db") if spelling == "ABSOLUTE" else spelling
    existing = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file() and not p.is_symlink()}
    before = disputed.store.max_position()
    message = refused(run_cli(store_url, *command, option, target, actor=actor), disputed, before)
    assert "store" in message
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()
            if p.name in existing and not p.name.startswith("ledger.db")} == \
        {k: v for k, v in existing.items() if not k.startswith("ledger.db")}
    assert not leftovers(tmp_path) and (tmp_path / "link.json").is_symlink()
    intact(store_url)


@pytest.mark.parametrize("backend", ["sqlite"])
def test_keygen_and_rejects_never_name_a_file_of_the_sqlite_store(disputed, store_url, tmp_path, monkeypatch,
                                                                  backend):
    monkeypatch.chdir(tmp_path)
    before = disputed.store.max_position()
    refused(run_cli(store_url, "keygen", "ledger.db-journal"), disputed, before)
    assert not (tmp_path / "ledger.db-journal").exists()
    leads = tmp_path / "leads.csv"
    leads.write_text("id,company\nN-1,New Co\n,no id\n", encoding="utf-8")
    run = run_cli(store_url, "lead", "import", str(leads), "--pool", "east", "--rejects", "./ledger.db",
                  actor="mgr")
    refused(run, disputed, before)
    assert not leftovers(tmp_path)
    intact(store_url)


# --- nor over the signing key ----------------------------------------------------------------

@pytest.mark.parametrize("actor, command, option", WRITERS, ids=WRITER_IDS)
def test_an_output_never_names_the_signing_key(disputed, store_url, tmp_path, monkeypatch, actor, command, option):
    key = tmp_path / "signing.pem"
    new_key(key)
    pem = key.read_bytes()
    before = disputed.store.max_position()
    monkeypatch.setenv("LEADLEDGER_SIGNING_KEY", str(key))
    message = refused(run_cli(store_url, *command, option, str(key), actor=actor), disputed, before)
    assert "signing key" in message
    monkeypatch.delenv("LEADLEDGER_SIGNING_KEY")
    if option != "--html" and command[0] != "export":  # those that sign take --signing-key
        refused(run_cli(store_url, *command, option, str(key), "--signing-key", str(key), actor=actor),
                disputed, before)
    assert key.read_bytes() == pem and not leftovers(tmp_path)


# --- whole or not at all ---------------------------------------------------------------------

class Full:
    """A file on a disk that fills after `room` bytes: a write stops half way (ENOSPC)."""

    def __init__(self, file, room: int = 100) -> None:
        self.file, self.room = file, room

    def write(self, data):
        fits = data[:self.room]
        self.file.write(fits)
        self.room -= len(fits)
        if len(fits) < len(data):
            self.file.flush()
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return len(data)

    def __getattr__(self, name):
        return getattr(self.file, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.file.close()


@pytest.fixture
def full(tmp_path, monkeypatch) -> Path:
    """A folder whose files fill after 100 bytes, as a full disk or `ulimit -f` would have them."""
    folder = (tmp_path / "full").resolve()
    folder.mkdir()
    real = io.open

    def limited(file, mode="r", *args, **kwargs):
        opened = real(file, mode, *args, **kwargs)
        inside = isinstance(file, (str, os.PathLike)) and os.path.realpath(file).startswith(str(folder) + os.sep)
        return Full(opened) if inside and any(c in mode for c in "wax+") else opened

    monkeypatch.setattr(io, "open", limited)
    monkeypatch.setattr(builtins, "open", limited)
    return folder


@pytest.mark.parametrize("actor, command, option", WRITERS, ids=WRITER_IDS)
def test_a_failed_write_leaves_the_old_file_whole(disputed, store_url, full, actor, command, option):
    target = full / "kept.out"
    kept = b"a good file from before\n" * 20
    fd = os.open(target, os.O_WRONLY | os.O_CREAT)  # below the full folder's open()
    os.write(fd, kept)
    os.close(fd)
    run = run_cli(store_url, *command, option, str(target), actor=actor)
    if option == "--receipt":  # the event stands; the receipt is a warning
        assert run.code == 0 and f"receipt {run.json['position']} --out" in run.stderr, run
    else:
        assert run.code == 2 and run.json["error"]["code"] == "invalid_input", run
    assert target.read_bytes() == kept
    assert sorted(p.name for p in full.iterdir()) == ["kept.out"]


@pytest.mark.parametrize("actor, command, option", WRITERS, ids=WRITER_IDS)
def test_a_failed_write_leaves_no_half_written_file(disputed, store_url, full, actor, command, option):
    run = run_cli(store_url, *command, option, str(full / "new.out"), actor=actor)
    assert run.code == (0 if option == "--receipt" else 2), run
    assert list(full.iterdir()) == []


def test_a_rewritten_receipt_keeps_its_permissions_and_its_symlink(disputed, store_url, tmp_path):
    real = tmp_path / "r.json"
    assert run_cli(store_url, "receipt", "2", "--out", str(real)).code == 0
    real.chmod(0o600)
    link = tmp_path / "latest.json"
    link.symlink_to("r.json")
    assert run_cli(store_url, "receipt", "3", "--out", str(link)).code == 0
    assert link.is_symlink() and json.loads(real.read_text())["event"]["position"] == 3
    assert stat.S_IMODE(real.stat().st_mode) == 0o600 and not leftovers(tmp_path)


def test_keygen_writes_whole_keys_and_never_through_a_dangling_symlink(tmp_path):
    nowhere = f"sqlite:///{tmp_path / 'absent' / 'no.db'}"
    key = tmp_path / "k.pem"
    assert run_cli(nowhere, "keygen", str(key)).code == 0
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and checkpoint.load_signing_key(key)
    link = tmp_path / "dangling.pem"
    link.symlink_to(tmp_path / "elsewhere.pem")
    assert run_cli(nowhere, "keygen", str(link)).code == 2
    assert not (tmp_path / "elsewhere.pem").exists() and not leftovers(tmp_path)


# --- --signing-key on the commands that take --receipt -----------------------------------------

@pytest.mark.parametrize("actor, command", RECORDERS, ids=["claim", "assign", "reassign", "dispute-resolve"])
def test_signing_key_signs_the_receipt_over_the_environment(disputed, store_url, tmp_path, monkeypatch,
                                                            actor, command):
    public = new_key(tmp_path / "mine.pem")
    monkeypatch.setenv("LEADLEDGER_SIGNING_KEY", str(tmp_path / "other.pem"))
    other = new_key(tmp_path / "other.pem")
    file = tmp_path / "r.json"
    run = run_cli(store_url, *command, "--receipt", str(file), "--signing-key", str(tmp_path / "mine.pem"),
                  actor=actor)
    assert run.code == 0 and run.stderr == "", run
    assert run_cli(store_url, "verify-receipt", str(file), "--public-key", public).code == 0
    assert run_cli(store_url, "verify-receipt", str(file), "--public-key", other).code == 6


@pytest.mark.parametrize("actor, command", RECORDERS, ids=["claim", "assign", "reassign", "dispute-resolve"])
@pytest.mark.parametrize("bad", ["missing", "not-a-key"])
def test_a_signing_key_that_does_not_load_records_nothing(disputed, store_url, tmp_path, actor, command, bad):
    key = tmp_path / "bad.pem"
    if bad == "not-a-key":
        key.write_text("-----BEGIN PRIVATE KEY-----\nnonsense\n")
    folder = tmp_path / "receipts"
    folder.mkdir()
    before = disputed.store.max_position()
    run = run_cli(store_url, *command, "--receipt", str(folder / "r.json"), "--signing-key", str(key), actor=actor)
    assert "bad.pem" in refused(run, disputed, before)
    assert list(folder.iterdir()) == []


def test_a_signing_key_without_a_receipt_is_not_needed(disputed, store_url, tmp_path):
    run = run_cli(store_url, "claim", "L-2", "--signing-key", str(tmp_path / "none.pem"), actor="alice")
    assert run.code == 0 and run.json["owner"] == "alice", run



# --- streams, odd names, and what an import owes after its rows are in -----------------------

@pytest.mark.parametrize("args", [["export", "people"], ["receipt", "3"]])
def test_dev_stdout_is_written_as_a_stream_to_a_pipe_and_to_a_redirected_file(disputed, store_url, tmp_path, args):
    env = {**os.environ, "LEADLEDGER_STORE": store_url}
    argv = [sys.executable, "-c", "import cli; cli.main()", *args, "--out", "/dev/stdout"]
    piped = subprocess.run(argv, capture_output=True, env=env)
    assert piped.returncode == 0 and piped.stdout.strip(), piped.stderr.decode()
    if args[0] == "receipt":  # it also says on stdout where the receipt went
        return
    log = tmp_path / "log.txt"
    with open(log, "wb") as f:
        redirected = subprocess.run(argv, stdout=f, stderr=subprocess.PIPE, env=env)
    assert redirected.returncode == 0, redirected.stderr.decode()
    assert log.read_bytes() == piped.stdout and not leftovers(tmp_path)


def test_rejects_that_cannot_be_written_after_the_import_leave_its_summary(disputed, store_url, tmp_path, full):
    leads = tmp_path / "leads.csv"
    leads.write_text(f"id,company\nN-1,New Co\n,{'no id ' * 40}\n", encoding="utf-8")  # more than the disk holds
    run = run_cli(store_url, "lead", "import", str(leads), "--pool", "east", "--rejects", str(full / "rej.csv"),
                  actor="mgr")
    assert run.code == 0 and run.json["imported"] == 1 and len(run.json["rejected"]) == 1, run
    assert "rejects_file" not in run.json and "rejects file was not written" in run.stderr
    assert run_cli(store_url, "owner", "N-1").code == 0
    assert list(full.iterdir()) == []


def test_rejects_never_overwrite_the_file_being_imported(disputed, store_url, tmp_path):
    leads = tmp_path / "leads.csv"
    text = "id,company\nN-1,New Co\n,no id\n"
    leads.write_text(text, encoding="utf-8")
    before = disputed.store.max_position()
    for dry in ([], ["--dry-run"]):
        run = run_cli(store_url, "lead", "import", str(leads), "--pool", "east", *dry, "--rejects", str(leads),
                      actor="mgr")
        assert "being imported" in refused(run, disputed, before)
    assert leads.read_text(encoding="utf-8") == text


def test_a_rejected_row_holding_a_lone_surrogate_is_written_to_the_rejects(disputed, store_url, tmp_path):
    leads = tmp_path / "leads.jsonl"
    leads.write_text('{"id": "J-1", "company": "\\ud800"}\n{"id": "J-2", "company": "ok"}\n', encoding="utf-8")
    rejects = tmp_path / "rej.csv"
    run = run_cli(store_url, "lead", "import", str(leads), "--pool", "east", "--rejects", str(rejects), actor="mgr")
    assert run.code == 0 and run.json["imported"] == 1 and run.json["rejects_file"] == str(rejects), run
    assert "\\ud800" in rejects.read_text(encoding="utf-8-sig")


@pytest.mark.parametrize("name", ["a" * 300, "gone/dir/r.json"])  # too long; a link into a missing folder
def test_a_place_no_file_can_be_written_is_refused_before_the_claim(disputed, store_url, tmp_path, monkeypatch, name):
    monkeypatch.chdir(tmp_path)
    if "/" in name:
        (tmp_path / "link.json").symlink_to(name)
        name = "link.json"
    before = disputed.store.max_position()
    refused(run_cli(store_url, "claim", "L-2", "--receipt", name, actor="alice"), disputed, before)


@pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")  # "Exception ignored", a traceback
def test_a_workbook_that_cannot_be_written_names_the_file_asked_for(disputed, store_url, full):
    target = full / "people.xlsx"
    run = run_cli(store_url, "export", "people", "--out", str(target))
    assert run.code == 2 and run.json["error"]["code"] == "invalid_input", run
    assert "people.xlsx" in run.json["error"]["message"] and ".leadledger-" not in run.json["error"]["message"]
    assert list(full.iterdir()) == []


def test_sigterm_while_a_file_is_written_removes_the_temporary_copy(tmp_path):
    target = tmp_path / "export.jsonl"
    with pytest.raises(KeyboardInterrupt):
        with replacing(str(target)) as temp:
            Path(temp).write_text("personal data, half written\n")
            os.kill(os.getpid(), signal.SIGTERM)
    assert list(tmp_path.iterdir()) == []
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
