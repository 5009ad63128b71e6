"""lead add | import | show."""

from __future__ import annotations

import click

from commands.output import App, at_option, fields, ownership_line, pass_app
from ledger.importing import count_rows, read_rows

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
@click.option("--allow-duplicate", is_flag=True, help="import rows even if they match existing leads")
@at_option
@pass_app
def import_(app: App, file: str, pool_id: str, allow_duplicate: bool, at: str | None) -> None:
    """Import leads from CSV (header row) or JSON Lines; a re-run imports nothing twice.

    Columns/keys: id, company, contact, phone, email, region, industry, source.

    \b
    Example:
      leadledger --as mgr lead import leads.csv --pool east
    """
    def call(ledger):
        rows = read_rows(file)
        total = count_rows(file)
        if total < 5000:
            return ledger.import_leads(app.actor, pool_id, rows, allow_duplicate=allow_duplicate, at=at)
        with click.progressbar(length=total, label="importing", file=click.get_text_stream("stderr")) as bar:
            return ledger.import_leads(app.actor, pool_id, rows, allow_duplicate=allow_duplicate, at=at,
                                       progress=bar.update)

    def render(r: dict) -> None:
        click.echo(f"imported {r['imported']}, skipped {r['skipped_existing']} existing, "
                   f"{len(r['duplicates'])} duplicates, {len(r['rejected'])} rejected")
        for d in r["duplicates"][:20]:
            click.echo(f"  line {d['line']}: {d['lead']} has the same {d['field']} as {d['duplicate_of']}")
        for x in r["rejected"][:20]:
            click.echo(f"  line {x['line']}: {x['error']}")
        hidden = max(len(r["duplicates"]) - 20, 0) + max(len(r["rejected"]) - 20, 0)
        if hidden:
            click.echo(f"  … {hidden} more (use --json for all)")

    app.run(call, render)


@lead.command("show")
@click.argument("lead_id", metavar="ID")
@pass_app
def show(app: App, lead_id: str) -> None:
    """A lead's current state."""
    def render(r: dict) -> None:
        fields([("lead", r["lead"]), ("pool", r["pool"]), ("status", r["status"]), ("owner", r["owner"]),
                ("since", r["since"]), ("last follow-up", r["last_follow_up"]), ("deal", r["deal"]),
                ("recycle at", f"{r['recycle_at']} ({r['recycle_rule']})" if r["recycle_at"] else None),
                ("disputes", r["disputes"]), *r["attributes"].items()])

    app.run(lambda ledger: ledger.lead_show(lead_id), render, reader=True)


COMMANDS = [lead]
