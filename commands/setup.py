"""init and demo."""

from __future__ import annotations

import click

from commands import helptext
from commands.output import App, at_option, pass_app
from ledger.i18n import _


@helptext.command()
@helptext.option("--admin", required=True, metavar="ID", help="id of the first admin")
@helptext.option("--name", required=True, help="the admin's name")
@at_option
@pass_app
def init(app: App, admin: str, name: str, at: str | None) -> None:
    """Create the store (idempotent) and its first admin.

    \b
    Example:
      leadledger init --admin root --name "Wang Admin"
    """
    def render(r: dict) -> None:
        if r["created"]:
            click.echo(_("store {store} is ready; registered admin {admin}", store=r["store"], admin=r["admin"]))
        else:
            click.echo(_("store {store} is ready; admin {admin} was already registered", store=r["store"], admin=r["admin"]))

    app.run(lambda ledger: ledger.init(admin, name, at=at), render)


@helptext.command()
@pass_app
def demo(app: App) -> None:
    """Build a realistic small world in a fresh store and tell its story.

    It replaces an earlier demo's SQLite file, and refuses to touch a store that holds
    anything else.

    \b
    Example:
      leadledger demo
      leadledger --store sqlite:///demo.db demo
    """
    from ledger.demo import run_demo  # noqa: PLC0415

    app.run(lambda ledger: run_demo(ledger, say=None if app.json else click.echo))


COMMANDS = [init, demo]
