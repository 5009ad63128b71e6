"""dispute open | show | resolve | list."""

from __future__ import annotations

import click

from commands.output import App, at_option, fields, pass_app, table


@click.group()
def dispute() -> None:
    """Open, examine and resolve ownership disputes (撞单)."""


@dispute.command("open")
@click.argument("lead_id", metavar="LEAD")
@click.option("--reason", required=True, metavar="TEXT")
@at_option
@pass_app
def open_(app: App, lead_id: str, reason: str, at: str | None) -> None:
    """Open a dispute on a lead.

    \b
    Example:
      leadledger --as bob dispute open L-1001 --reason "I visited this customer on Monday"
    """
    app.run(lambda ledger: ledger.open_dispute(app.actor, lead_id, reason, at=at),
            lambda r: click.echo(f"dispute {r['dispute']} opened on {r['lead']} (event #{r['position']})"))


@dispute.command("show")
@click.argument("dispute_id", metavar="ID")
@click.option("--html", "html_file", type=click.Path(dir_okay=False, writable=True),
              help="also write a self-contained HTML evidence report to this file")
@pass_app
def show(app: App, dispute_id: str, html_file: str | None) -> None:
    """A dispute and its evidence: ownership, every attempt, follow-ups, rules, duplicates.

    \b
    Example:
      leadledger dispute show L-1001-D1 --html evidence.html
    """
    def call(ledger):
        result = ledger.dispute_show(dispute_id)
        if html_file:
            from ledger.report import write_report  # noqa: PLC0415

            write_report(result, html_file)
            result["html"] = html_file
        return result

    def render(r: dict) -> None:
        fields([("dispute", f"{r['dispute']} on {r['lead']} ({r['status']})"),
                ("opened", f"{r['opened_at']} by {r['opened_by']} (event #{r['open_position']})"),
                ("reason", r["reason"]), ("owner then", r["owner_at_open"]),
                ("outcome", f"{r['outcome']} by {r['resolved_by']} at {r['resolved_at']}" if r["outcome"] else None),
                ("rationale", r["rationale"]), ("owner now", r["lead_now"]["owner"] or f"pool {r['lead_now']['pool']}")])
        ev_ = r["evidence"]
        click.echo("\nownership:")
        table(ev_["ownership"], ["owner", "from", "to", "start_position", "end_position", "ended_by"],
              ["OWNER", "FROM", "TO", "START #", "END #", "ENDED BY"], empty="  never owned")
        click.echo("\nattempts:")
        table(ev_["attempts"], ["position", "occurred_at", "type", "rep", "accepted", "reason", "owner_then"],
              ["#", "AT", "EVENT", "REP", "OK", "REASON", "OWNER THEN"])
        click.echo("\nfollow-ups:")
        table(ev_["follow_ups"], ["position", "occurred_at", "rep", "channel", "note"], empty="  none")
        click.echo("\nrule versions:")
        table(ev_["rules"], ["version", "since", "claim_limit", "idle_limit", "hold_limit", "cooldown", "used"])
        click.echo("\nduplicate matches:")
        table(ev_["duplicates"], ["lead", "field", "value", "status", "owner", "pool"], empty="  none")
        if r.get("html"):
            click.echo(f"\nHTML report written to {r['html']}")

    app.run(call, render, reader=True)


@dispute.command("resolve")
@click.argument("dispute_id", metavar="ID")
@click.option("--award", metavar="REP", help="ownership moves to REP")
@click.option("--uphold", is_flag=True, help="the owner keeps it")
@click.option("--rationale", required=True, metavar="TEXT")
@at_option
@pass_app
def resolve(app: App, dispute_id: str, award: str | None, uphold: bool, rationale: str, at: str | None) -> None:
    """Resolve a dispute (auditor or admin): --award REP or --uphold, with a rationale.

    \b
    Example:
      leadledger --as audrey dispute resolve L-1001-D1 --award bob --rationale "bob's visit log predates the claim"
    """
    app.run(lambda ledger: ledger.resolve_dispute(app.actor, dispute_id, award=award, uphold=uphold,
                                                  rationale=rationale, at=at),
            lambda r: click.echo(f"dispute {r['dispute']} {r['outcome']}; {r['lead']} is held by {r['owner']} "
                                 f"(event #{r['position']})"))


@dispute.command("list")
@click.option("--open", "open_only", is_flag=True, help="only open disputes")
@pass_app
def list_(app: App, open_only: bool) -> None:
    """Every dispute (or only open ones)."""
    app.run(lambda ledger: ledger.dispute_list(open_only),
            lambda r: table(r["disputes"], ["dispute", "lead", "status", "opened_by", "opened_at", "outcome",
                                            "owner_after"], empty="no disputes"), reader=True)


COMMANDS = [dispute]
