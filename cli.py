"""The `leadledger` command: global options, then the command groups from commands/."""

from __future__ import annotations

import sys

import click

from commands import audit, disputes, integrity, leads, ownership, people, pools, readmodels, receipts, setup
from commands.output import App, debug, report, stdout_gone, unexpected, usage_error, wants_json


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--store", envvar="LEADLEDGER_STORE", metavar="URL",
              help="sqlite:///FILE (default ./leadledger.db) or postgresql://user@host:port/db")
@click.option("--as", "actor", envvar="LEADLEDGER_ACTOR", metavar="ID", help="who is acting")
@click.option("--json", "as_json", is_flag=True, help="print one JSON object on stdout")
@click.version_option(package_name="leadledger")
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


for module in (setup, people, pools, leads, ownership, audit, disputes, readmodels, integrity, receipts):
    for command in module.COMMANDS:
        root.add_command(command)


def main(argv: list[str] | None = None) -> None:
    """Run one command. Every failure ends with a status from 0 to 6 (130 for Ctrl-C); a
    closed stdout (`| head`) ends it quietly with 1, as click does when it meets one first."""
    argv = sys.argv[1:] if argv is None else argv
    try:
        try:
            _invoke(argv)
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        sys.stdout.flush()  # here, not at exit: a closed pipe is then caught below
    except BrokenPipeError:
        stdout_gone()
        code = 1
    sys.exit(code)


def _invoke(argv: list[str]) -> None:
    as_json = wants_json(argv)
    try:
        root.main(args=argv, prog_name="leadledger", standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as e:
        click.echo(e.ctx.get_help() if e.ctx else e.format_message())
        sys.exit(0)
    except click.ClickException as e:  # usage errors, and click's own file errors
        usage_error(e.format_message(), as_json)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
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


if __name__ == "__main__":
    main()
