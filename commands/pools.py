"""pool create | rules | grant | revoke | list | show."""

from __future__ import annotations

from collections.abc import Callable

import click

from commands import helptext
from commands.output import App, at_option, checked, label, pass_app
from commands.tables import fields, table
from ledger.i18n import N_, _, gettext
from ledger.values import check_id, parse_rule


def rule_options(f: Callable) -> Callable:
    for name, help_ in reversed([
        ("claim-limit", N_("most leads of this pool one rep may hold (default 50)")),
        ("daily-claim-limit", N_("most claims per rep per UTC day, 0 = none (default 0)")),
        ("idle-limit", N_("recycle after no follow-up this long, e.g. 30d (default 30d)")),
        ("hold-limit", N_("recycle when not converted this long after the claim, 0 = never (default 90d)")),
        ("cooldown", N_("a rep may not reclaim a lead this long after it left him, 0 = none (default 7d)")),
        ("warn-before", N_("warn this long before a recycle deadline (default 3d)")),
    ]):
        rule = name.replace("-", "_")
        f = helptext.option(f"--{name}", metavar="N" if "limit" in name and "claim" in name else "D",
                         help=help_, callback=checked(lambda v, rule=rule: parse_rule(rule, v)))(f)
    return f


RULES_HELP = N_("Durations are 1m to 3650d (90m, 12h, 30d), or 0 to switch the rule off; "
              "limits are whole numbers up to 1,000,000.")


def _show_rules(r: dict) -> None:
    fields((label(k), v) for k, v in r["rules"].items())


@helptext.group()
def pool() -> None:
    """Create pools, change their rules, manage members."""


@pool.command("create", epilog=RULES_HELP)
@click.argument("pool_id", metavar="ID", callback=checked(lambda v: check_id(v, _("pool id"))))
@helptext.option("--name", required=True)
@rule_options
@at_option
@pass_app
def create(app: App, pool_id: str, name: str, at: str | None, **rules: str | None) -> None:
    """Create a pool with its rules (admin only).

    \b
    Example:
      leadledger --as root pool create east --name "East China" --claim-limit 30 --idle-limit 14d
    """
    def render(r: dict) -> None:
        click.echo(_("pool {pool} created (rules v1, event #{position})", pool=r["pool"], position=r["position"]))
        _show_rules(r)

    app.run(lambda ledger: ledger.create_pool(app.actor, pool_id, name, at=at, **rules), render)


@pool.command("rules", epilog=RULES_HELP)
@click.argument("pool_id", metavar="ID")
@rule_options
@at_option
@pass_app
def rules_(app: App, pool_id: str, at: str | None, **rules: str | None) -> None:
    """Change a pool's rules: a new rule version, in force from its time on.

    \b
    Example:
      leadledger --as root pool rules east --claim-limit 20
    """
    def render(r: dict) -> None:
        click.echo(_("pool {pool} rules v{version} from {since} (event #{position})", pool=r["pool"],
                     version=r["rules_version"], since=r["since"], position=r["position"]))
        _show_rules(r)

    app.run(lambda ledger: ledger.change_rules(app.actor, pool_id, at=at, **rules), render)


def _members_render(r: dict) -> None:
    changed = ", ".join(r["changed"]) or _("nobody (no change)")
    click.echo(_("pool {pool}: changed {changed}; members now {members}", pool=r["pool"], changed=changed,
                 members=", ".join(r["members"]) or "-"))


@pool.command("grant")
@click.argument("pool_id", metavar="ID")
@click.argument("people", nargs=-1, required=True, metavar="PERSON...")
@at_option
@pass_app
def grant(app: App, pool_id: str, people: tuple[str, ...], at: str | None) -> None:
    """Make people members of a pool (admin only).

    \b
    Example:
      leadledger --as root pool grant east alice bob
    """
    app.run(lambda ledger: ledger.grant(app.actor, pool_id, list(people), at=at), _members_render)


@pool.command("revoke")
@click.argument("pool_id", metavar="ID")
@click.argument("people", nargs=-1, required=True, metavar="PERSON...")
@at_option
@pass_app
def revoke(app: App, pool_id: str, people: tuple[str, ...], at: str | None) -> None:
    """Remove people from a pool (admin only). Leads they hold stay with them."""
    app.run(lambda ledger: ledger.revoke(app.actor, pool_id, list(people), at=at), _members_render)


LIST_HEADERS = [N_("POOL"), N_("NAME"), N_("RULES"), N_("MEMBERS"), N_("POOLED"), N_("HELD")]


@pool.command("list")
@pass_app
def list_(app: App) -> None:
    """Every pool with its counts."""
    app.run(lambda ledger: ledger.pool_list(),
            lambda r: table(r["pools"], ["pool", "name", "rules_version", "members", "pooled_count",
                                         "held_count"],
                            [gettext(h) for h in LIST_HEADERS]), reader=True)


@pool.command("show")
@click.argument("pool_id", metavar="ID")
@helptext.option("--at", metavar="TIME", help="as of this business time (ISO 8601; no offset means UTC)")
@helptext.option("--upto", metavar="POSITION", help="as the ledger said when its log ended at POSITION")
@pass_app
def show(app: App, pool_id: str, at: str | None = None, upto: str | None = None) -> None:
    """A pool's rules, members, counts and pooled leads (now, or as of a moment)."""
    def render(r: dict) -> None:
        fields([(_("pool"), f"{r['pool']} ({r['name']})"), (_("rules version"), r["rules_version"]),
                (_("members"), r["members"]), (_("held"), r["held_count"]),
                (_("converted"), r["converted_count"]), (_("pooled"), len(r["pooled"]))])
        click.echo(_("rules:"))
        _show_rules(r)
        if r["pooled"]:
            shown = r["pooled"][:20]
            more = _(" … and {more} more", more=len(r["pooled"]) - 20) if len(r["pooled"]) > 20 else ""
            click.echo(_("pooled leads: {shown}{more}", shown=", ".join(shown), more=more))

    app.run(lambda ledger: ledger.pool_show(pool_id, at, upto), render, reader=True)


COMMANDS = [pool]
