"""dispute open | show | resolve | list."""

from __future__ import annotations

import click

from commands import helptext
from commands.files import write_file
from commands.output import App, at_option, pass_app, writable_output
from commands.receipts import receipt_options, save_receipt
from commands.tables import fields, table
from ledger.i18n import N_, _, gettext


BY_REP = [N_("REP"), N_("FIRST ATTEMPT"), N_("FIRST HELD"), N_("HELD"), N_("REFUSED"), N_("FOLLOW-UPS"),
          N_("ON DUPLICATES"), N_("FIRST FOLLOW-UP")]
OWNERSHIP = [N_("OWNER"), N_("FROM"), N_("TO"), N_("START #"), N_("STARTED BY"), N_("END #"), N_("ENDED BY"),
             N_("CONVERTED")]
ATTEMPTS = [N_("#"), N_("AT"), N_("EVENT"), N_("REP"), N_("BY"), N_("RESULT"), N_("RULES"), N_("DETAIL")]
FOLLOW_UPS = [N_("POSITION"), N_("AT"), N_("LEAD"), N_("REP"), N_("CHANNEL"), N_("NOTE")]
RULES = [N_("V"), N_("FROM"), N_("UNTIL"), N_("CLAIM LIMIT"), N_("DAILY"), N_("IDLE"), N_("HOLD"), N_("COOLDOWN"),
         N_("DECIDED HERE")]
DUPLICATES = [N_("LEAD"), N_("FIELD"), N_("VALUE"), N_("ADDED"), N_("STATUS"), N_("OWNER"), N_("POOL"),
              N_("HELD BY")]
LIST = [N_("DISPUTE"), N_("LEAD"), N_("STATUS"), N_("OPENED BY"), N_("OPENED AT"), N_("OWNER THEN"), N_("OUTCOME"),
        N_("OWNER AFTER"), N_("RESOLVED BY"), N_("REASON")]


def headers(marked: list[str]) -> list[str]:
    return [gettext(h) for h in marked]


@helptext.group()
def dispute() -> None:
    """Open, examine and resolve ownership disputes (撞单)."""


@dispute.command("open")
@click.argument("lead_id", metavar="LEAD")
@helptext.option("--reason", required=True, metavar="TEXT")
@at_option
@pass_app
def open_(app: App, lead_id: str, reason: str, at: str | None) -> None:
    """Open a dispute on a lead.

    \b
    Example:
      leadledger --as bob dispute open L-1001 --reason "I visited this customer on Monday"
    """
    app.run(lambda ledger: ledger.open_dispute(app.actor, lead_id, reason, at=at),
            lambda r: click.echo(_("dispute {dispute} opened on {lead} (event #{position})", dispute=r["dispute"],
                                   lead=r["lead"], position=r["position"])))


@dispute.command("show")
@click.argument("dispute_id", metavar="ID")
@helptext.option("--html", "html_file", metavar="FILE", callback=writable_output,
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

            write_file(html_file, lambda temp: write_report(result, temp))
            result["html"] = html_file
        return result

    def render(r: dict) -> None:
        fields(_dispute_fields(r))
        e = r["evidence"]
        click.echo("\n" + _("by rep:"))
        table(e["by_rep"], ["rep", "first_attempt", "first_held", "times_held", "refused", "follow_ups",
                            "follow_ups_on_duplicates", "first_follow_up"], headers(BY_REP))
        click.echo("\n" + _("ownership:"))
        table([{**i, "how": i["started_by"] + (f" ({i['dispute']})" if i["dispute"] else ""),
                "deal": (_("{deal} at {at}", deal=i["deal"] or _("converted"), at=i["converted_at"])
                         if i.get("converted_at") else None)}
               for i in e["ownership"]],
              ["owner", "from", "to", "start_position", "how", "end_position", "ended_by", "deal"],
              headers(OWNERSHIP), empty="  " + _("never owned"))
        click.echo("\n" + _("claim and assignment attempts:"))
        table([{**a, "at": a["occurred_at"] + (_(" (backdated)") if a["backdated"] else ""),
                "result": _("accepted") if a["accepted"] else _("REFUSED {reason}", reason=a["reason"]),
                "detail": a["message"] or a["reason"]} for a in e["attempts"]],
              ["position", "at", "type", "rep", "actor", "result", "rules_version", "detail"], headers(ATTEMPTS))
        click.echo("\n" + _("follow-ups (this lead and its duplicates):"))
        table([{**f, "at": f["occurred_at"] + (_(" (backdated)") if f["backdated"] else ""), "note": _shown(f["note"])}
               for f in e["follow_ups"]],
              ["position", "at", "lead", "rep", "channel", "note"], headers(FOLLOW_UPS), empty="  " + _("none"))
        click.echo("\n" + _("rule versions of the pool:"))
        table(e["rules"], ["version", "since", "until", "claim_limit", "daily_claim_limit", "idle_limit",
                           "hold_limit", "cooldown", "used"], headers(RULES))
        click.echo("\n" + _("duplicate matches:"))
        table([{**d, "value": _shown(d["value"]),
                "holders": ", ".join(f"{i['owner']} {i['from']}..{i['to'] or _('now')}" for i in d["ownership"])}
               for d in e["duplicates"]],
              ["lead", "field", "value", "added_at", "status", "owner", "pool", "holders"], headers(DUPLICATES),
              empty="  " + _("none"))
        if e["backdated"]:
            click.echo("\n" + _("note: events recorded more than 5 minutes after their stated time (backdated): "
                                "{positions}", positions=", ".join(f"#{p}" for p in e["backdated"])))
        if r.get("html"):
            click.echo("\n" + _("HTML report written to {path}", path=r["html"]))

    app.run(call, render, reader=True)


@dispute.command("resolve")
@click.argument("dispute_id", metavar="ID")
@helptext.option("--award", metavar="REP", help="ownership moves to REP")
@helptext.option("--uphold", is_flag=True, help="the owner keeps it")
@helptext.option("--rationale", required=True, metavar="TEXT")
@at_option
@receipt_options
@pass_app
def resolve(app: App, dispute_id: str, award: str | None, uphold: bool, rationale: str, at: str | None,
            receipt_file: str | None, signing_key: str | None) -> None:
    """Resolve a dispute (auditor or admin): --award REP or --uphold, with a rationale.

    \b
    Example:
      leadledger --as audrey dispute resolve L-1001-D1 --award bob --rationale "bob's visit log predates the claim"
    """
    result = app.run(lambda ledger: ledger.resolve_dispute(app.actor, dispute_id, award=award, uphold=uphold,
                                                           rationale=rationale, at=at),
                     lambda r: click.echo(_resolved_line(r)))
    save_receipt(app, result, receipt_file, signing_key)


@dispute.command("list")
@helptext.option("--open", "open_only", is_flag=True, help="only open disputes")
@pass_app
def list_(app: App, open_only: bool) -> None:
    """Every dispute (or only open ones)."""
    app.run(lambda ledger: ledger.dispute_list(open_only),
            lambda r: table(r["disputes"], ["dispute", "lead", "status", "opened_by", "opened_at", "owner_at_open",
                                            "outcome", "owner_after", "resolved_by", "reason"],
                            headers(LIST), empty=_("no disputes")), reader=True)


def _dispute_fields(r: dict) -> list[tuple[str, object]]:
    now = r["lead_now"]
    facts = {"owner": now["owner"], "pool": now["pool"]}
    if not now["owner"]:
        lead_now = _("unowned, in pool {pool}", **facts)
    elif now["status"] == "converted":
        lead_now = _("converted, held by {owner} (pool {pool})", **facts)
    else:
        lead_now = _("held by {owner} (pool {pool})", **facts)
    outcome = _("{outcome} by {actor} at {at} (event #{position})", outcome=gettext(r["outcome"]),
                actor=r["resolved_by"], at=r["resolved_at"], position=r["resolved_position"]) if r["outcome"] else None
    return [(_("dispute"), _("{dispute} on {lead} ({status})", dispute=r["dispute"], lead=r["lead"],
                             status=gettext(r["status"]))),
            (_("opened"), _("{at} by {actor} (event #{position})", at=r["opened_at"], actor=r["opened_by"],
                            position=r["open_position"])),
            (_("reason"), r["reason"]), (_("owner then"), r["owner_at_open"] or _("none (pooled)")),
            (_("outcome"), outcome), (_("awarded to"), r["awarded_to"]), (_("rationale"), r["rationale"]),
            (_("lead now"), lead_now),
            (_("customer"), ", ".join(f"{gettext(k)} {_shown(v)}" for k, v in now["attributes"].items())),
            (_("personal data"), _("erased") if now.get("erased") else None)]


def _shown(value: object) -> object:
    """A value as a person reads it: one an erasure took (null in JSON) is said to be so."""
    return _("(erased)") if value is None else value


def _resolved_line(r: dict) -> str:
    facts = {"dispute": r["dispute"], "outcome": gettext(r["outcome"]), "position": r["position"], "lead": r["lead"],
             "owner": r["owner"], "previous": r["previous_owner"], "reassigned_at": r["reassignment_position"]}
    if not r["owner"]:
        return _("dispute {dispute} {outcome} (event #{position}); {lead} is unowned", **facts)
    if not r["reassignment_position"]:
        return _("dispute {dispute} {outcome} (event #{position}); {lead} is held by {owner}", **facts)
    if r["previous_owner"]:
        return _("dispute {dispute} {outcome} (event #{position}); {lead} is held by {owner}, moved from "
                 "{previous} by event #{reassigned_at}", **facts)
    return _("dispute {dispute} {outcome} (event #{position}); {lead} is held by {owner}, moved from the pool "
             "by event #{reassigned_at}", **facts)


COMMANDS = [dispute]
