"""claim, release, assign, reassign, follow-up, convert, move, sweep."""

from __future__ import annotations

import click

from commands import helptext
from commands.output import App, at_option, ownership_line, pass_app
from commands.receipts import receipt_options, save_receipt
from commands.tables import table
from ledger.i18n import N_, _, gettext


@helptext.command()
@click.argument("lead_id", metavar="LEAD")
@at_option
@receipt_options
@pass_app
def claim(app: App, lead_id: str, at: str | None, receipt_file: str | None,
          signing_key: str | None) -> None:
    """Claim a pooled lead.

    \b
    Example:
      leadledger --as alice claim L-1001
    """
    result = app.run(lambda ledger: ledger.claim(app.actor, lead_id, at=at), ownership_line)
    save_receipt(app, result, receipt_file, signing_key)


@helptext.command()
@click.argument("lead_id", metavar="LEAD")
@helptext.option("--reason", metavar="TEXT")
@at_option
@pass_app
def release(app: App, lead_id: str, reason: str | None, at: str | None) -> None:
    """Release your lead back to its pool.

    \b
    Example:
      leadledger --as alice release L-1001 --reason "wrong region"
    """
    app.run(lambda ledger: ledger.release(app.actor, lead_id, reason, at=at), ownership_line)


@helptext.command()
@click.argument("lead_id", metavar="LEAD")
@helptext.option("--to", "to", required=True, metavar="REP")
@helptext.option("--reason", metavar="TEXT")
@at_option
@receipt_options
@pass_app
def assign(app: App, lead_id: str, to: str, reason: str | None, at: str | None, receipt_file: str | None,
          signing_key: str | None) -> None:
    """Assign a pooled lead to a rep (manager).

    \b
    Example:
      leadledger --as mgr assign L-1001 --to alice
    """
    result = app.run(lambda ledger: ledger.assign(app.actor, lead_id, to, reason, at=at), ownership_line)
    save_receipt(app, result, receipt_file, signing_key)


@helptext.command()
@click.argument("lead_id", metavar="LEAD")
@helptext.option("--to", "to", required=True, metavar="REP")
@helptext.option("--reason", required=True, metavar="TEXT")
@at_option
@receipt_options
@pass_app
def reassign(app: App, lead_id: str, to: str, reason: str, at: str | None, receipt_file: str | None,
             signing_key: str | None) -> None:
    """Move a held lead to another rep (manager).

    \b
    Example:
      leadledger --as mgr reassign L-1001 --to bob --reason "alice on leave"
    """
    result = app.run(lambda ledger: ledger.reassign(app.actor, lead_id, to, reason, at=at), ownership_line)
    save_receipt(app, result, receipt_file, signing_key)


@helptext.command("follow-up")
@click.argument("lead_id", metavar="LEAD")
@helptext.option("--note", required=True, metavar="TEXT")
@helptext.option("--channel", default="other", show_default=True,
              type=click.Choice(["call", "visit", "email", "message", "meeting", "other"]))
@at_option
@pass_app
def follow_up(app: App, lead_id: str, note: str, channel: str, at: str | None) -> None:
    """Log a follow-up on your lead (resets its idle deadline).

    \b
    Example:
      leadledger --as alice follow-up L-1001 --note "sent quote" --channel email
    """
    app.run(lambda ledger: ledger.follow_up(app.actor, lead_id, note, channel, at=at), ownership_line)


@helptext.command()
@click.argument("lead_id", metavar="LEAD")
@helptext.option("--deal", metavar="REF", help="the deal's reference, for commission")
@at_option
@pass_app
def convert(app: App, lead_id: str, deal: str | None, at: str | None) -> None:
    """Mark your lead converted (won); it is never recycled.

    \b
    Example:
      leadledger --as alice convert L-1001 --deal D-2026-017
    """
    app.run(lambda ledger: ledger.convert(app.actor, lead_id, deal, at=at), ownership_line)


@helptext.command()
@click.argument("lead_id", metavar="LEAD")
@helptext.option("--to-pool", required=True, metavar="P")
@helptext.option("--reason", metavar="TEXT")
@at_option
@pass_app
def move(app: App, lead_id: str, to_pool: str, reason: str | None, at: str | None) -> None:
    """Move an unowned lead to another pool (manager).

    \b
    Example:
      leadledger --as mgr move L-1001 --to-pool west
    """
    app.run(lambda ledger: ledger.move(app.actor, lead_id, to_pool, reason, at=at), ownership_line)


WARNED = [N_("WARNED"), N_("OWNER"), N_("RECYCLE AT"), N_("RULE")]
RECYCLED = [N_("RECYCLED"), N_("FROM"), N_("RULE"), N_("DEADLINE")]


@helptext.command()
@helptext.option("--now", metavar="TIME", help="the sweep's time (ISO 8601; no offset means UTC); default now")
@helptext.option("--dry-run", is_flag=True, help="show what would happen; write nothing")
@pass_app
def sweep(app: App, now: str | None, dry_run: bool) -> None:
    """Issue due recycle warnings and recycle overdue leads (admin or manager, e.g. from cron).

    \b
    Example:
      leadledger --as root sweep --dry-run
    """
    def render(r: dict) -> None:
        counts = {"now": r["now"], "warned": len(r["warned"]), "recycled": len(r["recycled"])}
        if r["dry_run"]:
            click.echo(_("sweep at {now}: {warned} warnings, {recycled} leads would be recycled", **counts))
        else:
            click.echo(_("sweep at {now}: {warned} warnings, {recycled} leads recycled", **counts))
        if r["warned"]:
            table(r["warned"], ["lead", "owner", "recycle_at", "rule"], [gettext(h) for h in WARNED])
        if r["recycled"]:
            table(r["recycled"], ["lead", "from", "rule", "deadline"], [gettext(h) for h in RECYCLED])

    app.run(lambda ledger: ledger.sweep(app.actor, now, dry_run), render)


COMMANDS = [claim, release, assign, reassign, follow_up, convert, move, sweep]
