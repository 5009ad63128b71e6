"""verify, digest."""

from __future__ import annotations

import click

from commands.output import App, pass_app


@click.command()
@click.option("--digest", "digest", metavar="D", help="also prove the log still extends this digest")
@pass_app
def verify(app: App, digest: str | None) -> None:
    """Recompute every hash chain; report the first bad position (exit 6).

    \b
    Example:
      leadledger verify
      leadledger verify --digest lld1:…
    """
    def call(ledger):
        total = ledger.store.max_position()
        if total < 50000:
            return ledger.verify(digest)
        with click.progressbar(length=total, label="verifying", file=click.get_text_stream("stderr")) as bar:
            return ledger.verify(digest, progress=bar.update)

    def render(r: dict) -> None:
        extra = f"; the log extends the digest at position {r['digest_position']}" if r.get("digest_position") else ""
        click.echo(f"ok: {r['events_checked']} events checked, every chain intact{extra}")

    app.run(call, render, reader=True)


@click.command()
@pass_app
def digest(app: App) -> None:
    """Print a digest of the whole log, to keep outside the database.

    \b
    Example:
      leadledger digest      # later: leadledger verify --digest <it>
    """
    app.run(lambda ledger: ledger.digest(), lambda r: click.echo(r["digest"]), reader=True)


COMMANDS = [verify, digest]
