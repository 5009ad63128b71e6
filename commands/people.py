"""person add | deactivate | list."""

from __future__ import annotations

import click

from commands import helptext
from commands.output import App, at_option, checked, pass_app
from commands.tables import table
from ledger.i18n import N_, _, gettext
from ledger.values import check_id


@helptext.group()
def person() -> None:
    """Register and deactivate people."""


@person.command("add")
@click.argument("person_id", metavar="ID", callback=checked(lambda v: check_id(v, _("person id"))))
@helptext.option("--name", required=True)
@helptext.option("--role", required=True, type=click.Choice(["admin", "manager", "rep", "auditor"]))
@helptext.option("--team")
@at_option
@pass_app
def add(app: App, person_id: str, name: str, role: str, team: str | None, at: str | None) -> None:
    """Register a person with a role (admin only).

    \b
    Example:
      leadledger --as root person add alice --name "Li Alice" --role rep --team east
    """
    app.run(lambda ledger: ledger.add_person(app.actor, person_id, name, role, team, at=at),
            lambda r: click.echo(_("{person} registered as {role} (event #{position})", person=r["person"],
                                     role=gettext(r["role"]), position=r["position"])))


@person.command("deactivate")
@click.argument("person_id", metavar="ID")
@helptext.option("--reassign-to", metavar="ID", help="give his leads to this rep instead of the pool")
@at_option
@pass_app
def deactivate(app: App, person_id: str, reassign_to: str | None, at: str | None) -> None:
    """Deactivate a person; each lead he holds returns to its pool (or goes to --reassign-to).

    \b
    Example:
      leadledger --as root person deactivate bob --reassign-to alice
    """
    def render(r: dict) -> None:
        click.echo(_("{person} deactivated (event #{position})", person=r["person"], position=r["position"]))
        for m in r["returned"]:
            click.echo(_("  {lead} returned to pool {pool}", lead=m["lead"], pool=m["pool"]))
        for m in r["reassigned"]:
            click.echo(_("  {lead} reassigned to {rep}", lead=m["lead"], rep=m["to"]))

    app.run(lambda ledger: ledger.deactivate_person(app.actor, person_id, reassign_to, at=at), render)


HEADERS = [N_("PERSON"), N_("NAME"), N_("ROLE"), N_("TEAM"), N_("ACTIVE")]


@person.command("list")
@pass_app
def list_(app: App) -> None:
    """Everyone registered, with role and status."""
    app.run(lambda ledger: ledger.person_list(),
            lambda r: table([{**p, "role": gettext(p["role"])} for p in r["people"]],
                            ["person", "name", "role", "team", "active"], [gettext(h) for h in HEADERS]),
            reader=True)


COMMANDS = [person]
