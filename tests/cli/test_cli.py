"""The `leadledger` command line on SQLite and PostgreSQL: JSON shapes, exit codes,
stdout versus stderr, help for every command, and the demo."""

from __future__ import annotations

import json

import click
import pytest

from commands import root as commands_root
from tests.conftest import T0, event_count, run_cli

AT1 = "2026-03-03T09:00:00Z"
AT2 = "2026-03-04T09:00:00Z"
AT3 = "2026-03-05T09:00:00Z"

OWNERSHIP_KEYS = {"lead", "event", "position", "owner", "pool", "occurred_at"}


def one_object(run) -> dict:
    """--json stdout is exactly one JSON object and nothing else."""
    text = run.stdout.strip()
    assert text, run
    obj = json.loads(text)  # raises if there is anything but one JSON value
    assert isinstance(obj, dict)
    return obj


def ok(run) -> dict:
    assert run.code == 0, run
    return one_object(run)


def error(run, code: str, status: int) -> dict:
    assert run.code == status, run
    err = one_object(run)["error"]
    assert err["code"] == code and err["message"], err
    return err


# --- JSON shapes of each command ------------------------------------------------------------

def test_ownership_commands(world, store_url):
    cmds = [
        ("alice", ["claim", "L-1", "--at", AT1], "LeadClaimed", "alice", "east"),
        ("alice", ["follow-up", "L-1", "--note", "called", "--channel", "call", "--at", AT1], "FollowUpLogged",
         "alice", "east"),
        ("alice", ["release", "L-1", "--reason", "no budget", "--at", AT2], "LeadReleased", None, "east"),
        ("mgr", ["assign", "L-2", "--to", "bob", "--reason", "region", "--at", AT1], "LeadAssigned", "bob", "east"),
        ("mgr", ["reassign", "L-2", "--to", "carol", "--reason", "bob away", "--at", AT2], "LeadReassigned",
         "carol", "east"),
        ("carol", ["convert", "L-2", "--deal", "D-7", "--at", AT3], "LeadConverted", "carol", "east"),
        ("mgr", ["move", "L-3", "--to-pool", "west", "--reason", "wrong region", "--at", AT1], "LeadMoved", None,
         "west"),
    ]
    for actor, args, event, owner, pool in cmds:
        before = event_count(world)
        out = ok(run_cli(store_url, *args, actor=actor))
        assert OWNERSHIP_KEYS <= out.keys(), out
        assert (out["lead"], out["event"], out["owner"], out["pool"]) == (args[1], event, owner, pool)
        assert out["occurred_at"] == args[-1]
        assert event_count(world) > before
        assert out["position"] == before + 1  # the event's global position in the log


def test_refused_claim_shape_and_only_the_refusal_is_written(world, store_url):
    claimed = ok(run_cli(store_url, "claim", "L-1", "--at", AT1, actor="alice"))
    before = event_count(world)
    run = run_cli(store_url, "claim", "L-1", "--at", "2026-03-03T10:00:01.200Z", actor="bob")
    err = error(run, "lead_owned", 1)
    assert (err["lead"], err["owner"], err["owner_since_position"]) == ("L-1", "alice", claimed["position"])
    new = world.store.read_log(after=before, limit=100)
    assert [type(s.event).__name__ for s in new] == ["ClaimRefused"]
    assert new[0].event.rep == "bob" and new[0].event.occurred_at.microsecond == 200000


def test_init_and_people(store_url):
    first = ok(run_cli(store_url, "init", "--admin", "root", "--name", "Root"))
    assert (first["admin"], first["created"]) == ("root", True)
    again = ok(run_cli(store_url, "init", "--admin", "root", "--name", "Root"))
    assert again["created"] is False
    added = ok(run_cli(store_url, "person", "add", "alice", "--name", "Alice", "--role", "rep", "--team", "east",
                       actor="root"))
    assert (added["person"], added["role"], added["team"], added["active"]) == ("alice", "rep", "east", True)
    people = ok(run_cli(store_url, "person", "list"))["people"]
    assert {p["person"]: (p["role"], p["active"]) for p in people} == {"root": ("admin", True),
                                                                        "alice": ("rep", True)}
    gone = ok(run_cli(store_url, "person", "deactivate", "alice", actor="root"))
    assert (gone["person"], gone["active"], gone["returned"]) == ("alice", False, [])
    people = ok(run_cli(store_url, "person", "list", actor="root"))["people"]
    assert [p["active"] for p in people if p["person"] == "alice"] == [False]


def test_deactivate_shape(world, store_url):
    ok(run_cli(store_url, "claim", "L-1", "--at", AT1, actor="alice"))
    ok(run_cli(store_url, "claim", "L-2", "--at", AT1, actor="bob"))
    out = ok(run_cli(store_url, "person", "deactivate", "alice", "--at", AT2, actor="root"))
    assert out["returned"] == [{"lead": "L-1", "to": None, "pool": "east"}]
    out = ok(run_cli(store_url, "person", "deactivate", "bob", "--reassign-to", "carol", "--at", AT2, actor="root"))
    assert out["reassigned"] == [{"lead": "L-2", "to": "carol", "pool": "east"}]


def test_pools(world, store_url):
    created = ok(run_cli(store_url, "pool", "create", "north", "--name", "North", "--claim-limit", "5",
                         "--idle-limit", "14d", "--daily-claim-limit", "3", actor="root"))
    assert (created["pool"], created["rules_version"]) == ("north", 1)
    assert created["rules"] == {"claim_limit": 5, "daily_claim_limit": 3, "idle_limit": "14d",
                                "hold_limit": "90d", "cooldown": "7d", "warn_before": "3d"}
    changed = ok(run_cli(store_url, "pool", "rules", "north", "--cooldown", "12h", actor="root"))
    assert (changed["rules_version"], changed["rules"]["cooldown"]) == (2, "12h")
    granted = ok(run_cli(store_url, "pool", "grant", "north", "alice", "bob", actor="root"))
    assert granted["members"] == ["alice", "bob"]
    revoked = ok(run_cli(store_url, "pool", "revoke", "north", "bob", actor="root"))
    assert revoked["members"] == ["alice"]
    pools = ok(run_cli(store_url, "pool", "list"))["pools"]
    assert sorted(p["pool"] for p in pools) == ["east", "north", "west"]
    ok(run_cli(store_url, "claim", "L-1", "--at", AT1, actor="alice"))
    shown = ok(run_cli(store_url, "pool", "show", "east"))
    assert {"pool", "name", "rules", "rules_version", "members", "pooled", "held_count"} <= shown.keys()
    assert (shown["pool"], shown["name"], shown["rules_version"], shown["held_count"]) == ("east", "East", 1, 1)
    assert shown["members"] == ["alice", "bob", "carol", "mgr"]
    assert shown["pooled"] == ["L-2", "L-3", "L-4", "L-5", "L-6"]
    assert shown["rules"]["claim_limit"] == 2


def test_leads(world, store_url):
    added = ok(run_cli(store_url, "lead", "add", "N-1", "--pool", "east", "--company", "Neo Co", "--phone",
                       "+86 139 0000 0000", "--email", "neo@x.cn", "--region", "上海", "--at", AT1, actor="alice"))
    assert (added["lead"], added["pool"], added["owner"], added["duplicates"]) == ("N-1", "east", None, [])
    before = event_count(world)
    dup = run_cli(store_url, "lead", "add", "N-2", "--pool", "east", "--phone", "13900000000", actor="bob")
    err = error(dup, "duplicate_lead", 1)
    assert (err["existing"], err["pool"]) == ("N-1", "east")
    assert event_count(world) == before  # not a claim or assignment: nothing is recorded
    assert run_cli(store_url, "lead", "show", "N-2").code == 3
    allowed = ok(run_cli(store_url, "lead", "add", "N-2", "--pool", "east", "--phone", "13900000000",
                         "--allow-duplicate", "--claim", "--at", AT1, actor="bob"))
    assert allowed["duplicates"] == [{"lead": "N-1", "field": "phone", "value": "13900000000"}]
    assert allowed["claim"]["owner"] == "bob"
    shown = ok(run_cli(store_url, "lead", "show", "N-1"))
    assert (shown["lead"], shown["status"], shown["owner"], shown["pool"]) == ("N-1", "pooled", None, "east")
    assert shown["attributes"]["region"] == "上海"


def test_import_shape(world, store_url, tmp_path):
    path = tmp_path / "leads.csv"
    path.write_text("id,company,email\nN-1,Neo,neo@x.cn\nN-2,Company 1,\n,Nobody,\nL-1,X,\n", encoding="utf-8")
    out = ok(run_cli(store_url, "lead", "import", str(path), "--pool", "east", actor="mgr"))
    assert set(out) >= {"imported", "skipped_existing", "duplicates", "rejected"}
    assert (out["imported"], out["skipped_existing"]) == (1, 1)
    assert [(x["line"], x["duplicate_of"]) for x in out["duplicates"]] == [(3, "L-1")]
    assert [x["line"] for x in out["rejected"]] == [4] and out["rejected"][0]["error"]
    again = ok(run_cli(store_url, "lead", "import", str(path), "--pool", "east", actor="mgr"))
    assert (again["imported"], again["skipped_existing"]) == (0, 2)


def test_unreadable_import_file(world, store_url, tmp_path):
    before = event_count(world)
    missing = run_cli(store_url, "lead", "import", str(tmp_path / "nope.csv"), "--pool", "east", actor="mgr")
    error(missing, "invalid_input", 2)
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b'{"id": "N-1", "company": "Caf\xe9"}\n')
    error(run_cli(store_url, "lead", "import", str(bad), "--pool", "east", actor="mgr"), "invalid_input", 2)
    assert event_count(world) == before


def test_owner_history_holdings(world, store_url):
    claim = ok(run_cli(store_url, "claim", "L-1", "--at", AT1, actor="alice"))
    error(run_cli(store_url, "claim", "L-1", "--at", AT2, actor="bob"), "lead_owned", 1)
    ok(run_cli(store_url, "follow-up", "L-1", "--note", "visit", "--at", AT2, actor="alice"))

    owner = ok(run_cli(store_url, "owner", "L-1", "--at", AT2))
    assert {"lead", "at", "owner", "pool", "since", "position"} <= owner.keys()
    assert (owner["owner"], owner["since"], owner["position"], owner["at"]) == ("alice", AT1, claim["position"], AT2)
    before = ok(run_cli(store_url, "owner", "L-1", "--at", T0))
    assert (before["owner"], before["pool"]) == (None, "east")

    hist = ok(run_cli(store_url, "history", "L-1"))
    assert {"lead", "events", "ownership", "refused"} <= hist.keys()
    assert [e["type"] for e in hist["events"]] == ["LeadAdded", "LeadClaimed", "ClaimRefused", "FollowUpLogged"]
    for e in hist["events"]:
        assert {"position", "version", "type", "occurred_at", "recorded_at", "actor", "actor_kind",
                "backdated"} <= e.keys()
        assert e["occurred_at"].endswith("Z") and e["recorded_at"].endswith("Z")
        assert e["actor_kind"] == "person" and e["backdated"] is True  # 2026 business times, recorded now
    assert [e["version"] for e in hist["events"]] == [1, 2, 3, 4]
    (interval,) = hist["ownership"]
    assert {"owner", "from", "to", "start_position", "end_position", "ended_by"} <= interval.keys()
    assert (interval["owner"], interval["from"], interval["to"], interval["start_position"]) == \
        ("alice", AT1, None, claim["position"])
    (refused,) = hist["refused"]
    assert {"position", "type", "actor", "reason", "occurred_at"} <= refused.keys()
    assert (refused["type"], refused["actor"], refused["reason"], refused["occurred_at"]) == \
        ("ClaimRefused", "bob", "lead_owned", AT2)

    held = ok(run_cli(store_url, "holdings", "alice"))
    assert {"rep", "leads", "count_by_pool"} <= held.keys()
    (row,) = held["leads"]
    assert {"lead", "pool", "since", "last_follow_up", "recycle_at", "recycle_rule"} <= row.keys()
    assert (row["lead"], row["pool"], row["since"], row["last_follow_up"]) == ("L-1", "east", AT1, AT2)
    assert (row["recycle_at"], row["recycle_rule"]) == ("2026-03-14T09:00:00Z", "idle_limit")
    assert held["count_by_pool"] == {"east": 1}


def test_sweep_shape(world, store_url):
    ok(run_cli(store_url, "claim", "L-1", "--at", AT1, actor="alice"))
    ok(run_cli(store_url, "claim", "L-2", "--at", AT3, actor="bob"))
    before = event_count(world)
    dry = ok(run_cli(store_url, "sweep", "--now", "2026-03-14T09:00:00Z", "--dry-run", actor="mgr"))
    assert event_count(world) == before
    out = ok(run_cli(store_url, "sweep", "--now", "2026-03-14T09:00:00Z", actor="mgr"))
    assert {"now", "warned", "recycled"} <= out.keys()
    assert out["now"] == "2026-03-14T09:00:00Z"
    assert out["recycled"] == dry["recycled"]
    assert [(r["lead"], r["from"], r["rule"]) for r in out["recycled"]] == [("L-1", "alice", "idle_limit")]
    assert [(w["lead"], w["owner"], w["recycle_at"]) for w in out["warned"]] == \
        [("L-2", "bob", "2026-03-15T09:00:00Z")]
    again = ok(run_cli(store_url, "sweep", "--now", "2026-03-14T09:00:00Z", actor="mgr"))
    assert (again["warned"], again["recycled"]) == ([], [])


# --- exit codes and error classes -----------------------------------------------------------

@pytest.mark.parametrize("actor, args, code, status", [
    ("alice", ["claim", "L-1", "--at", "yesterday"], "invalid_input", 2),
    ("alice", ["follow-up", "L-1", "--note", "  "], "invalid_input", 2),
    ("root", ["pool", "create", "x", "--name", "X", "--claim-limit", "many"], "invalid_input", 2),
    ("root", ["pool", "create", "x", "--name", "X", "--idle-limit", "1 fortnight"], "invalid_input", 2),
    (None, ["claim", "L-1"], "invalid_input", 2),  # a write without an actor
    ("alice", ["claim", "L-404"], "unknown_lead", 3),
    ("ghost", ["claim", "L-1"], "unknown_person", 3),
    ("mgr", ["move", "L-1", "--to-pool", "nowhere"], "unknown_pool", 3),
    ("root", ["pool", "show", "nowhere"], "unknown_pool", 3),
    (None, ["owner", "L-404"], "unknown_lead", 3),
    (None, ["holdings", "ghost"], "unknown_person", 3),
    ("ghost", ["pool", "list"], "unknown_person", 3),
    ("alice", ["assign", "L-1", "--to", "bob"], "permission_denied", 4),
    ("audrey", ["claim", "L-1"], "permission_denied", 4),
    ("mgr", ["person", "add", "eve", "--name", "Eve", "--role", "rep"], "permission_denied", 4),
    ("alice", ["pool", "rules", "east", "--claim-limit", "9"], "permission_denied", 4),
    ("alice", ["release", "L-1"], "lead_pooled", 1),
    ("root", ["person", "add", "alice", "--name", "A", "--role", "rep"], "already_exists", 1),
    ("root", ["pool", "create", "east", "--name", "E"], "already_exists", 1),
    ("mgr", ["lead", "add", "L-1", "--pool", "east"], "already_exists", 1),
])
def test_error_classes_write_nothing(world, store_url, actor, args, code, status):
    before = event_count(world)
    error(run_cli(store_url, *args, actor=actor), code, status)
    assert event_count(world) == before


@pytest.mark.parametrize("actor, args, code, status, recorded", [
    ("bob", ["release", "L-1"], "not_owner", 1, []),
    ("bob", ["follow-up", "L-1", "--note", "x"], "not_owner", 1, []),
    ("bob", ["convert", "L-1"], "not_owner", 1, []),
    ("bob", ["claim", "L-1", "--at", AT2], "lead_owned", 1, ["ClaimRefused"]),  # rule 7: recorded
    # --at before the claim: bad input, not a rule refusal, and nothing is recorded
    ("alice", ["claim", "L-1", "--at", "2026-03-02T09:30:00Z"], "invalid_input", 2, []),
])
def test_refusals_on_a_held_lead(world, store_url, actor, args, code, status, recorded):
    ok(run_cli(store_url, "claim", "L-1", "--at", AT1, actor="alice"))
    before = event_count(world)
    err = error(run_cli(store_url, *args, actor=actor), code, status)
    new = world.store.read_log(after=before, limit=100)
    assert [type(s.event).__name__ for s in new] == recorded
    if recorded:
        assert err["refusal_position"] == new[0].position and err["owner"] == "alice"


def test_deactivated_actor(world, store_url):
    ok(run_cli(store_url, "person", "deactivate", "carol", actor="root"))
    before = event_count(world)
    error(run_cli(store_url, "claim", "L-1", actor="carol"), "actor_inactive", 1)
    error(run_cli(store_url, "history", "L-1", actor="carol"), "actor_inactive", 1)
    assert event_count(world) == before


@pytest.mark.parametrize("args", [
    ["claim"],                                  # missing argument
    ["assign", "L-1"],                          # missing --to
    ["follow-up", "L-1", "--note", "x", "--channel", "fax"],  # bad choice
    ["nosuchcommand"],
    ["claim", "L-1", "--bogus"],
    ["person", "add", "eve", "--name", "Eve", "--role", "king"],
])
def test_click_usage_errors(world, store_url, args):
    before = event_count(world)
    error(run_cli(store_url, *args, actor="mgr"), "invalid_input", 2)
    plain = run_cli(store_url, *args, actor="mgr", as_json=False)
    assert plain.code == 2 and plain.stdout == ""
    assert len(plain.stderr.strip().splitlines()) == 1 and "Traceback" not in plain.stderr
    assert event_count(world) == before


def test_uninitialised_store(store_url):
    for args in (["claim", "L-1"], ["owner", "L-1"], ["pool", "list"], ["person", "list"]):
        error(run_cli(store_url, *args, actor="alice"), "store_unavailable", 5)
    plain = run_cli(store_url, "pool", "list", as_json=False)
    assert plain.code == 5 and plain.stdout == "" and len(plain.stderr.strip().splitlines()) == 1


def test_missing_sqlite_folder(tmp_path):
    store = f"sqlite:///{tmp_path / 'no' / 'such' / 'dir' / 'x.db'}"
    error(run_cli(store, "init", "--admin", "root", "--name", "R"), "store_unavailable", 5)
    error(run_cli(store, "pool", "list"), "store_unavailable", 5)


def test_unreachable_postgresql(backend):
    """A closed port: store_unavailable (exit 5) after the short connect timeout, not a hang."""
    store = "postgresql://root@127.0.0.1:1/test?schema=nowhere"
    error(run_cli(store, "pool", "list"), "store_unavailable", 5)
    error(run_cli(store, "claim", "L-1", actor="alice"), "store_unavailable", 5)
    error(run_cli(store, "init", "--admin", "root", "--name", "R"), "store_unavailable", 5)
    plain = run_cli(store, "owner", "L-1", as_json=False)
    assert plain.code == 5 and len(plain.stderr.strip().splitlines()) == 1 and "Traceback" not in plain.stderr


def test_bad_store_url(backend):
    error(run_cli("mysql://x@y/z", "pool", "list"), "invalid_input", 2)


@pytest.mark.parametrize("schema", ["s" * 59, "华" * 20, "a-b", "x;drop"])
def test_a_schema_postgresql_cannot_name_whole_is_bad_input(schema):
    """Its read models' schema adds `_read`, within PostgreSQL's 63 bytes: a longer name would
    be cut short by the server, and two URLs would open one store."""
    store = f"postgresql://root@127.0.0.1:1/test?schema={schema}"  # refused before connecting
    for args in (["init", "--admin", "root", "--name", "R"], ["pool", "list"]):
        out = error(run_cli(store, *args), "invalid_input", 2)
        assert schema[:40] in out["message"] and (len(schema) <= 40 or schema[:41] not in out["message"])


# --- plain output ---------------------------------------------------------------------------

PLAIN = [
    ("alice", ["claim", "L-1", "--at", AT1]),
    ("alice", ["follow-up", "L-1", "--note", "called", "--at", AT1]),
    ("alice", ["release", "L-1", "--at", AT2]),
    ("mgr", ["assign", "L-2", "--to", "bob", "--at", AT1]),
    ("mgr", ["reassign", "L-2", "--to", "carol", "--reason", "cover", "--at", AT2]),
    ("carol", ["convert", "L-2", "--at", AT3]),
    ("mgr", ["move", "L-3", "--to-pool", "west", "--at", AT1]),
    ("mgr", ["lead", "add", "N-1", "--pool", "east", "--company", "Neo"]),
    ("root", ["person", "add", "eve", "--name", "Eve", "--role", "rep"]),
    ("root", ["pool", "create", "north", "--name", "North"]),
    ("root", ["pool", "rules", "north", "--claim-limit", "3"]),
    ("root", ["pool", "grant", "north", "eve"]),
    ("root", ["pool", "revoke", "north", "eve"]),
    (None, ["pool", "list"]),
    (None, ["pool", "show", "east"]),
    (None, ["person", "list"]),
    (None, ["lead", "show", "L-1"]),
    (None, ["owner", "L-1"]),
    (None, ["history", "L-1"]),
    (None, ["holdings", "carol"]),
    ("root", ["sweep", "--now", "2026-03-20T00:00:00Z", "--dry-run"]),
    ("root", ["person", "deactivate", "eve"]),
    (None, ["init", "--admin", "root", "--name", "Root Admin"]),
]


def test_plain_output_goes_to_stdout(world, store_url):
    for actor, args in PLAIN:
        run = run_cli(store_url, *args, actor=actor, as_json=False)
        assert run.code == 0, (args, run)
        assert run.stdout.strip(), args
        assert run.stderr == "", (args, run.stderr)
        with pytest.raises(ValueError):
            json.loads(run.stdout)


def test_json_output_is_one_object_per_command(world, store_url):
    for actor, args in PLAIN:
        run = run_cli(store_url, *args, actor=actor)
        assert run.code == 0, (args, run)
        one_object(run)
        assert run.stdout.count("\n") == 1


@pytest.mark.parametrize("actor, args, status", [
    ("bob", ["claim", "L-9"], 3),
    ("bob", ["assign", "L-1", "--to", "bob"], 4),
    ("dave", ["claim", "L-1"], 1),
    ("bob", ["claim", "L-1", "--at", "soon"], 2),
])
def test_plain_errors_are_one_line_on_stderr(world, store_url, actor, args, status):
    run = run_cli(store_url, *args, actor=actor, as_json=False)
    assert run.code == status
    assert run.stdout == ""
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), run.stderr
    assert "Traceback" not in run.stderr


# --- help -----------------------------------------------------------------------------------

def _commands(group: click.Group, path: tuple[str, ...] = ()):
    for name, command in sorted(group.commands.items()):
        yield (*path, name), command
        if isinstance(command, click.Group):
            yield from _commands(command, (*path, name))


ALL_COMMANDS = list(_commands(commands_root.root))


def test_every_spec_command_exists():
    names = {" ".join(path) for path, _ in ALL_COMMANDS}
    spec = {"init", "person add", "person deactivate", "person list", "pool create", "pool rules",
            "pool grant", "pool revoke", "pool list", "pool show", "lead add", "lead import", "lead show",
            "claim", "release", "assign", "reassign", "follow-up", "convert", "move", "sweep", "owner",
            "history", "holdings", "explain", "dispute open", "dispute show", "dispute resolve",
            "dispute list", "project", "export", "verify", "digest", "demo"}
    assert spec <= names, spec - names


@pytest.mark.parametrize("path", [p for p, _ in ALL_COMMANDS] + [()], ids=lambda p: " ".join(p) or "root")
def test_help(store_url, path):
    command = commands_root.root
    for name in path:
        command = command.commands[name]
    assert (command.help or "").strip(), f"{' '.join(path)} has no help text"
    run = run_cli(store_url, *path, "--help", as_json=False)
    assert run.code == 0 and run.stderr == ""
    assert "Usage:" in run.stdout
    words = [w for w in command.help.split() if w != "\b"][:4]
    assert " ".join(words) in " ".join(run.stdout.split())


# --- demo -----------------------------------------------------------------------------------

def test_demo_tells_its_story(store_url):
    run = run_cli(store_url, "demo", as_json=False)
    assert run.code == 0, run
    story = run.stdout.lower()
    assert "refused" in story and "recycl" in story
    assert "traceback" not in run.stderr.lower()
    assert ok(run_cli(store_url, "pool", "show", "east"))["pool"] == "east"


def test_demo_json(store_url):
    out = ok(run_cli(store_url, "demo"))
    assert any("refused" in line for line in out["story"])
    assert any("recycled" in line and "recycled 0" not in line for line in out["story"])
    assert out["events"] > 0
