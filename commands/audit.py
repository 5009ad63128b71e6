"""owner, history, holdings, explain."""

from __future__ import annotations

import click

from commands.output import App, fields, pass_app, table
from ledger.period_html import write_page


@click.command()
@click.argument("lead_id", metavar="LEAD")
@click.option("--at", metavar="TIME", help="as of this time (ISO 8601; no offset means UTC); an event at TIME counts as done")
@click.option("--upto", metavar="POSITION", help="as the ledger said when its log ended at POSITION")
@pass_app
def owner(app: App, lead_id: str, at: str | None, upto: str | None = None) -> None:
    """Who owned a lead at a time (default now), since when, by which event.

    \b
    Example:
      leadledger owner L-1001 --at 2026-03-02T09:00:00Z
    """
    def render(r: dict) -> None:
        if r["owner"]:
            held = "converted, held" if r["status"] == "converted" else "held"
            click.echo(f"{r['lead']} at {r['at']}: {held} by {r['owner']} (pool {r['pool']}) since {r['since']} "
                       f"({r['event']}, event #{r['position']})")
        elif r["pool"]:
            click.echo(f"{r['lead']} at {r['at']}: unowned, in pool {r['pool']} since {r['since']} "
                       f"({r['event']}, event #{r['position']})")
        else:
            click.echo(f"{r['lead']} at {r['at']}: did not exist yet")

    app.run(lambda ledger: ledger.owner(lead_id, at, upto), render, reader=True)


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
        return f"{e['from_rep']} -> {e['rep']}: {e['reason']} (rules v{e['rules_version']})"
    if t in ("ClaimRefused", "AssignmentRefused"):
        since = f" since #{e['owner_since_position']}" if e.get("owner_since_position") else ""
        owner = f", owner {e['owner']}{since}" if e.get("owner") else ""
        return f"{e['rep']} refused: {e['reason']}{owner}"
    if t in ("LeadReleased", "LeadReturned"):
        return f"{e['rep']} -> pool {e['pool']}" + (f": {e['reason']}" if e.get("reason") else "")
    if t == "LeadRecycled":
        return f"{e['rep']} -> pool: {e['rule']} passed {e['deadline']} (rules v{e['rules_version']})"
    if t == "RecycleWarned":
        return f"{e['rep']}: {e['rule']} recycle at {e['recycle_at']}"
    if t == "FollowUpLogged":
        return f"{e['rep']} by {e['channel']}: {e['note']}"
    if t == "LeadConverted":
        return f"converted by {e['rep']}" + (f", deal {e['deal']}" if e.get("deal") else "")
    if t == "LeadMoved":
        return f"{e['from_pool']} -> {e['pool']}"
    if t == "DisputeOpened":
        return f"{e['dispute']}: {e['reason']}"
    if t == "DisputeResolved":
        return f"{e['dispute']}: {e['outcome']} ({e['owner']}): {e['rationale']}"
    return ""


@click.command()
@click.argument("rep")
@click.option("--at", metavar="TIME", help="as of this business time (ISO 8601; no offset means UTC)")
@click.option("--upto", metavar="POSITION", help="as the ledger said when its log ended at POSITION")
@pass_app
def holdings(app: App, rep: str, at: str | None = None, upto: str | None = None) -> None:
    """What a rep holds now (or as of a moment), with each recycle deadline.

    \b
    Example:
      leadledger holdings alice
      leadledger holdings alice --at 2026-03-31T23:59:59Z
    """
    def render(r: dict) -> None:
        rows = [{**x, "deadline": (x["recycle_at"] or "-") + (" OVERDUE" if x["overdue"] else ""),
                 "rule": f"{x['recycle_rule']} (rules v{x['rules_version']})" if x["recycle_rule"] else None}
                for x in r["leads"]]
        click.echo(f"holdings of {r['rep']} at {r['now']}" + ("" if r.get("active", True) else " (deactivated)"))
        table(rows, ["lead", "pool", "status", "since", "last_follow_up", "deadline", "rule"],
              ["LEAD", "POOL", "STATUS", "SINCE", "LAST FOLLOW-UP", "RECYCLE AT", "SET BY"],
              empty=f"{r['rep']} holds no leads")
        if r["count_by_pool"]:
            click.echo("held: " + ", ".join(f"{p} {n}" for p, n in r["count_by_pool"].items()))

    app.run(lambda ledger: ledger.holdings(rep, at, upto), render, reader=True)


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
        for line in r["reasons"]:
            click.echo(line)
        b = r["because"]
        click.echo(f"\nbecause of event #{b['position']}: {b['type']} at {b['occurred_at']} by {b['actor']}"
                   + (" [rule]" if b["actor_kind"] == "rule" else "") + (" (backdated)" if b["backdated"] else ""))
        if r["decided_under"]:
            d = r["decided_under"]
            click.echo(f"decided under rules v{d['version']} (in force from {d['since']})")
        click.echo("\nfacts checked:")
        fields((k.replace("_", " "), v) for k, v in r["facts"].items())
        rules = r["rules"]
        click.echo(f"\nrules in force now: v{rules['version']} since {rules['since']}: "
                   + ", ".join(f"{k} {v}" for k, v in rules.items() if k not in ("version", "since")))
        if r["deadlines"]:
            click.echo("\ndeadlines:")
            table(r["deadlines"], ["rule", "limit", "at", "rules_version", "governs", "overdue"],
                  ["RULE", "LIMIT", "AT", "RULES", "GOVERNS", "OVERDUE"])
        if r["cooldowns"]:
            click.echo("\ncooldowns:")
            table(r["cooldowns"], ["rep", "left_at", "cooldown", "until", "active"])
        if r["disputes"]:
            click.echo("\ndisputes:")
            table(r["disputes"], ["dispute", "status", "opened_by", "opened_at", "outcome", "awarded_to"])

    app.run(lambda ledger: ledger.explain(lead_id), render, reader=True)


@click.command()
@click.option("--from", "start", metavar="TIME", required=True, help="start of the period (ISO 8601, UTC if no offset)")
@click.option("--to", "end", metavar="TIME", required=True, help="end of the period, not included")
@click.option("--pool", metavar="POOL", help="only this pool's leads")
@click.option("--rep", metavar="REP", help="only this rep")
@click.option("--html", "html", metavar="FILE", help="also write a self-contained HTML page with charts")
@pass_app
def report(app: App, start: str, end: str, pool: str | None, rep: str | None, html: str | None) -> None:
    """What happened in a business-time period [FROM, TO): per rep and per pool.

    \b
    Example:
      leadledger report --from 2026-03-01 --to 2026-04-01 --html march.html
    """
    def call(ledger):
        result = ledger.report(start, end, pool, rep)
        if html:
            write_page(result, html)
        return result

    def render(r: dict) -> None:
        click.echo(f"period {r['from']} to {r['to']}")
        table([{**x, "recycled": sum(x["recycled"].values()), "refused": sum(x["refused"].values())}
               for x in r["reps"]],
              ["rep", "held_at_start", "held_at_end", "claims", "refused", "assigned_in", "reassigned_in",
               "reassigned_out", "released", "recycled", "converted", "follow_ups", "backdated"],
              ["REP", "HELD AT START", "AT END", "CLAIMS", "REFUSED", "ASSIGNED", "REASSIGNED IN", "OUT",
               "RELEASED", "RECYCLED", "CONVERTED", "FOLLOW-UPS", "BACKDATED"], empty="no rep did anything")
        click.echo("")
        table(r["pools"], ["pool", "pooled_at_start", "pooled_at_end", "added", "claimed", "returned"],
              ["POOL", "POOLED AT START", "AT END", "ADDED", "CLAIMED", "RETURNED"], empty="no pools")

    app.run(call, render, reader=True)


COMMANDS = [owner, history, holdings, explain, report]
