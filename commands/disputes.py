"""dispute open | show | resolve | list."""

from __future__ import annotations

import click

from commands.output import App, at_option, fields, pass_app, table
from commands.receipts import receipt_option, save_receipt


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
        now = r["lead_now"]
        fields([("dispute", f"{r['dispute']} on {r['lead']} ({r['status']})"),
                ("opened", f"{r['opened_at']} by {r['opened_by']} (event #{r['open_position']})"),
                ("reason", r["reason"]), ("owner then", r["owner_at_open"] or "none (pooled)"),
                ("outcome", f"{r['outcome']} by {r['resolved_by']} at {r['resolved_at']} "
                            f"(event #{r['resolved_position']})" if r["outcome"] else None),
                ("awarded to", r["awarded_to"]), ("rationale", r["rationale"]),
                ("lead now", (f"{'converted, ' if now['status'] == 'converted' else ''}held by {now['owner']} "
                              f"(pool {now['pool']})") if now["owner"] else f"unowned, in pool {now['pool']}"),
                ("customer", ", ".join(f"{k} {v}" for k, v in now["attributes"].items()))])
        e = r["evidence"]
        click.echo("\nby rep:")
        table(e["by_rep"], ["rep", "first_attempt", "first_held", "times_held", "refused", "follow_ups",
                            "follow_ups_on_duplicates", "first_follow_up"],
              ["REP", "FIRST ATTEMPT", "FIRST HELD", "HELD", "REFUSED", "FOLLOW-UPS", "ON DUPLICATES",
               "FIRST FOLLOW-UP"])
        click.echo("\nownership:")
        table([{**i, "how": i["started_by"] + (f" ({i['dispute']})" if i["dispute"] else ""),
                "deal": (f"{i['deal'] or 'converted'} at {i['converted_at']}" if i.get("converted_at") else None)}
               for i in e["ownership"]],
              ["owner", "from", "to", "start_position", "how", "end_position", "ended_by", "deal"],
              ["OWNER", "FROM", "TO", "START #", "STARTED BY", "END #", "ENDED BY", "CONVERTED"],
              empty="  never owned")
        click.echo("\nclaim and assignment attempts:")
        table([{**a, "at": a["occurred_at"] + (" (backdated)" if a["backdated"] else ""),
                "result": "accepted" if a["accepted"] else f"REFUSED {a['reason']}",
                "detail": a["message"] or a["reason"]} for a in e["attempts"]],
              ["position", "at", "type", "rep", "actor", "result", "rules_version", "detail"],
              ["#", "AT", "EVENT", "REP", "BY", "RESULT", "RULES", "DETAIL"])
        click.echo("\nfollow-ups (this lead and its duplicates):")
        table([{**f, "at": f["occurred_at"] + (" (backdated)" if f["backdated"] else "")} for f in e["follow_ups"]],
              ["position", "at", "lead", "rep", "channel", "note"], empty="  none")
        click.echo("\nrule versions of the pool:")
        table(e["rules"], ["version", "since", "until", "claim_limit", "daily_claim_limit", "idle_limit",
                           "hold_limit", "cooldown", "used"],
              ["V", "FROM", "UNTIL", "CLAIM LIMIT", "DAILY", "IDLE", "HOLD", "COOLDOWN", "DECIDED HERE"])
        click.echo("\nduplicate matches:")
        table([{**d, "holders": ", ".join(f"{i['owner']} {i['from']}..{i['to'] or 'now'}" for i in d["ownership"])}
               for d in e["duplicates"]],
              ["lead", "field", "value", "added_at", "status", "owner", "pool", "holders"],
              ["LEAD", "FIELD", "VALUE", "ADDED", "STATUS", "OWNER", "POOL", "HELD BY"], empty="  none")
        if e["backdated"]:
            click.echo("\nnote: events recorded more than 5 minutes after their stated time (backdated): "
                       + ", ".join(f"#{p}" for p in e["backdated"]))
        if r.get("html"):
            click.echo(f"\nHTML report written to {r['html']}")

    app.run(call, render, reader=True)


@dispute.command("resolve")
@click.argument("dispute_id", metavar="ID")
@click.option("--award", metavar="REP", help="ownership moves to REP")
@click.option("--uphold", is_flag=True, help="the owner keeps it")
@click.option("--rationale", required=True, metavar="TEXT")
@at_option
@receipt_option
@pass_app
def resolve(app: App, dispute_id: str, award: str | None, uphold: bool, rationale: str, at: str | None,
            receipt_file: str | None) -> None:
    """Resolve a dispute (auditor or admin): --award REP or --uphold, with a rationale.

    \b
    Example:
      leadledger --as audrey dispute resolve L-1001-D1 --award bob --rationale "bob's visit log predates the claim"
    """
    result = app.run(lambda ledger: ledger.resolve_dispute(app.actor, dispute_id, award=award, uphold=uphold,
                                                           rationale=rationale, at=at),
            lambda r: click.echo(f"dispute {r['dispute']} {r['outcome']} (event #{r['position']}); {r['lead']} is "
                                 + (f"held by {r['owner']}" if r["owner"] else "unowned")
                                 + (f", moved from {r['previous_owner'] or 'the pool'} by event "
                                    f"#{r['reassignment_position']}" if r["reassignment_position"] else "")))
    save_receipt(app, result, receipt_file)


@dispute.command("list")
@click.option("--open", "open_only", is_flag=True, help="only open disputes")
@pass_app
def list_(app: App, open_only: bool) -> None:
    """Every dispute (or only open ones)."""
    app.run(lambda ledger: ledger.dispute_list(open_only),
            lambda r: table(r["disputes"], ["dispute", "lead", "status", "opened_by", "opened_at", "owner_at_open",
                                            "outcome", "owner_after", "resolved_by", "reason"],
                            ["DISPUTE", "LEAD", "STATUS", "OPENED BY", "OPENED AT", "OWNER THEN", "OUTCOME",
                             "OWNER AFTER", "RESOLVED BY", "REASON"], empty="no disputes"), reader=True)


COMMANDS = [dispute]
