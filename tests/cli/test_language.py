"""The command line in both languages: `--help` of every command, messages, tables
and the demo follow `--lang` or the locale; machine output (JSON apart from an error's
`message`, exit statuses) does not."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

import cli
from commands import root as commands_root
from ledger import i18n
from ledger.application import Ledger
from tests.conftest import T0, Run, drop_schema, pg_url, run_cli
from tests.unit.test_i18n import _column_starts

CHINESE = re.compile(r"[\u4e00-\u9fff]")
T1 = "2026-03-02T10:00:00Z"


@pytest.fixture(autouse=True)
def back_to_english() -> Iterator[None]:
    """A run in Chinese leaves the process in Chinese; the next test reads the environment again."""
    yield
    i18n.activate(None)


def run(*argv: str, env: dict | None = None) -> Run:
    """`leadledger ARGV` in-process, with extra environment (None unsets a variable)."""
    runner = CliRunner()
    with runner.isolation(env={"LEADLEDGER_STORE": None, "LEADLEDGER_ACTOR": None, **(env or {})}) as (out, err, _x):
        try:
            cli.main(list(argv))
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    return Run(code, out.getvalue().decode(), err.getvalue().decode())


def command_paths() -> list[tuple[str, ...]]:
    """Every command and sub-command of the CLI, as the words that name it."""
    paths: list[tuple[str, ...]] = [()]

    def walk(command: click.Command, path: tuple[str, ...]) -> None:
        for name, sub in sorted(getattr(command, "commands", {}).items()):
            paths.append((*path, name))
            walk(sub, (*path, name))

    walk(commands_root.root, ())
    return paths


def option_names(help_text: str) -> list[str]:
    """The option names an `--help` lists, in order (e.g. `--store`, `-h`, `--help`)."""
    names, lines = [], help_text.splitlines()
    heading = [i for i, line in enumerate(lines) if re.match(r"^(Options|选项)\s*[:：]", line)]
    for line in lines[heading[0] + 1:] if heading else []:
        if line and not line.startswith(" "):  # the next section
            break
        m = re.match(r"^\s{2}(-[\w-]+(?:,\s*--[\w-]+)*)", line)
        if m:
            names += [n.strip() for n in m.group(1).split(",")]
    return names


ZH_LOCALE = {"LEADLEDGER_LANG": None, "LC_ALL": None, "LC_MESSAGES": None, "LANG": "zh_CN.UTF-8"}


@pytest.mark.parametrize("path", command_paths(), ids=lambda p: " ".join(p) or "root")
def test_every_help_is_chinese_under_zh_with_the_same_options(path):
    english = run(*path, "--help")
    by_option = run("--lang", "zh", *path, "--help")
    by_locale = run(*path, "--help", env=ZH_LOCALE)
    assert english.code == by_option.code == by_locale.code == 0
    assert "Usage:" in english.stdout and "Show this message and exit." in english.stdout
    for chinese in (by_option, by_locale):
        assert CHINESE.search(chinese.stdout) and "用法：" in chinese.stdout
        assert chinese.stdout != english.stdout
        assert option_names(chinese.stdout) == option_names(english.stdout) != []
    assert by_option.stdout == by_locale.stdout


def test_root_help_lists_every_command_with_a_chinese_short_help():
    # a process of its own: the listing of commands not imported yet (commands/summaries.py)
    out = subprocess.run([sys.executable, "-m", "cli", "--lang", "zh", "--help"], capture_output=True, text=True,
                         check=True, cwd=Path(cli.__file__).parent).stdout
    listed = out[out.index("命令"):].splitlines()[1:]
    assert sorted(line.split()[0] for line in listed) == sorted(commands_root.root.table)
    assert all(CHINESE.search(line) for line in listed), listed
    assert "从公海领取一条线索。" in out and "--lang" in out


def test_lang_overrides_the_locale_and_a_bad_one_is_a_usage_error():
    assert "Claim a pooled lead." in run("--lang", "en", "claim", "--help", env=ZH_LOCALE).stdout
    bad = run("--json", "--lang", "fr", "claim", "L-1")
    assert bad.code == 2 and bad.json["error"]["code"] == "invalid_input"
    refused = run("--json", "--lang", "fr", "claim", "L-1", env=ZH_LOCALE)  # said in the locale's language
    assert refused.code == 2 and CHINESE.search(refused.json["error"]["message"]), refused
    chinese = run("--json", "--lang", "zh", "claim", "--nope")
    english = run("--json", "--lang", "en", "claim", "--nope")
    assert chinese.code == english.code == 2
    assert chinese.json["error"]["code"] == english.json["error"]["code"] == "invalid_input"
    assert CHINESE.search(chinese.json["error"]["message"]) and "No such option" in english.json["error"]["message"]


def test_a_required_option_is_marked_in_chinese():
    out = run("--lang", "zh", "person", "add", "--help").stdout
    assert "[required]" not in out and "必填" in out, out


@pytest.mark.parametrize("how", [["--lang", "zh"], []])
def test_clicks_own_messages_follow_the_language_in_a_process_of_its_own(how):
    # click loads after the language is chosen (a plain verify-receipt never loads it)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("LEADLEDGER_", "LC_", "LANG"))},
           "LEADLEDGER_LANG": "zh"}
    done = subprocess.run([sys.executable, "-c", "import cli; cli.main()", *how, "owner"], env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2 and "缺少参数" in done.stderr, done.stderr


# --- the same command in both languages ----------------------------------------------------------

def without_message(answer: dict, drop: set[str] = frozenset()) -> dict:
    """A JSON answer with the human text of its error (and the keys in `drop`) left out."""
    answer = {k: v for k, v in answer.items() if k not in drop}
    if "error" in answer:
        return {**answer, "error": {k: v for k, v in answer["error"].items() if k != "message"}}
    return answer


def same_but_for_words(english: Run, chinese: Run, *, plain_english: Run, plain_chinese: Run,
                       drop: set[str] = frozenset()) -> None:
    assert english.code == chinese.code == plain_english.code == plain_chinese.code
    assert without_message(english.json, drop) == without_message(chinese.json, drop)
    plain = (plain_english.stdout + plain_english.stderr, plain_chinese.stdout + plain_chinese.stderr)
    assert plain[0] != plain[1] and CHINESE.search(plain[1])


@pytest.fixture
def twin_store(backend, tmp_path) -> Iterator[str]:
    """A second fresh store on the same backend (a write in each language needs its own)."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'twin.db'}"
        return
    schema = "t_" + uuid.uuid4().hex[:12]
    yield pg_url(schema)
    drop_schema(schema)


def build(store: str) -> None:
    """root; reps alice (a Chinese name) and bob in pool east; L-1 held by alice."""
    with Ledger(store) as led:
        led.init("root", "Root Admin", at=T0)
        led.add_person("root", "alice", "王小明", "rep", "华东一组", at=T0)
        led.add_person("root", "bob", "Bob", "rep", at=T0)
        led.create_pool("root", "east", "华东", at=T0)
        led.grant("root", "east", ["alice", "bob"], at=T0)
        led.add_lead("root", "L-1", "east", company="上海机械001有限公司", at=T0)
        led.add_lead("root", "L-2", "east", company="Acme", at=T0)
        led.claim("alice", "L-1", at=T1)


def events(store: str) -> list:
    with Ledger(store) as led:
        return led.store.read_log(after=0, limit=10**9)


@pytest.fixture
def twins(store_url, twin_store) -> tuple[str, str]:
    build(store_url)
    build(twin_store)
    return store_url, twin_store


def test_a_refusal_in_both_languages(twins):
    stores = dict(zip(("en", "zh"), twins, strict=True))
    before = {lang: events(store) for lang, store in stores.items()}
    answers = {lang: run_cli(store, "--lang", lang, "claim", "L-1", "--at", "2026-03-02T11:00:00Z", actor="bob")
               for lang, store in stores.items()}
    assert answers["en"].code == 1 and answers["en"].json["error"]["code"] == "lead_owned"
    for lang, store in stores.items():  # the refusal record and nothing more, in either language
        written = events(store)[len(before[lang]):]
        assert [type(s.event).__name__ for s in written] == ["ClaimRefused"], written
    # the plain runs write one more refusal each, alike
    plain = {lang: run_cli(store, "--lang", lang, "claim", "L-1", "--at", "2026-03-02T11:00:00Z", actor="bob",
                           as_json=False) for lang, store in stores.items()}
    same_but_for_words(answers["en"], answers["zh"], plain_english=plain["en"], plain_chinese=plain["zh"])
    assert plain["zh"].stderr.startswith("错误：") and plain["en"].stderr.startswith("error: ")
    assert "[lead_owned]" in plain["zh"].stderr


def test_an_error_with_json_in_both_languages(store_url):
    build(store_url)
    answers = {lang: run_cli(store_url, "--lang", lang, "claim", "L-1", "--at", "not-a-time", actor="bob")
               for lang in ("en", "zh")}
    plain = {lang: run_cli(store_url, "--lang", lang, "--as", "bob", "claim", "L-1", "--at", "not-a-time",
                           as_json=False) for lang in ("en", "zh")}
    assert answers["en"].code == 2 and answers["en"].json["error"]["code"] == "invalid_input"
    same_but_for_words(answers["en"], answers["zh"], plain_english=plain["en"], plain_chinese=plain["zh"])


@pytest.mark.parametrize("query", [["person", "list"], ["history", "L-1"], ["pool", "list"], ["holdings", "alice"]])
def test_a_table_in_both_languages(store_url, query):
    build(store_url)
    answers = {lang: run_cli(store_url, "--lang", lang, *query) for lang in ("en", "zh")}
    plain = {lang: run_cli(store_url, "--lang", lang, *query, as_json=False) for lang in ("en", "zh")}
    same_but_for_words(answers["en"], answers["zh"], plain_english=plain["en"], plain_chinese=plain["zh"],
                       drop={"now"})  # a query as of now names its own now


column_starts = _column_starts  # the display column where each cell starts in a printed line


def test_tables_line_up_with_chinese_and_latin_text(store_url):
    build(store_url)
    people = run_cli(store_url, "--lang", "zh", "person", "list", as_json=False).stdout.splitlines()
    assert people[0].split() == ["人员", "名称", "角色", "团队", "生效中"]
    rows = {"alice": ["alice", "王小明", "销售", "华东一组", "是"], "bob": ["bob", "Bob", "销售", "-", "是"],
            "root": ["root", "Root Admin", "管理员", "-", "是"]}
    starts = {column_starts(people[0], people[0].split()).__str__()}
    starts |= {column_starts(line, rows[line.split()[0]]).__str__() for line in people[1:]}
    assert len(starts) == 1, people

    lines = run_cli(store_url, "--lang", "zh", "history", "L-1", as_json=False).stdout.splitlines()
    table = lines[1:lines.index("")]
    heading = table[0].split()
    assert heading == ["#", "发生时间", "事件", "操作人", "详情"]
    found = {str(column_starts(line, line.split()[:4])) for line in table[1:]}
    assert len(found) == 1 and str(column_starts(table[0], heading[:4])) in found, table


def test_demo_in_both_languages(backend, store_url, twin_store):
    answers = {"en": run_cli(store_url, "--lang", "en", "demo"), "zh": run_cli(twin_store, "--lang", "zh", "demo")}
    assert answers["en"].code == answers["zh"].code == 0

    def neutral(answer: Run) -> dict:  # each names its own store; the story is told to a person
        return {k: v for k, v in answer.json.items() if k not in ("store", "story")}

    assert neutral(answers["en"]) == neutral(answers["zh"])
    assert len(answers["en"].json["story"]) == len(answers["zh"].json["story"])
    assert CHINESE.search(" ".join(answers["zh"].json["story"])) and not CHINESE.search(
        " ".join(line.replace("公海", "") for line in answers["en"].json["story"]))
    if backend == "postgresql":  # told once more: each in a fresh schema of its own
        return
    plain = {lang: run_cli(f"sqlite:///{store.split(':///', 1)[1]}.{lang}", "--lang", lang, "demo", as_json=False)
             for lang, store in (("en", store_url), ("zh", twin_store))}
    assert plain["en"].code == plain["zh"].code == 0
    assert plain["en"].stdout != plain["zh"].stdout and CHINESE.search(plain["zh"].stdout)



# --- errors of imports, verify and receipts: the message in the reader's language -----------------

def in_both_languages(store: str, *argv: str, actor: str | None = None) -> dict[str, Run]:
    """The same command with --json in English and in Chinese; equal apart from the message."""
    answers = {lang: run_cli(store, "--lang", lang, *argv, actor=actor) for lang in ("en", "zh")}
    assert answers["en"].code == answers["zh"].code != 0
    assert without_message(answers["en"].json) == without_message(answers["zh"].json)
    assert answers["en"].json["error"]["message"] != answers["zh"].json["error"]["message"]
    assert CHINESE.search(answers["zh"].json["error"]["message"])
    return answers


def test_an_import_error_in_both_languages(store_url, tmp_path):
    build(store_url)
    leads = tmp_path / "leads.csv"
    leads.write_text("公司,电话\n杭州物流,13800000001\n", encoding="utf-8")
    before = len(events(store_url))
    answers = in_both_languages(store_url, "lead", "import", str(leads), "--pool", "east", actor="root")
    assert answers["en"].code == 2 and answers["en"].json["error"]["code"] == "invalid_input"
    assert answers["en"].json["error"]["message"].startswith(f"{leads}: no id column: name one id or 编号")
    assert answers["zh"].json["error"]["message"].startswith(f"{leads}：没有编号列")
    assert len(events(store_url)) == before
    plain = run_cli(store_url, "--lang", "zh", "--as", "root", "lead", "import", str(leads), "--pool", "east",
                    as_json=False)
    assert plain.code == 2 and plain.stderr.startswith("错误：") and "[invalid_input]" in plain.stderr


def test_a_verify_failure_in_both_languages(twins):
    store, other = twins
    digest = run_cli(other, "digest").json["digest"]
    answers = in_both_languages(store, "verify", "--digest", digest)
    english = answers["en"].json
    assert answers["en"].code == 6 and english["error"]["code"] == "integrity_violation" and english["ok"] is False
    assert english["problem"].startswith("the digest is of another ledger")  # data: English in both languages
    assert english["error"]["message"] == english["problem"]
    assert answers["zh"].json["error"]["message"].startswith("该摘要属于另一个账本")
    malformed = in_both_languages(store, "verify", "--digest", "lld1:nonsense")
    assert malformed["en"].code == 2 and malformed["zh"].json["error"]["message"].startswith("摘要格式错误")


def test_a_receipt_check_failure_in_both_languages(store_url, tmp_path):
    build(store_url)
    made = run_cli(store_url, "receipt", "3")
    assert made.code == 0
    forged = {**made.json, "leaf_hash": "0" * 64}
    path = tmp_path / "receipt.json"
    path.write_text(json.dumps(forged), encoding="utf-8")
    answers = in_both_languages(store_url, "verify-receipt", str(path))
    english = answers["en"].json
    assert answers["en"].code == 6 and (english["error"]["code"], english["failed"]) == ("integrity_violation",
                                                                                          "leaf_hash")
    assert english["error"]["message"] == "leaf_hash: it is not the leaf of the record's hash"
    assert answers["zh"].json["error"]["message"] == "leaf_hash：它不是该记录哈希的叶子"


def test_a_return_on_deactivation_reads_in_both_languages(store_url):
    """The reason a LeadReturned event stores in English is shown made again in the reader's language."""
    build(store_url)
    assert run_cli(store_url, "person", "deactivate", "alice", actor="root").code == 0
    explained = {lang: run_cli(store_url, "--lang", lang, "explain", "L-1") for lang in ("en", "zh")}
    assert explained["en"].code == explained["zh"].code == 0
    assert "because owner alice deactivated." in explained["en"].json["summary"]
    assert "原因：归属人 alice 已停用。" in explained["zh"].json["summary"]
    history = run_cli(store_url, "--lang", "zh", "history", "L-1", as_json=False)
    assert "alice -> 公海池 east：归属人 alice 已停用" in history.stdout, history.stdout
