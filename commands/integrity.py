"""verify, digest."""

from __future__ import annotations

import sys

import click

from commands.output import App, pass_app

PROGRESS_FROM = 50000  # events from which verify shows a progress bar (on stderr)


@click.command()
@click.option("--digest", "digest", metavar="D", help="also prove the log still extends this digest")
@pass_app
def verify(app: App, digest: str | None) -> None:
    """Recompute every hash chain; report the first bad position (exit 6).

    With --digest (as `leadledger digest` printed it), also prove the log still extends
    that digest: a truncated tail or a rewritten chain then fails too (exit 6). A
    malformed digest is bad input (exit 2).

    \b
    Example:
      leadledger verify
      leadledger verify --digest lld1:…
    """
    def call(ledger):
        total = ledger.store.max_position()
        if total < PROGRESS_FROM:
            return ledger.verify(digest)
        with click.progressbar(length=total, label="verifying", file=sys.stderr) as bar:
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
