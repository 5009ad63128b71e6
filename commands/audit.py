"""owner, history, holdings, explain."""

from __future__ import annotations

import click

from commands.output import App, fields, pass_app, table


@click.command()
@click.argument("lead_id", metavar="LEAD")
@click.option("--at", metavar="TIME", help="as of this time (ISO 8601); an event at TIME counts as done")
@pass_app
def owner(app: App, lead_id: str, at: str | None) -> None:
    """Who owned a lead at a time (default now), since when, by which event.

    \b
    Example:
      leadledger owner L-1001 --at 2026-03-02T09:00:00Z
    """
    def render(r: dict) -> None:
        if r["owner"]:
            click.echo(f"{r['lead']} at {r['at']}: held by {r['owner']} since {r['since']} "
                       f"({r['event']}, event #{r['position']})")
        elif r["pool"]:
            click.echo(f"{r['lead']} at {r['at']}: unowned, in pool {r['pool']} since {r['since']} "
                       f"({r['event']}, event #{r['position']})")
        else:
            click.echo(f"{r['lead']} at {r['at']}: did not exist yet")

    app.run(lambda ledger: ledger.owner(lead_id, at), render, reader=True)


@click.command()
@click.argument("lead_id", metavar="LEAD")
@pass_app
def history(app: App, lead_id: str) -> None:
    """The full audit trail of one lead: events, ownership periods, refused attempts.

    \b
    Example:
      leadledger history L-1001
    """
    def render(r: dict) -> None:
        click.echo(f"history of {r['lead']} ({len(r['events'])} events)")
        rows = []
        for e in r["events"]:
            rows.append({**e, "when": e["occurred_at"] + (" (backdated)" if e["backdated"] else ""),
                         "what": _describe(e), "who": e["actor"] + (" [rule]" if e["actor_kind"] == "rule" else "")})
        table(rows, ["position", "when", "type", "who", "what"], ["#", "OCCURRED", "EVENT", "ACTOR", "DETAIL"])
        click.echo("\nownership:")
        table(r["ownership"], ["owner", "from", "to", "start_position", "end_position", "ended_by"],
              ["OWNER", "FROM", "TO", "START #", "END #", "ENDED BY"], empty="  never owned")
        if r["refused"]:
            click.echo("\nrefused attempts:")
            table(r["refused"], ["position", "occurred_at", "rep", "reason", "owner", "owner_since_position"],
                  ["#", "AT", "REP", "REASON", "OWNER THEN", "OWNER SINCE #"])

    app.run(lambda ledger: ledger.history(lead_id), render, reader=True)


def _describe(e: dict) -> str:
    t = e["type"]
    if t == "LeadAdded":
        dup = f"; duplicates {', '.join(m['lead'] for m in e['duplicates'])}" if e.get("duplicates") else ""
        return f"into pool {e['pool']}{dup}"
    if t in ("LeadClaimed", "LeadAssigned"):
        return f"{e['rep']} (rules v{e['rules_version']})" + (f"; dispute {e['dispute']}" if e.get("dispute") else "")
    if t == "LeadReassigned":
        extra = f"; dispute {e['dispute']}" if e.get("dispute") else ""
        return f"{e['from_rep']} -> {e['rep']}: {e['reason']}{extra}"
    if t in ("ClaimRefused", "AssignmentRefused"):
        return f"{e['rep']} refused: {e['reason']}"
    if t in ("LeadReleased", "LeadReturned"):
        return f"{e['rep']} -> pool {e['pool']}" + (f": {e['reason']}" if e.get("reason") else "")
    if t == "LeadRecycled":
        return f"{e['rep']} -> pool: {e['rule']} passed {e['deadline']} (rules v{e['rules_version']})"
    if t == "RecycleWarned":
        return f"{e['rep']}: {e['rule']} recycle at {e['recycle_at']}"
    if t == "FollowUpLogged":
        return f"{e['rep']} by {e['channel']}: {e['note']}"
    if t == "LeadConverted":
        return f"{e['rep']}" + (f", deal {e['deal']}" if e.get("deal") else "")
    if t == "LeadMoved":
        return f"{e['from_pool']} -> {e['pool']}"
    if t == "DisputeOpened":
        return f"{e['dispute']}: {e['reason']}"
    if t == "DisputeResolved":
        return f"{e['dispute']}: {e['outcome']} ({e['owner']}): {e['rationale']}"
    return ""


@click.command()
@click.argument("rep")
@pass_app
def holdings(app: App, rep: str) -> None:
    """What a rep holds now, with each recycle deadline.

    \b
    Example:
      leadledger holdings alice
    """
    def render(r: dict) -> None:
        rows = [{**x, "deadline": (x["recycle_at"] or "-") + (" OVERDUE" if x["overdue"] else "")} for x in r["leads"]]
        table(rows, ["lead", "pool", "status", "since", "last_follow_up", "deadline", "recycle_rule"],
              ["LEAD", "POOL", "STATUS", "SINCE", "LAST FOLLOW-UP", "RECYCLE AT", "RULE"],
              empty=f"{r['rep']} holds no leads")
        if r["count_by_pool"]:
            click.echo("held: " + ", ".join(f"{p} {n}" for p, n in r["count_by_pool"].items()))

    app.run(lambda ledger: ledger.holdings(rep), render, reader=True)


@click.command()
@click.argument("lead_id", metavar="LEAD")
@pass_app
def explain(app: App, lead_id: str) -> None:
    """Why a lead is where it is: the event, the rule version in force, the facts checked.

    \b
    Example:
      leadledger explain L-1001
    """
    def render(r: dict) -> None:
        click.echo(r["summary"])
        rules = r["rules"]
        click.echo(f"\nrules v{rules['version']} in force since {rules['since']}:")
        fields((k.replace("_", " "), v) for k, v in rules.items() if k not in ("version", "since"))
        if r["deadlines"]:
            click.echo("\ndeadlines:")
            table(r["deadlines"], ["rule", "limit", "at", "overdue", "governs"])
        if r["cooldowns"]:
            click.echo("\ncooldowns:")
            table(r["cooldowns"], ["rep", "left_at", "until", "active"])
        if r["disputes"]:
            click.echo("\ndisputes:")
            table(r["disputes"], ["dispute", "status", "opened_by", "outcome", "awarded_to"])

    app.run(lambda ledger: ledger.explain(lead_id), render, reader=True)


COMMANDS = [owner, history, holdings, explain]
