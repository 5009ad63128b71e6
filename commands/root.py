"""The `leadledger` click group: global options, then the commands of commands/, each module
imported when one of its commands runs."""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from commands import helptext
from commands.summaries import SUMMARIES
from commands.output import App, debug, report, unexpected, usage_error
from commands.plain import stdout_gone, wants_json
from ledger import i18n
from ledger.i18n import _, gettext

# click loads after cli.main chose the language: its own messages follow it too.
i18n.translate_click()

# SUMMARIES: every command's module and short help, written from the commands by `python -m
# commands.summarise`: a module is imported only when one of its commands runs, so that a query
# loads neither the other commands nor what they use (file readers, signing keys, reports).


class LazyGroup(helptext.Group):
    """A group whose commands are imported on first look-up, module by module (`table`: name ->
    (module of commands/, short help)). `commands`, read from outside, loads them all."""

    def __init__(self, *args: Any, table: dict[str, tuple[str, str]], **kwargs: Any) -> None:
        self.table = table
        self.loaded: dict[str, click.Command] = {}
        super().__init__(*args, **kwargs)

    @property  # type: ignore[override]
    def commands(self) -> dict[str, click.Command]:
        for name in self.table:
            self.load(name)
        return self.loaded

    @commands.setter
    def commands(self, value: dict[str, click.Command]) -> None:
        self.loaded = dict(value)

    def load(self, name: str) -> None:
        if name not in self.loaded and name in self.table:
            module = importlib.import_module(f"commands.{self.table[name][0]}")
            for command in module.COMMANDS:
                self.add_command(command)

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        name = name or cmd.name
        if name is None:
            raise TypeError("Command has no name.")
        self.loaded[name] = cmd

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BrokenPipeError:  # stdout's reader went away (`| head`): no failure of the command's,
            stdout_gone()  # which click would end with 1
            raise click.exceptions.Exit(0) from None

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        self.load(cmd_name)
        return self.loaded.get(cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(self.table.keys() | self.loaded.keys())

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """click's listing, with the table's short help for commands not loaded (a stand-in
        command shortens it to the width exactly as click shortens a docstring)."""
        listed = [(name, self.loaded.get(name) or helptext.Command(name, help=self.table[name][1]))
                  for name in self.list_commands(ctx)]
        listed = [(name, command) for name, command in listed if not command.hidden]
        if listed:
            limit = formatter.width - 6 - max(len(name) for name, _cmd in listed)
            with formatter.section(gettext("Commands")):
                formatter.write_dl([(name, command.get_short_help_str(limit)) for name, command in listed])


@click.group(cls=LazyGroup, table=SUMMARIES,
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@helptext.lang_option
@helptext.option("--store", envvar="LEADLEDGER_STORE", metavar="URL",
              help="sqlite:///FILE (default ./leadledger.db) or postgresql://user@host:port/db")
@helptext.option("--as", "actor", envvar="LEADLEDGER_ACTOR", metavar="ID", help="who is acting")
@helptext.option("--json", "as_json", is_flag=True, help="print one JSON object on stdout")
@click.version_option(package_name="leadledger", cls=helptext.Option)
@click.pass_context
def root(ctx: click.Context, store: str | None, actor: str | None, as_json: bool) -> None:
    """An event-sourced ownership ledger for a shared lead pool (公海).

    \b
    Try:
      leadledger demo                      build a small world and tell its story
      leadledger --as alice claim L-1001   claim a lead
      leadledger history L-1001            its full audit trail
    """
    app = App(store, actor, as_json)
    ctx.obj = app
    ctx.call_on_close(app.close)


def invoke(argv: list[str]) -> None:
    """Run one command line through click; errors end in SystemExit with their status."""
    as_json = wants_json(argv)
    try:
        root.main(args=argv, prog_name="leadledger", standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as e:
        click.echo(e.ctx.get_help() if e.ctx else e.format_message())
        sys.exit(0)
    except click.ClickException as e:  # usage errors, and click's own file errors
        usage_error(e.format_message(), as_json)
    except click.exceptions.Abort:
        click.echo(_("aborted"), err=True)
        sys.exit(130)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    except BrokenPipeError:
        raise
    except Exception as e:  # noqa: BLE001 - one line or one JSON object, not a traceback
        if debug():
            raise
        report(unexpected(e), as_json)

