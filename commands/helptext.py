"""click commands and options whose help texts follow the active language.

click reads `help` when it renders help, which is after `--lang` has been parsed. These classes
keep the English text and hand out its translation on every read, so help strings and docstrings
stay plain English literals in the source. A command's msgid is its docstring as
`inspect.cleandoc` leaves it (how click and the extractor both see it).
"""

from __future__ import annotations

import inspect
from typing import Any

import click

from ledger.i18n import LANGUAGES, activate, gettext


def _translated(name: str) -> property:
    def read(self: Any) -> str | None:
        raw = self.__dict__.get(name)
        return gettext(inspect.cleandoc(raw)) if raw else raw

    def write(self: Any, value: str | None) -> None:
        self.__dict__[name] = value

    return property(read, write)


class Option(click.Option):
    """A click option whose help follows the active language."""

    help = _translated("help")


class Command(click.Command):
    """A click command whose help, short help and epilog follow the active language."""

    help = _translated("help")
    short_help = _translated("short_help")
    epilog = _translated("epilog")


class Group(click.Group):
    """A click group like Command; `@group.command()` and sub-groups use these classes too."""

    help = _translated("help")
    short_help = _translated("short_help")
    epilog = _translated("epilog")
    command_class = Command
    group_class = type  # click: sub-groups are made with this same class


def option(*decls: str, **attrs: Any) -> Any:
    """`click.option` with a translated help."""
    return click.option(*decls, cls=Option, **attrs)


def command(name: str | None = None, **attrs: Any) -> Any:
    """`click.command` with a translated help."""
    return click.command(name, cls=Command, **attrs)


def group(name: str | None = None, **attrs: Any) -> Any:
    """`click.group` with a translated help."""
    return click.group(name, cls=Group, **attrs)


def _set_language(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    if value is not None:
        activate(value)


lang_option = option(
    "--lang", type=click.Choice(LANGUAGES), is_eager=True, expose_value=False, callback=_set_language,
    help="language of messages and help: zh or en (default: LEADLEDGER_LANG, else the locale)",
)
"""The root group's `--lang`. `cli.main` also reads it from the command line before click
parses (`activate(from_argv(argv))`), so that parse errors and `--help` follow it too."""
