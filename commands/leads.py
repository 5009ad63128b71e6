"""lead add | import | show."""

from __future__ import annotations

import sys
from typing import NoReturn

import click

from commands import helptext
from commands.files import write_file
from commands.output import App, at_option, check_writable, emit_json, ownership_line, pass_app
from commands.tables import fields
from ledger.errors import LedgerError
from ledger.i18n import N_, _, gettext, ngettext

ATTRIBUTE_OPTIONS = ("company", "contact", "phone", "email", "region", "industry", "source")
PERSONAL = ("contact", "phone", "email")  # the attributes a `lead erase` takes (null in JSON)
# how the attributes are labelled when shown (the options keep their names)
ATTRIBUTE_LABELS = [N_("company"), N_("contact"), N_("phone"), N_("email"), N_("region"), N_("industry"),
                    N_("source")]


@helptext.group()
def lead() -> None:
    """Add, import and show leads."""


@lead.command("add")
@click.argument("lead_id", metavar="ID")
@helptext.option("--pool", "pool_id", required=True, metavar="P")
@helptext.option("--company")
@helptext.option("--contact")
@helptext.option("--phone")
@helptext.option("--email")
@helptext.option("--region")
@helptext.option("--industry")
@helptext.option("--source")
@helptext.option("--allow-duplicate", is_flag=True, help="add even if phone/email/company match a lead")
@helptext.option("--claim", "claim_it", is_flag=True, help="claim it at once")
@at_option
@pass_app
def add(app: App, lead_id: str, pool_id: str, allow_duplicate: bool, claim_it: bool, at: str | None,
        **attributes: str | None) -> None:
    """Add a lead to a pool (checked for duplicates).

    \b
    Example:
      leadledger --as alice lead add L-1001 --pool east --company "Acme 上海" --phone "+86 138 0013 8000"
    """
    def render(r: dict) -> None:
        click.echo(_("{lead} added to pool {pool} (event #{position})", lead=r["lead"], pool=r["pool"],
                     position=r["position"]))
        for m in r["duplicates"]:
            click.echo(_("  note: same {field} as {lead} ({value}), recorded on its history",
                         field=gettext(m["field"]), lead=m["lead"], value=m["value"]))
        if "claim" in r:
            ownership_line(r["claim"])

    app.run(lambda ledger: ledger.add_lead(app.actor, lead_id, pool_id, allow_duplicate=allow_duplicate,
                                           claim=claim_it, at=at, **attributes), render)


@lead.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
@helptext.option("--pool", "pool_id", required=True, metavar="P")
@helptext.option("--encoding", metavar="E", help="the text encoding (default: UTF-8, else GB18030)")
@helptext.option("--tz", metavar="ZONE", default="UTC", show_default=True,
              help="IANA zone of the file's times written without an offset")
@helptext.option("--map", "mappings", multiple=True, metavar="COLUMN=FIELD", help="the field a column holds (repeatable)")
@helptext.option("--dry-run", is_flag=True, help="make every check, write nothing; the same summary")
@helptext.option("--rejects", metavar="FILE", type=click.Path(dir_okay=False),
              help="write the rejected rows here as CSV (UTF-8 with BOM), to fix and import again")
@helptext.option("--allow-duplicate", is_flag=True, help="import rows even if they match existing leads")
@at_option
@pass_app
def import_(app: App, file: str, pool_id: str, encoding: str | None, tz: str, mappings: tuple[str, ...],
            dry_run: bool, rejects: str | None, allow_duplicate: bool, at: str | None) -> None:
    """Import leads from CSV, Excel .xlsx or JSON Lines; a re-run imports nothing twice.

    CSV may be UTF-8 (with or without BOM) or GB18030/GBK, separated by commas, semicolons
    or tabs. A workbook is known by its content: its first sheet, header row first.
    Columns: id, company, contact, phone, email, region, industry, source, owner,
    owner_since, last_follow_up, or the usual Chinese names (编号, 客户名称, 联系人, 手机, ...);
    other columns are ignored and listed. Times without an offset are in --tz.
    A row with an owner is a lead he holds already: it is assigned to him (at owner_since)
    and his last follow-up recorded, so recycle deadlines are right from the first day.
    Ctrl-C stops it and says how many leads are in (whole batches); a re-run finishes the job.

    \b
    Example:
      leadledger --as mgr lead import leads.csv --pool east
      leadledger --as mgr lead import 客户.xlsx --pool east --tz Asia/Shanghai --map 客户级别=source --rejects bad.csv
    """
    from ledger.importing import read_rows  # noqa: PLC0415 - only `lead import` reads files
    from ledger.spreadsheets import write_rejects  # noqa: PLC0415
    from ledger.importer import ImportInterrupted, new_report  # noqa: PLC0415

    def call(ledger):
        try:
            source = read_rows(file, encoding=encoding, tz=tz, mapping=mappings)
            if rejects:
                check_writable(rejects, [*app.kept_files(), (file, "input")])
            report = run_import(ledger, source)
        except ImportInterrupted as stop:
            interrupted(stop.report)
        except KeyboardInterrupt:  # before the first row: nothing was written
            interrupted(new_report(dry_run))
        if rejects:
            try:
                write_file(rejects, lambda temp: write_rejects(temp, *source.rejects(report["rejected"])))
                report["rejects_file"] = rejects
            except LedgerError as e:  # the import stands: its summary is still owed
                click.echo(_("warning: the import is recorded, but its rejects file was not written: {reason}",
                             reason=e.message), err=True)
        return report

    def run_import(ledger, source) -> dict:
        options = {"allow_duplicate": allow_duplicate, "at": at, "dry_run": dry_run}
        total = source.size_hint()
        if total < 5000:
            return ledger.import_leads(app.actor, pool_id, source, **options)
        with click.progressbar(length=total, label=_("checking") if dry_run else _("importing"),
                               file=sys.stderr) as bar:
            return ledger.import_leads(app.actor, pool_id, source, progress=bar.update, **options)

    def interrupted(report: dict) -> NoReturn:
        """Ctrl-C: say what was committed (whole batches), on stderr and, with --json, as the
        summary on stdout; exit 130. The rejects file is not written: a re-run writes it."""
        report["interrupted"] = True
        say_interrupted(report)
        if app.json:
            emit_json(report)
        raise SystemExit(130)

    app.run(call, render_import)


def say_interrupted(report: dict) -> None:
    """On stderr: what an interrupted import committed, and how to finish it."""
    click.echo("\n" + _("interrupted: {imported} leads were imported before it (whole batches; {assigned} "
                        "of them held); nothing after them was written. Run the same import again to "
                        "finish: the leads already in are skipped.",
                        imported=report["imported"], assigned=report["assigned"]), err=True)
    if report.get("unconfirmed"):
        click.echo(_("  the last batch ({n} leads) may or may not be in; a re-run finishes either way",
                     n=report["unconfirmed"]), err=True)


def render_import(r: dict) -> None:
    counts = {"imported": r["imported"], "assigned": r["assigned"], "skipped": r["skipped_existing"],
              "duplicates": len(r["duplicates"]), "rejected": len(r["rejected"])}
    if r["dry_run"]:
        click.echo(_("dry run, nothing written: would import {imported} ({assigned} held by their owners), "
                     "skipped {skipped} existing, {duplicates} duplicates, {rejected} rejected", **counts))
    else:
        click.echo(_("imported {imported} ({assigned} held by their owners), skipped {skipped} existing, "
                     "{duplicates} duplicates, {rejected} rejected", **counts))
    for d in r["duplicates"][:20]:
        click.echo(_("  line {line}: {lead} has the same {field} as {other}", line=d["line"], lead=d["lead"],
                     field=gettext(d["field"]), other=d["duplicate_of"]))
    for x in r["rejected"][:20]:
        click.echo(_("  line {line}: {error}", line=x["line"], error=x["error"]))
    hidden = max(len(r["duplicates"]) - 20, 0) + max(len(r["rejected"]) - 20, 0)
    if hidden:
        click.echo(_("  … {hidden} more (use --json for all)", hidden=hidden))
    for o in r["over_limit"]:
        click.echo(ngettext("  {rep} holds {n} lead of pool {pool}, over its claim_limit {claim_limit}",
                            "  {rep} holds {n} leads of pool {pool}, over its claim_limit {claim_limit}",
                            o["held"], rep=o["rep"], pool=o["pool"], claim_limit=o["claim_limit"]))
    if r["ignored_columns"]:
        click.echo(_("  ignored columns: {columns}", columns=", ".join(r["ignored_columns"])))
    if r.get("rejects_file"):
        click.echo(_("  rejected rows written to {path}", path=r["rejects_file"]))


@lead.command("show")
@click.argument("lead_id", metavar="ID")
@helptext.option("--at", metavar="TIME", help="as of this business time (ISO 8601; no offset means UTC)")
@helptext.option("--upto", metavar="POSITION", help="as the ledger said when its log ended at POSITION")
@pass_app
def show(app: App, lead_id: str, at: str | None = None, upto: str | None = None) -> None:
    """A lead's current state, or its state as of a moment."""
    def render(r: dict) -> None:
        fields([(_("lead"), r["lead"]), (_("pool"), r["pool"]), (_("status"), gettext(r["status"])),
                (_("owner"), r["owner"]), (_("since"), r["since"]), (_("last follow-up"), r["last_follow_up"]),
                (_("deal"), r["deal"]),
                (_("recycle at"), f"{r['recycle_at']} ({r['recycle_rule']})" if r["recycle_at"] else None),
                (_("disputes"), r["disputes"]),
                *((gettext(k), _("(erased)") if r.get("erased") and k in PERSONAL else v)
                  for k, v in r["attributes"].items()),
                (_("personal data"), _("erased") if r.get("erased") else None)])

    app.run(lambda ledger: ledger.lead_show(lead_id, at, upto), render, reader=True)


@lead.command("erase")
@click.argument("lead_id", metavar="ID")
@helptext.option("--reason", required=True, metavar="TEXT", help="why (recorded on the lead's history)")
@at_option
@pass_app
def erase(app: App, lead_id: str, reason: str, at: str | None) -> None:
    """Erase a lead's personal data (contact, phone, email, follow-up notes) for good (admin).

    Deletes the lead's data key and its duplicate-check hashes, blanks its notes in the read
    models and records PersonalDataErased; ownership, claims and follow-up times stay.

    \b
    Example:
      leadledger --as root lead erase L-1001 --reason "PIPL art. 47 request of 2026-03-02"
    """
    def render(r: dict) -> None:
        click.echo(_("personal data of {lead} erased (event #{position})", lead=r["lead"], position=r["position"]))
        if r["plaintext_in_log"]:
            click.echo(_("  note: events stored before sealing still hold some of it in the clear "
                         "(see README, Personal data)"), err=True)

    app.run(lambda ledger: ledger.erase_lead(app.actor, lead_id, reason, at=at), render)


COMMANDS = [lead]
