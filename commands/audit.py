"""owner, history, holdings, explain."""

from __future__ import annotations

import click

from commands import helptext
from commands.files import write_file
from commands.output import App, label, pass_app, writable_output
from commands.tables import fields, table
from ledger import refusals
from ledger.i18n import N_, _, gettext, ngettext


@helptext.command()
@click.argument("lead_id", metavar="LEAD")
@helptext.option("--at", metavar="TIME", help="as of this time (ISO 8601; no offset means UTC); an event at TIME counts as done")
@helptext.option("--upto", metavar="POSITION", help="as the ledger said when its log ended at POSITION")
@pass_app
def owner(app: App, lead_id: str, at: str | None, upto: str | None = None) -> None:
    """Who owned a lead at a time (default now), since when, by which event.

    \b
    Example:
      leadledger owner L-1001 --at 2026-03-02T09:00:00Z
    """
    def render(r: dict) -> None:
        facts = {k: r.get(k) for k in ("lead", "at", "owner", "pool", "since", "event", "position")}
        if r["owner"]:
            held = _("converted, held") if r["status"] == "converted" else _("held")
            click.echo(_("{lead} at {at}: {held} by {owner} (pool {pool}) since {since} ({event}, event #{position})",
                         held=held, **facts))
        elif r["pool"]:
            click.echo(_("{lead} at {at}: unowned, in pool {pool} since {since} ({event}, event #{position})",
                         **facts))
        else:
            click.echo(_("{lead} at {at}: did not exist yet", **facts))

    app.run(lambda ledger: ledger.owner(lead_id, at, upto), render, reader=True)


@helptext.command()
@click.argument("lead_id", metavar="LEAD")
@pass_app
def history(app: App, lead_id: str) -> None:
    """The full audit trail of one lead: events, ownership periods, refused attempts.

    \b
    Example:
      leadledger history L-1001
    """
    def render(r: dict) -> None:
        click.echo(ngettext("history of {lead} ({n} event)", "history of {lead} ({n} events)", len(r["events"]),
                            lead=r["lead"]))
        rows = []
        for e in r["events"]:
            rows.append({**e, "when": e["occurred_at"] + (_(" (backdated)") if e["backdated"] else ""),
                         "what": _describe(e),
                         "who": e["actor"] + (_(" [rule]") if e["actor_kind"] == "rule" else "")})
        table(rows, ["position", "when", "type", "who", "what"], headers(HISTORY))
        click.echo("\n" + _("ownership:"))
        table(r["ownership"], ["owner", "from", "to", "start_position", "end_position", "ended_by"],
              headers(PERIODS), empty="  " + _("never owned"))
        if r["refused"]:
            click.echo("\n" + _("refused attempts:"))
            table(r["refused"], ["position", "occurred_at", "rep", "reason", "owner", "owner_since_position"],
                  headers(REFUSED))

    app.run(lambda ledger: ledger.history(lead_id), render, reader=True)


HISTORY = [N_("#"), N_("OCCURRED"), N_("EVENT"), N_("ACTOR"), N_("DETAIL")]
PERIODS = [N_("OWNER"), N_("FROM"), N_("TO"), N_("START #"), N_("END #"), N_("ENDED BY")]
REFUSED = [N_("#"), N_("AT"), N_("REP"), N_("REASON"), N_("OWNER THEN"), N_("OWNER SINCE #")]
HOLDINGS = [N_("LEAD"), N_("POOL"), N_("STATUS"), N_("SINCE"), N_("LAST FOLLOW-UP"), N_("RECYCLE AT"), N_("SET BY")]
DEADLINES = [N_("RULE"), N_("LIMIT"), N_("AT"), N_("RULES"), N_("GOVERNS"), N_("OVERDUE")]
COOLDOWNS = [N_("REP"), N_("LEFT AT"), N_("COOLDOWN"), N_("UNTIL"), N_("ACTIVE")]
DISPUTES = [N_("DISPUTE"), N_("STATUS"), N_("OPENED BY"), N_("OPENED AT"), N_("OUTCOME"), N_("AWARDED TO")]
REPORT_REPS = [N_("REP"), N_("HELD AT START"), N_("AT END"), N_("CLAIMS"), N_("REFUSED"), N_("ASSIGNED"),
               N_("REASSIGNED IN"), N_("OUT"), N_("RELEASED"), N_("RECYCLED"), N_("CONVERTED"), N_("FOLLOW-UPS"),
               N_("BACKDATED")]
CHANNELS = [N_("call"), N_("visit"), N_("email"), N_("message"), N_("meeting"), N_("other")]
REPORT_POOLS = [N_("POOL"), N_("POOLED AT START"), N_("AT END"), N_("ADDED"), N_("CLAIMED"), N_("RETURNED")]


def headers(marked: list[str]) -> list[str]:
    return [gettext(h) for h in marked]


def _describe(e: dict) -> str:  # noqa: PLR0911 - one sentence per event type
    t, e = e["type"], {"reason": None, **e}
    if t == "LeadAdded":
        if e.get("duplicates"):
            return _("into pool {pool}; duplicates {leads}", pool=e["pool"],
                     leads=", ".join(m["lead"] for m in e["duplicates"]))
        return _("into pool {pool}", pool=e["pool"])
    if t in ("LeadClaimed", "LeadAssigned"):
        if e.get("dispute"):
            return _("{rep} (rules v{version}); dispute {dispute}", rep=e["rep"], version=e["rules_version"],
                     dispute=e["dispute"])
        return _("{rep} (rules v{version})", rep=e["rep"], version=e["rules_version"])
    if t == "LeadReassigned":
        return _("{from_rep} -> {rep}: {reason} (rules v{version})", from_rep=e["from_rep"], rep=e["rep"],
                 reason=refusals.reword(e["reason"]), version=e["rules_version"])
    if t in ("ClaimRefused", "AssignmentRefused"):
        if e.get("owner") and e.get("owner_since_position"):
            return _("{rep} refused: {reason}, owner {owner} since #{position}", rep=e["rep"], reason=e["reason"],
                     owner=e["owner"], position=e["owner_since_position"])
        if e.get("owner"):
            return _("{rep} refused: {reason}, owner {owner}", rep=e["rep"], reason=e["reason"], owner=e["owner"])
        return _("{rep} refused: {reason}", rep=e["rep"], reason=e["reason"])
    if t in ("LeadReleased", "LeadReturned"):
        if e.get("reason"):
            return _("{rep} -> pool {pool}: {reason}", rep=e["rep"], pool=e["pool"], reason=refusals.reword(e["reason"]))
        return _("{rep} -> pool {pool}", rep=e["rep"], pool=e["pool"])
    if t == "LeadRecycled":
        return _("{rep} -> pool: {rule} passed {deadline} (rules v{version})", rep=e["rep"], rule=e["rule"],
                 deadline=e["deadline"], version=e["rules_version"])
    if t == "RecycleWarned":
        return _("{rep}: {rule} recycle at {at}", rep=e["rep"], rule=e["rule"], at=e["recycle_at"])
    if t == "FollowUpLogged":  # a note is null only once its lead's personal data is erased
        return _("{rep} by {channel}: {note}", rep=e["rep"], channel=gettext(e["channel"]),
                 note=_("(erased)") if e.get("note") is None else e["note"])
    if t == "PersonalDataErased":
        return _("personal data erased: {reason}", reason=e["reason"])
    if t == "LeadConverted":
        if e.get("deal"):
            return _("converted by {rep}, deal {deal}", rep=e["rep"], deal=e["deal"])
        return _("converted by {rep}", rep=e["rep"])
    if t == "LeadMoved":
        return f"{e['from_pool']} -> {e['pool']}"
    if t == "DisputeOpened":
        return f"{e['dispute']}: {e['reason']}"
    if t == "DisputeResolved":
        return _("{dispute}: {outcome} ({owner}): {rationale}", dispute=e["dispute"],
                 outcome=gettext(e["outcome"]), owner=e["owner"], rationale=e["rationale"])
    return ""


@helptext.command()
@click.argument("rep")
@helptext.option("--at", metavar="TIME", help="as of this business time (ISO 8601; no offset means UTC)")
@helptext.option("--upto", metavar="POSITION", help="as the ledger said when its log ended at POSITION")
@pass_app
def holdings(app: App, rep: str, at: str | None = None, upto: str | None = None) -> None:
    """What a rep holds now (or as of a moment), with each recycle deadline.

    \b
    Example:
      leadledger holdings alice
      leadledger holdings alice --at 2026-03-31T23:59:59Z
    """
    def render(r: dict) -> None:
        rows = [{**x, "status": gettext(x["status"]),
                 "deadline": (x["recycle_at"] or "-") + (_(" OVERDUE") if x["overdue"] else ""),
                 "rule": _("{rule} (rules v{version})", rule=x["recycle_rule"], version=x["rules_version"])
                 if x["recycle_rule"] else None}
                for x in r["leads"]]
        if r.get("active", True):
            click.echo(_("holdings of {rep} at {now}", rep=r["rep"], now=r["now"]))
        else:
            click.echo(_("holdings of {rep} at {now} (deactivated)", rep=r["rep"], now=r["now"]))
        table(rows, ["lead", "pool", "status", "since", "last_follow_up", "deadline", "rule"], headers(HOLDINGS),
              empty=_("{rep} holds no leads", rep=r["rep"]))
        if r["count_by_pool"]:
            click.echo(_("held: {counts}", counts=", ".join(f"{p} {n}" for p, n in r["count_by_pool"].items())))

    app.run(lambda ledger: ledger.holdings(rep, at, upto), render, reader=True)


@helptext.command()
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
        actor = b["actor"] + (_(" [rule]") if b["actor_kind"] == "rule" else "")
        because = {"position": b["position"], "event": b["type"], "at": b["occurred_at"], "actor": actor}
        click.echo("\n" + (_("because of event #{position}: {event} at {at} by {actor} (backdated)", **because)
                           if b["backdated"] else _("because of event #{position}: {event} at {at} by {actor}",
                                                    **because)))
        if r["decided_under"]:
            d = r["decided_under"]
            click.echo(_("decided under rules v{version} (in force from {since})", version=d["version"],
                         since=d["since"]))
        click.echo("\n" + _("facts checked:"))
        fields((label(k), v) for k, v in r["facts"].items())
        rules = r["rules"]
        click.echo("\n" + _("rules in force now: v{version} since {since}: {rules}", version=rules["version"],
                            since=rules["since"], rules=", ".join(f"{k} {v}" for k, v in rules.items()
                                                                  if k not in ("version", "since"))))
        if r["deadlines"]:
            click.echo("\n" + _("deadlines:"))
            table(r["deadlines"], ["rule", "limit", "at", "rules_version", "governs", "overdue"], headers(DEADLINES))
        if r["cooldowns"]:
            click.echo("\n" + _("cooldowns:"))
            table(r["cooldowns"], ["rep", "left_at", "cooldown", "until", "active"], headers(COOLDOWNS))
        if r["disputes"]:
            click.echo("\n" + _("disputes:"))
            table([{**d, "status": gettext(d["status"]), "outcome": d["outcome"] and gettext(d["outcome"])}
                   for d in r["disputes"]],
                  ["dispute", "status", "opened_by", "opened_at", "outcome", "awarded_to"], headers(DISPUTES))

    app.run(lambda ledger: ledger.explain(lead_id), render, reader=True)


@helptext.command()
@helptext.option("--from", "start", metavar="TIME", required=True, help="start of the period (ISO 8601, UTC if no offset)")
@helptext.option("--to", "end", metavar="TIME", required=True, help="end of the period, not included")
@helptext.option("--pool", metavar="POOL", help="only this pool's leads")
@helptext.option("--rep", metavar="REP", help="only this rep")
@helptext.option("--html", "html", metavar="FILE", callback=writable_output,
                 help="also write a self-contained HTML page with charts")
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
            from ledger.period_html import write_page  # noqa: PLC0415 - the other queries need no page

            write_file(html, lambda temp: write_page(result, temp))
        return result

    def render(r: dict) -> None:
        click.echo(_("period {start} to {end}", start=r["from"], end=r["to"]))
        table([{**x, "recycled": sum(x["recycled"].values()), "refused": sum(x["refused"].values())}
               for x in r["reps"]],
              ["rep", "held_at_start", "held_at_end", "claims", "refused", "assigned_in", "reassigned_in",
               "reassigned_out", "released", "recycled", "converted", "follow_ups", "backdated"],
              headers(REPORT_REPS), empty=_("no rep did anything"))
        click.echo("")
        table(r["pools"], ["pool", "pooled_at_start", "pooled_at_end", "added", "claimed", "returned"],
              headers(REPORT_POOLS), empty=_("no pools"))

    app.run(call, render, reader=True)


COMMANDS = [owner, history, holdings, explain, report]
