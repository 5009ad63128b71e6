"""Language selection, translated messages and help, width-aware tables, and the catalogue."""

from __future__ import annotations

import ast
import inspect
import io
import os
import re
import string
import subprocess
import sys
import textwrap
from pathlib import Path

import click
import pytest
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from click.testing import CliRunner

from commands import helptext
from commands.tables import display_width, field_lines, pad, table_lines
from ledger import errors, i18n, i18n_extract
from ledger.i18n import _, ngettext

ROOT = Path(__file__).resolve().parents[2]


def _subclasses(cls: type) -> list[type]:
    return [sub for direct in cls.__subclasses__() for sub in (direct, *_subclasses(direct))]

CATALOGUE = i18n.LOCALE_DIR / "zh" / "LC_MESSAGES" / "leadledger"


@pytest.fixture
def lang():
    """Activate a language for one test, then go back to what was active."""
    before = i18n.language()
    yield i18n.activate
    i18n.activate(before)


@pytest.fixture(scope="module")
def po():
    with open(f"{CATALOGUE}.po", "rb") as f:
        return read_po(f)


# --- choosing the language -----------------------------------------------------------------------

@pytest.mark.parametrize(("environ", "expected"), [
    ({}, "en"),
    ({"LANG": "zh_CN.UTF-8"}, "zh"),
    ({"LANG": "en_US.UTF-8"}, "en"),
    ({"LANG": "C"}, "en"),
    ({"LC_MESSAGES": "zh_CN.UTF-8", "LANG": "en_US.UTF-8"}, "zh"),
    ({"LC_MESSAGES": "en_GB", "LANG": "zh_CN.UTF-8"}, "en"),
    ({"LC_ALL": "zh_CN.UTF-8", "LC_MESSAGES": "en_US", "LANG": "en_US"}, "zh"),
    ({"LC_ALL": "C.UTF-8", "LC_MESSAGES": "zh_CN", "LANG": "zh_CN"}, "en"),
    ({"LEADLEDGER_LANG": "zh", "LC_ALL": "en_US.UTF-8"}, "zh"),
    ({"LEADLEDGER_LANG": "en", "LC_ALL": "zh_CN.UTF-8", "LANG": "zh_CN.UTF-8"}, "en"),
    ({"LEADLEDGER_LANG": "", "LC_ALL": "", "LANG": "zh_TW.UTF-8"}, "zh"),  # empty counts as unset
    ({"LANG": "ZH_cn"}, "zh"),
])
def test_environment_precedence(environ, expected):
    assert i18n.choose(None, environ) == expected


@pytest.mark.parametrize(("explicit", "environ", "expected"), [
    ("en", {"LEADLEDGER_LANG": "zh", "LC_ALL": "zh_CN.UTF-8"}, "en"),
    ("zh", {"LEADLEDGER_LANG": "en", "LANG": "en_US.UTF-8"}, "zh"),
    ("zh", {}, "zh"),
    ("fr", {"LANG": "zh_CN.UTF-8"}, "zh"),  # a language not spoken: the environment's, to refuse it in
    ("fr", {}, "en"),
])
def test_explicit_choice_overrides_environment(explicit, environ, expected):
    assert i18n.choose(explicit, environ) == expected


def test_environment_is_read_on_first_use_and_catalogue_ships_with_the_package():
    code = ("from ledger.i18n import _, language; import sys;"
            "print(_('no pool {pool}', pool='east')); print(language()); print('babel' in sys.modules)")
    env = {k: v for k, v in os.environ.items() if k not in i18n.ENVIRONMENT}
    for value, text, lang in (("zh_CN.UTF-8", "没有公海池 east", "zh"), ("en_US.UTF-8", "no pool east", "en")):
        out = subprocess.run([sys.executable, "-c", code], env={**env, "LANG": value}, cwd=ROOT,
                             capture_output=True, text=True, check=True).stdout.splitlines()
        assert out == [text, lang, "False"]


@pytest.mark.parametrize(("argv", "expected"), [
    ([], None),
    (["--lang", "zh", "claim", "L-1"], "zh"),
    (["--json", "--lang=en", "history", "L-1"], "en"),
    (["--lang", "zh", "--lang", "en"], "en"),
    (["lead", "add", "--", "--lang", "zh"], None),
    (["--lang"], None),
])
def test_lang_is_found_on_the_command_line_before_click_parses(argv, expected):
    assert i18n.from_argv(argv) == expected


# --- translating ---------------------------------------------------------------------------------

def test_messages_follow_the_active_language(lang):
    lang("zh")
    assert i18n.language() == "zh"
    assert _("lead {lead} is held by {owner}, not {actor}", lead="L-1", owner="bob", actor="alice") \
        == "线索 L-1 的持有人是 bob，不是 alice"
    lang("en")
    assert _("lead {lead} is held by {owner}, not {actor}", lead="L-1", owner="bob", actor="alice") \
        == "lead L-1 is held by bob, not alice"
    assert _("a message nobody translated: {x}", x=1) == "a message nobody translated: 1"


def test_plural_forms(lang):
    lang("en")
    assert ngettext("{n} lead", "{n} leads", 1) == "1 lead"
    assert ngettext("{n} lead", "{n} leads", 3) == "3 leads"
    lang("zh")
    assert ngettext("Takes {nargs} values but 1 was given.", "Takes {nargs} values but {len} were given.",
                    3, nargs=2, len=3) == "需要 2 个值，但给出了 3 个。"


def _tiny_command() -> click.Command:
    @helptext.command()
    @helptext.option("--to", "to", required=True, metavar="REP", help="ownership moves to REP")
    def award(to: str) -> None:
        """Claim a pooled lead.

        \b
        Example:
          leadledger --as alice claim L-1001
        """
        click.echo(to)

    return award


def test_help_is_translated_when_it_is_rendered(lang):
    command = _tiny_command()  # defined before the language is chosen, as at import time
    lang("zh")
    out = CliRunner().invoke(command, ["--help"]).output
    assert "从公海领取一条线索。" in out and "归属改判给 REP" in out
    assert "用法：" in out and "显示此帮助并退出。" in out
    assert "  leadledger --as alice claim L-1001" in out  # the \b block is not rewrapped
    lang("en")
    out = CliRunner().invoke(command, ["--help"]).output
    assert "Claim a pooled lead." in out and "ownership moves to REP" in out and "Usage:" in out


def test_clicks_usage_errors_follow_the_language(lang):
    command = _tiny_command()
    lang("zh")
    result = CliRunner().invoke(command, [])
    assert result.exit_code == 2 and "缺少选项 '--to'" in result.output
    result = CliRunner().invoke(command, ["--to", "x", "--nope"])
    assert "没有选项 '--nope'" in result.output
    lang("en")
    assert "Missing option '--to'" in CliRunner().invoke(command, []).output


def _tiny_root() -> click.Group:
    @helptext.group()
    @helptext.lang_option
    def root() -> None:
        """Open, examine and resolve ownership disputes (撞单)."""

    root.add_command(_tiny_command())
    return root


def test_lang_option_overrides_the_environment(lang, monkeypatch):
    root = _tiny_root()
    monkeypatch.setenv("LEADLEDGER_LANG", "zh")
    lang(None)
    assert "从公海领取一条线索。" in CliRunner().invoke(root, ["award", "--help"]).output
    out = CliRunner().invoke(root, ["--lang", "en", "award", "--help"]).output
    assert "Claim a pooled lead." in out and "Usage:" in out
    monkeypatch.setenv("LEADLEDGER_LANG", "en")
    lang(None)
    out = CliRunner().invoke(root, ["--lang", "zh", "--help"]).output
    assert "发起、审查和裁决归属争议（撞单）。" in out and "消息和帮助的语言" in out and "命令" in out
    lang(None)
    result = CliRunner().invoke(root, ["--lang", "fr", "award"])
    assert result.exit_code == 2 and "'fr' is not one of 'en', 'zh'" in result.output


def test_the_main_hook_translates_parse_errors(lang):
    """What cli.main does first: activate(from_argv(argv)), then let click parse."""
    root = _tiny_root()
    for argv, message in ((["--lang", "zh", "award"], "缺少选项 '--to'"),
                          (["--nope", "--lang", "zh"], "没有选项 '--nope'"),
                          (["--lang", "en", "award"], "Missing option '--to'")):
        lang(i18n.from_argv(argv))
        with pytest.raises(click.UsageError) as caught:
            root.main(args=argv, prog_name="leadledger", standalone_mode=False)
        assert message in caught.value.format_message()


def test_every_command_and_option_of_the_cli_has_chinese_help(lang):
    from commands.root import root

    untranslated = []

    def texts(command: click.Command, language: str) -> list:
        """The help texts as they are rendered in `language` (the commands translate on reading)."""
        lang(language)
        return [command.help, command.short_help] + [p.help for p in command.params if isinstance(p, click.Option)]

    def walk(command: click.Command) -> None:
        for english, chinese in zip(texts(command, "en"), texts(command, "zh"), strict=True):
            if english and english not in ("Show this message and exit.", "Show the version and exit.") \
                    and chinese == english:
                untranslated.append(inspect.cleandoc(english))
        for sub in getattr(command, "commands", {}).values():
            walk(sub)

    walk(root)
    assert untranslated == []


# --- tables --------------------------------------------------------------------------------------

def test_display_width_counts_wide_characters_twice():
    assert display_width("L-1001") == 6
    assert display_width("公海") == 4
    assert display_width("上海机械001有限公司") == 4 * 2 + 3 + 4 * 2
    assert display_width("ＡＢ") == 4  # full-width Latin
    assert display_width("e\u0301") == 1  # a combining accent takes no column
    assert pad("公海", 6) == "公海  " and pad("toolong", 3) == "toolong"


def _column_starts(line: str, cells: list[str]) -> list[int]:
    """The display column where each cell starts in a rendered line."""
    starts, at = [], 0
    for cell in cells:
        at = line.index(cell, at)
        starts.append(display_width(line[:at]))
        at += len(cell)
    return starts


def test_table_aligns_mixed_chinese_and_latin():
    rows = [{"lead": "L-1001", "company": "上海机械001有限公司", "owner": "alice"},
            {"lead": "L-1002", "company": "Acme Ltd", "owner": "王小明"},
            {"lead": "L-10003", "company": "杭州物流", "owner": None}]
    lines = table_lines(rows, ["lead", "company", "owner"], ["线索", "公司", "归属人"])
    starts = [_column_starts(lines[0], ["线索", "公司", "归属人"])]
    starts += [_column_starts(line, [r["lead"], r["company"], r["owner"] or "-"])
               for line, r in zip(lines[1:], rows, strict=True)]
    assert len({tuple(s) for s in starts}) == 1, lines
    widest = max(display_width(r["company"]) for r in rows)
    assert starts[0][2] - starts[0][1] == widest + 2


def test_fields_align_labels_by_display_width():
    lines = field_lines([("线索", "L-1"), ("Customer", "上海"), ("归属人", "bob"), ("skipped", None)])
    assert len(lines) == 3
    assert {display_width(line[: line.index(v)]) for line, v in zip(lines, ["L-1", "上海", "bob"])} == {10}


# --- the catalogue -------------------------------------------------------------------------------

def _source_messages() -> set:
    found = {message for _f, _l, message in i18n_extract.source_messages(ROOT)}
    assert len(found) > 500  # the extractor did find the messages and help texts
    return found


def _click_messages() -> set:
    return {message for _f, _l, message in i18n_extract.click_messages()}


def untranslated(catalogue: Catalog, messages: set) -> list:
    """The messages that have no (or only a fuzzy) translation in `catalogue`."""
    missing = []
    for msgid in messages:
        entry = catalogue.get(msgid[0] if isinstance(msgid, tuple) else msgid)
        translated = entry is not None and not entry.fuzzy and all(
            entry.string if isinstance(entry.string, tuple) else [entry.string])
        if not translated:
            missing.append(msgid)
    return missing


_PERCENT = re.compile(r"%\((\w+)\)[sdr]")


def placeholders(text: str) -> set[str]:
    names = {name for _t, name, _s, _c in string.Formatter().parse(text) if name is not None}
    return names | set(_PERCENT.findall(text))


def lost_placeholders(catalogue: Catalog) -> list:
    """(msgid, translation) where the translation's named placeholders differ from the message's."""
    wrong = []
    for entry in catalogue:
        if not entry.id:
            continue
        if isinstance(entry.id, tuple):  # Chinese has one form: it says what the plural says
            expected, strings = placeholders(entry.id[1]), entry.string
        else:
            expected, strings = placeholders(entry.id), (entry.string,)
        for text in strings:
            if placeholders(text) != expected:
                wrong.append((entry.id, text))
    return wrong


def test_every_message_of_the_source_and_of_click_has_a_translation(po):
    assert untranslated(po, _source_messages() | _click_messages()) == []


def test_translations_keep_every_named_placeholder(po):
    assert lost_placeholders(po) == []


def test_the_catalogue_checks_catch_a_missing_translation_and_a_lost_placeholder():
    catalogue = Catalog(locale="zh")
    catalogue.add("no pool {pool}", "没有公海池 {pool}")
    catalogue.add("no lead {lead}", "没有线索")  # the placeholder is lost
    catalogue.add("no dispute {dispute}", "")  # not translated yet
    catalogue.add("aborted", "已中止", flags=["fuzzy"])
    catalogue.add(("{n} lead", "{n} leads"), ("{n} 条线索",))
    messages = {"no pool {pool}", "no lead {lead}", "no dispute {dispute}", "aborted", "never seen",
                ("{n} lead", "{n} leads")}
    assert sorted(untranslated(catalogue, messages)) == ["aborted", "never seen", "no dispute {dispute}"]
    assert [msgid for msgid, _text in lost_placeholders(catalogue)] == ["no lead {lead}", "no dispute {dispute}"]


def test_extraction_finds_messages_in_f_strings_nested_calls_and_help():
    source = textwrap.dedent('''
        @click.command()
        @click.option("--to", help="ownership moves to REP")
        def award(to):
            """Claim a pooled lead."""
            click.echo(f"<h2>{escape(_('Pools'))}</h2>")
            raise InvalidInput(_("Cooldown: {reps}.", reps=", ".join(_("{rep} waits", rep=r) for r in to)))
        LABELS = [N_("claims"), gettext("held")]
        ngettext("{n} lead", "{n} leads", 2)
        _(name)  # not a literal: nothing to extract
    ''')
    found = [m for _line, _f, m, _c in i18n_extract.extract(io.StringIO(source), i18n_extract.KEYWORDS, [], {})]
    assert sorted(found, key=str) == sorted(["Pools", "Cooldown: {reps}.", "{rep} waits", "claims", "held",
                                             ("{n} lead", "{n} leads"), "Claim a pooled lead.",
                                             "ownership moves to REP"], key=str)


# Calls whose text argument is a message for a person; a code (`"not_owner"`) may stand beside it.
_SHOWN = {cls.__name__ for cls in (errors.LedgerError, *_subclasses(errors.LedgerError))} | {
    "RowError", "Failed", "echo", "secho", "ClickException", "UsageError", "BadParameter"}
_CODE = re.compile(r"[a-z_]+")


def _english(node: ast.expr) -> bool:
    """Whether an argument is English text written in place rather than a translated message."""
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str) and not _CODE.fullmatch(node.value) and any(c.isalpha() for c in node.value)
    if isinstance(node, ast.JoinedStr):
        return any(isinstance(v, ast.Constant) and any(c.isalpha() for c in v.value) for v in node.values)
    if isinstance(node, ast.BinOp):  # concatenated, or %-formatted
        return _english(node.left) or _english(node.right)
    if isinstance(node, ast.IfExp):
        return _english(node.body) or _english(node.orelse)
    return False


def test_no_message_for_a_person_is_left_in_english_in_the_source():
    """Extraction finds only what goes through `_`: an error or notice written as a plain or
    f-string would never reach the catalogue, so it is caught here."""
    unwrapped = []
    files = [*ROOT.joinpath("ledger").rglob("*.py"), *ROOT.joinpath("commands").rglob("*.py"),
             *ROOT.joinpath("projections").rglob("*.py"), ROOT / "cli.py"]
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name in _SHOWN:
                args = [*node.args, *(k.value for k in node.keywords if k.arg in ("message", "problem"))]
                unwrapped += [f"{path.relative_to(ROOT)}:{a.lineno}" for a in args if _english(a)]
    assert unwrapped == []


def test_translations_keep_clicks_no_rewrap_markers(po):
    assert all(entry.id.count("\b") == entry.string.count("\b") for entry in po
               if isinstance(entry.id, str) and entry.id)


def test_compiled_catalogue_matches_the_po(po):
    compiled = io.BytesIO()
    write_mo(compiled, po)
    assert Path(f"{CATALOGUE}.mo").read_bytes() == compiled.getvalue(), \
        "run: pybabel compile -d ledger/locale -D leadledger"
