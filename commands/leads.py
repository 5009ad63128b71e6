"""lead add | import | show."""

from __future__ import annotations

from typing import NoReturn

import click

from commands.output import App, at_option, emit_json, fields, ownership_line, pass_app

ATTRIBUTE_OPTIONS = ("company", "contact", "phone", "email", "region", "industry", "source")


@click.group()
def lead() -> None:
    """Add, import and show leads."""


@lead.command("add")
@click.argument("lead_id", metavar="ID")
@click.option("--pool", "pool_id", required=True, metavar="P")
@click.option("--company")
@click.option("--contact")
@click.option("--phone")
@click.option("--email")
@click.option("--region")
@click.option("--industry")
@click.option("--source")
@click.option("--allow-duplicate", is_flag=True, help="add even if phone/email/company match a lead")
@click.option("--claim", "claim_it", is_flag=True, help="claim it at once")
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
        click.echo(f"{r['lead']} added to pool {r['pool']} (event #{r['position']})")
        for m in r["duplicates"]:
            click.echo(f"  note: same {m['field']} as {m['lead']} ({m['value']}), recorded on its history")
        if "claim" in r:
            ownership_line(r["claim"])

    app.run(lambda ledger: ledger.add_lead(app.actor, lead_id, pool_id, allow_duplicate=allow_duplicate,
                                           claim=claim_it, at=at, **attributes), render)


@lead.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--pool", "pool_id", required=True, metavar="P")
@click.option("--encoding", metavar="E", help="the text encoding (default: UTF-8, else GB18030)")
@click.option("--tz", metavar="ZONE", default="UTC", show_default=True,
              help="IANA zone of the file's times written without an offset")
@click.option("--map", "mappings", multiple=True, metavar="COLUMN=FIELD", help="the field a column holds (repeatable)")
@click.option("--dry-run", is_flag=True, help="make every check, write nothing; the same summary")
@click.option("--rejects", metavar="FILE", type=click.Path(dir_okay=False),
              help="write the rejected rows here as CSV (UTF-8 with BOM), to fix and import again")
@click.option("--allow-duplicate", is_flag=True, help="import rows even if they match existing leads")
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
    from ledger.spreadsheets import check_writable, write_rejects  # noqa: PLC0415
    from ledger.importer import ImportInterrupted, new_report  # noqa: PLC0415

    def call(ledger):
        try:
            source = read_rows(file, encoding=encoding, tz=tz, mapping=mappings)
            if rejects:
                check_writable(rejects)
            report = run_import(ledger, source)
        except ImportInterrupted as stop:
            interrupted(stop.report)
        except KeyboardInterrupt:  # before the first row: nothing was written
            interrupted(new_report(dry_run))
        if rejects:
            report["rejects_file"] = rejects
            write_rejects(rejects, *source.rejects(report["rejected"]))
        return report

    def run_import(ledger, source) -> dict:
        options = {"allow_duplicate": allow_duplicate, "at": at, "dry_run": dry_run}
        total = source.size_hint()
        if total < 5000:
            return ledger.import_leads(app.actor, pool_id, source, **options)
        with click.progressbar(length=total, label="checking" if dry_run else "importing",
                               file=click.get_text_stream("stderr")) as bar:
            return ledger.import_leads(app.actor, pool_id, source, progress=bar.update, **options)

    def interrupted(report: dict) -> NoReturn:
        """Ctrl-C: say what was committed (whole batches), on stderr and, with --json, as the
        summary on stdout; exit 130. The rejects file is not written: a re-run writes it."""
        report["interrupted"] = True
        click.echo(f"\ninterrupted: {report['imported']} leads were imported before it (whole batches; "
                   f"{report['assigned']} of them held); nothing after them was written. Run the same "
                   "import again to finish: the leads already in are skipped.", err=True)
        if report.get("unconfirmed"):
            click.echo(f"  the last batch ({report['unconfirmed']} leads) may or may not be in; "
                       "a re-run finishes either way", err=True)
        if app.json:
            emit_json(report)
        raise SystemExit(130)

    app.run(call, render_import)


def render_import(r: dict) -> None:
    done = "would import" if r["dry_run"] else "imported"
    click.echo(f"{'dry run, nothing written: ' if r['dry_run'] else ''}{done} {r['imported']} "
               f"({r['assigned']} held by their owners), skipped {r['skipped_existing']} existing, "
               f"{len(r['duplicates'])} duplicates, {len(r['rejected'])} rejected")
    for d in r["duplicates"][:20]:
        click.echo(f"  line {d['line']}: {d['lead']} has the same {d['field']} as {d['duplicate_of']}")
    for x in r["rejected"][:20]:
        click.echo(f"  line {x['line']}: {x['error']}")
    hidden = max(len(r["duplicates"]) - 20, 0) + max(len(r["rejected"]) - 20, 0)
    if hidden:
        click.echo(f"  … {hidden} more (use --json for all)")
    for o in r["over_limit"]:
        click.echo(f"  {o['rep']} holds {o['held']} leads of pool {o['pool']}, over its claim_limit {o['claim_limit']}")
    if r["ignored_columns"]:
        click.echo(f"  ignored columns: {', '.join(r['ignored_columns'])}")
    if r.get("rejects_file"):
        click.echo(f"  rejected rows written to {r['rejects_file']}")


@lead.command("show")
@click.argument("lead_id", metavar="ID")
@click.option("--at", metavar="TIME", help="as of this business time (ISO 8601; no offset means UTC)")
@click.option("--upto", metavar="POSITION", help="as the ledger said when its log ended at POSITION")
@pass_app
def show(app: App, lead_id: str, at: str | None = None, upto: str | None = None) -> None:
    """A lead's current state, or its state as of a moment."""
    def render(r: dict) -> None:
        fields([("lead", r["lead"]), ("pool", r["pool"]), ("status", r["status"]), ("owner", r["owner"]),
                ("since", r["since"]), ("last follow-up", r["last_follow_up"]), ("deal", r["deal"]),
                ("recycle at", f"{r['recycle_at']} ({r['recycle_rule']})" if r["recycle_at"] else None),
                ("disputes", r["disputes"]), *r["attributes"].items(),
                ("personal data", "erased" if r.get("erased") else None)])

    app.run(lambda ledger: ledger.lead_show(lead_id, at, upto), render, reader=True)


@lead.command("erase")
@click.argument("lead_id", metavar="ID")
@click.option("--reason", required=True, metavar="TEXT", help="why (recorded on the lead's history)")
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
        click.echo(f"personal data of {r['lead']} erased (event #{r['position']})")
        if r["plaintext_in_log"]:
            click.echo("  note: events stored before sealing still hold some of it in the clear "
                       "(see README, Personal data)", err=True)

    app.run(lambda ledger: ledger.erase_lead(app.actor, lead_id, reason, at=at), render)


COMMANDS = [lead]
