"""Bad input through the real entry point, on SQLite and PostgreSQL: whatever is typed, a
command exits with a status from 0 to 6, prints no traceback, with --json prints one JSON
object, and a failed command writes nothing (a refusal by a rule: only its record)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.application import Ledger
from tests.conftest import T0, Run, event_count, run_cli

REFUSAL_RECORDS = {"ClaimRefused", "AssignmentRefused"}

# Characters that break ids and parsers: controls, bidi and zero-width marks, ':', full-width
# digits, whitespace of all kinds, quotes.
NASTY = st.sampled_from(list("\x00\x01\t\n\r\x1b\x7f\u0085\u200b\u200e\u200f\u202a\u202e\u2066\u2069"
                             "\u061c\ufeff\u2028\u3000 :\"'\\%{}$１８６+-.eE"))
# What an id may not hold anywhere: controls, formatting (bidi, zero-width) marks, ':', line breaks.
FORBIDDEN = st.sampled_from(list("\x00\x01\t\n\r\x1b\x7f\u0085\u200b\u200e\u200f\u202a\u202e\u2066"
                                 "\u2069\u061c\ufeff\u2028:"))
TEXT = st.text(st.one_of(NASTY, st.characters(codec="utf-8")), max_size=40)

BAD_IDS = st.one_of(
    st.just(""),
    st.text(min_size=129, max_size=300, alphabet="abcXYZ-9"),
    st.builds(lambda a, b: f"{a}:{b}", TEXT, TEXT),
    st.builds(lambda a, c, b: a + c + b, st.text("abc", max_size=5), FORBIDDEN, st.text("abc", max_size=5)),
    st.builds(lambda a: f" {a}", st.text("abc", min_size=1, max_size=5)),
)
TIMES = st.one_of(
    TEXT,
    st.sampled_from(["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-23:59", "2026-02-30T00:00:00Z",
                     "2026-03-02T24:00:00Z", "1970-01-01T00:00:00Z", "2200-01-01T00:00:00Z",
                     "2026-03-02T09:00:00+25:00", "-2026-03-02", "2026-03-02T09:00:00Z" * 5]),
    st.datetimes().map(lambda d: d.isoformat()),
)
NUMBERS = st.one_of(
    st.integers(min_value=-(2**80), max_value=2**80).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.sampled_from(["", " ", "1e3", "0x10", "１０", "1_000", "9" * 5000, "-0", "+1"]),
    TEXT,
)
DURATIONS = st.one_of(NUMBERS, st.builds(lambda n, u: f"{n}{u}", NUMBERS, st.sampled_from("smhdwy ")))
FILES = st.one_of(
    st.sampled_from(["no/such/dir/x.csv", ".", "..", "/", "x\x00.csv", "", "-", "x" * 300 + ".csv"]),
    TEXT,
)


def commands(data) -> tuple[str | None, list[str]]:
    """One command line with bad input in one place."""
    kind = data.draw(st.sampled_from(
        ["person", "pool", "lead", "claim", "owner", "rules", "limit", "since", "out", "sweep", "read"]))
    if kind == "person":
        return "root", ["person", "add", data.draw(BAD_IDS), "--name", "X", "--role", "rep"]
    if kind == "pool":
        return "root", ["pool", "create", data.draw(BAD_IDS), "--name", "X"]
    if kind == "lead":
        return "mgr", ["lead", "add", data.draw(BAD_IDS), "--pool", "east", "--company", data.draw(TEXT)]
    if kind == "claim":
        return "alice", ["claim", "L-1", "--at", data.draw(TIMES)]
    if kind == "owner":
        return None, ["owner", data.draw(st.one_of(BAD_IDS, TEXT)), "--at", data.draw(TIMES)]
    if kind == "rules":
        option = data.draw(st.sampled_from(["--idle-limit", "--hold-limit", "--cooldown", "--warn-before"]))
        return "root", ["pool", "rules", "east", option, data.draw(DURATIONS)]
    if kind == "limit":
        option = data.draw(st.sampled_from(["--claim-limit", "--daily-claim-limit"]))
        return "root", ["pool", "create", "p-new", "--name", "N", option, data.draw(NUMBERS)]
    if kind == "since":
        return None, ["export", "events", "--since", data.draw(NUMBERS)]
    if kind == "out":
        return None, ["export", "holdings", "--out", data.draw(FILES)]
    if kind == "sweep":
        return "root", ["sweep", "--now", data.draw(TIMES)]
    command = data.draw(st.sampled_from(["history", "holdings", "explain", "lead show", "pool show",
                                         "dispute show"]))
    return None, [*command.split(), data.draw(st.one_of(BAD_IDS, TEXT))]


def written_since(ledger: Ledger, before: int) -> list[str]:
    return [type(s.event).__name__ for s in ledger.store.read_log(after=before, limit=1000)]


def check(run: Run, ledger: Ledger, before: int, as_json: bool) -> None:
    assert 0 <= run.code <= 6, run
    assert "Traceback" not in run.stdout + run.stderr, run
    if run.code != 0:
        new = written_since(ledger, before)
        assert new == [] or (run.code == 1 and set(new) <= REFUSAL_RECORDS), (run, new)
        if as_json:
            error = json.loads(run.stdout)["error"]
            assert error["code"] and error["message"], run
        else:
            assert run.stdout == "" and len(run.stderr.strip().splitlines()) == 1, run


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), as_json=st.booleans())
def test_bad_input_never_crashes_nor_writes(world, store_url, tmp_path, data, as_json):
    actor, args = commands(data)
    before = event_count(world)
    cwd = os.getcwd()
    os.chdir(tmp_path)  # an --out that works lands here
    try:
        run = run_cli(store_url, *args, actor=actor, as_json=as_json)
    finally:
        os.chdir(cwd)
    check(run, world, before, as_json)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(person=BAD_IDS, pool=BAD_IDS)
def test_new_person_and_pool_ids_outside_the_limits_are_invalid_input(world, store_url, person, pool):
    before = event_count(world)
    for args in (["person", "add", person, "--name", "X", "--role", "rep"], ["pool", "create", pool, "--name", "X"]):
        run = run_cli(store_url, *args, actor="root")
        assert run.code == 2 and json.loads(run.stdout)["error"]["code"] == "invalid_input", run
    assert event_count(world) == before


@pytest.mark.parametrize("bad", ["长" * 200, "a\x01b", " L-1", "L:1", "bidi\u202e"])
@pytest.mark.parametrize("actor, args", [("alice", ["claim", "{}"]), (None, ["owner", "{}"]), (None, ["history", "{}"]),
                                         ("{}", ["claim", "L-1"]), (None, ["holdings", "{}"]),
                                         ("mgr", ["assign", "L-1", "--to", "{}"]), (None, ["pool", "show", "{}"])])
def test_an_id_no_lead_person_or_pool_could_have_is_bad_input_quoted_short(world, store_url, bad, actor, args):
    before = event_count(world)
    run = run_cli(store_url, *[a.format(bad) for a in args], actor=actor.format(bad) if actor else None)
    error = json.loads(run.stdout)["error"]
    assert (run.code, error["code"]) == (2, "invalid_input"), run
    assert bad[:41] not in error["message"] or len(bad) <= 40
    assert event_count(world) == before


def test_an_unknown_long_dispute_id_is_quoted_short(world, store_url):
    run = run_cli(store_url, "dispute", "show", "L-1-D" + "9" * 300)
    assert (run.code, run.json["error"]["code"]) == (3, "unknown_dispute") and len(run.json["error"]["message"]) < 100


@pytest.mark.parametrize("args", [
    ["pool", "rules", "east", "--idle-limit", "99999999999999999999d"],
    ["pool", "rules", "east", "--cooldown", "3651d"],
    ["pool", "rules", "east", "--hold-limit", "30s"],
    ["pool", "rules", "east", "--claim-limit", "1000001"],
    ["pool", "rules", "east", "--daily-claim-limit", "-1"],
    ["export", "events", "--since", "9223372036854775808"],
    ["export", "events", "--since", "-1"],
])
def test_values_outside_the_limits(world, store_url, args):
    before = event_count(world)
    run = run_cli(store_url, *args, actor="root")
    assert run.code == 2 and json.loads(run.stdout)["error"]["code"] == "invalid_input", run
    assert event_count(world) == before


def test_limits_themselves_are_accepted(world, store_url):
    run = run_cli(store_url, "pool", "rules", "east", "--idle-limit", "3650d", "--cooldown", "1m",
                  "--hold-limit", "0", "--claim-limit", "1000000", "--daily-claim-limit", "0", actor="root")
    assert run.code == 0, run
    assert json.loads(run.stdout)["rules"] == {"claim_limit": 1_000_000, "daily_claim_limit": 0,
                                               "idle_limit": "3650d", "hold_limit": "0", "cooldown": "1m",
                                               "warn_before": "2d"}
    assert run_cli(store_url, "export", "events", "--since", str(2**63 - 1)).stdout == ""


# --- export --out --------------------------------------------------------------------------

@pytest.mark.parametrize("name, fmt", [("h.csv", "csv"), ("h.CSV", "csv"), ("h.jsonl", "jsonl"), ("h.txt", "jsonl")])
def test_the_extension_of_out_chooses_the_format(world, store_url, tmp_path, name, fmt):
    world.claim("alice", "L-1", at=T0)
    target = tmp_path / name
    run = run_cli(store_url, "export", "holdings", "--out", str(target))
    assert run.code == 0 and run.json["format"] == fmt, run
    text = target.read_text()
    if fmt == "csv":
        assert text.splitlines()[0].startswith("lead,") and "L-1,alice" in text
    else:
        assert json.loads(text.splitlines()[0])["lead"] == "L-1"
    forced = run_cli(store_url, "export", "holdings", "--out", str(target), "--format", "jsonl")
    assert forced.json["format"] == "jsonl" and json.loads(target.read_text().splitlines()[0])


def test_an_out_that_cannot_be_written_is_invalid_input(world, store_url, tmp_path):
    for out in (tmp_path / "missing" / "h.csv", tmp_path, tmp_path / "missing" / "h.xlsx"):
        run = run_cli(store_url, "export", "events", "--out", str(out))
        assert run.code == 2 and run.json["error"]["code"] == "invalid_input", run
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith((".export-", "h."))]


@pytest.mark.parametrize("args", [["report", "--from", "2026-01-01", "--to", "2026-04-01"], ["dispute", "show", "L-1-D1"]])
def test_an_html_page_that_cannot_be_written_is_invalid_input(world, store_url, tmp_path, args):
    world.open_dispute("bob", "L-1", "I called first", at=T0)
    for out in (tmp_path / "missing" / "p.html", tmp_path):
        run = run_cli(store_url, *args, "--html", str(out))
        assert (run.code, run.json["error"]["code"]) == (2, "invalid_input"), run


def test_a_failed_export_leaves_the_old_file_whole(world, tmp_path):
    target = tmp_path / "events.jsonl"
    target.write_text("kept\n")
    missing = f"sqlite:///{tmp_path / 'nothing.db'}"
    run = run_cli(missing, "export", "events", "--out", str(target))
    assert run.code == 5 and run.json["error"]["code"] == "store_unavailable", run
    assert target.read_text() == "kept\n"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".export-")]


# --- a closed stdout ------------------------------------------------------------------------

@pytest.mark.parametrize("args", [["export", "events"], ["--json", "export", "events", "--format", "csv"],
                                  ["export", "pool_leads", "--format", "csv"], ["export", "follow_ups"]])
def test_a_closed_stdout_ends_the_command_quietly(world, store_url, args):
    for i in range(7, 160):  # more output than a pipe holds
        world.add_lead("mgr", f"L-{i}", "east", company="x" * 1000 + str(i), at=T0)
        world.claim("alice" if i % 2 else "bob", f"L-{i}", at=T0) if i < 9 else None
        world.follow_up("alice", "L-7", "n" * 900, at=T0) if i < 120 else None
    env = {**os.environ, "LEADLEDGER_STORE": store_url}
    env.pop("LEADLEDGER_DEBUG", None)
    proc = subprocess.Popen([sys.executable, "-c", "import cli; cli.main()", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env)
    assert proc.stdout.read(1)
    proc.stdout.close()  # `| head -c1`
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 0  # the reader went away: no failure of the command's
    assert err == "", err


@pytest.mark.parametrize("args, code", [(["owner", "L-1"], 0), (["--as", "alice", "claim", "L-1"], 0),
                                        (["--as", "bob", "claim", "L-1"], 1), (["owner", "L-99"], 3)])
@pytest.mark.parametrize("as_json", [True, False])
def test_a_command_started_with_stdout_closed_ends_with_its_own_status(world, store_url, args, code, as_json):
    env = {**os.environ, "LEADLEDGER_STORE": store_url}
    env.pop("LEADLEDGER_DEBUG", None)
    if code == 1:
        world.claim("alice", "L-1", at=T0)
    argv = [sys.executable, "-c", "import cli; cli.main()", *(["--json"] if as_json else []), *args]
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, close_fds=True,
                          preexec_fn=lambda: os.close(1))  # `>&-`
    assert proc.returncode == code and "Traceback" not in proc.stderr.decode(), proc.stderr.decode()


# --- arguments that are not text ----------------------------------------------------------

@pytest.mark.parametrize("args", [[b"owner", b"\xff"], [b"--as", b"w\xff", b"claim", b"L-1"],
                                  [b"--as", b"alice", b"release", b"L-1", b"--reason", b"r\xff"],
                                  [b"--as", b"mgr", b"lead", b"add", b"Z-1", b"--pool", b"east", b"--company", b"c\xff"]])
def test_an_argument_that_is_not_utf8_is_bad_input(world, store_url, args):
    world.claim("alice", "L-1", at=T0)
    count = event_count(world)
    env = {**os.environ, "LEADLEDGER_STORE": store_url}
    env.pop("LEADLEDGER_DEBUG", None)
    proc = subprocess.run([sys.executable, "-c", "import cli; cli.main()", b"--json", *args],
                          capture_output=True, env=env)
    assert proc.returncode == 2, proc
    error = json.loads(proc.stdout)["error"]
    assert (error["code"], "internal" in error, proc.stderr) == ("invalid_input", False, b""), error
    assert "\\xff is not UTF-8 text" in error["message"]
    assert event_count(world) == count
