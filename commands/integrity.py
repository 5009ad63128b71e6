"""verify, digest."""

from __future__ import annotations

import sys

import click

from commands import helptext
from commands.output import SIGNING_KEY_ENV, App, pass_app
from ledger.errors import LedgerError
from ledger.i18n import _
from ledger.values import parse_position

PROGRESS_FROM = 50000  # events from which verify shows a progress bar (on stderr)


@helptext.command()
@helptext.option("--digest", "digest", metavar="D", help="also prove the log still extends this digest")
@pass_app
def verify(app: App, digest: str | None) -> None:
    """Recompute every hash chain and the Merkle tree; report the first bad position (exit 6).

    A missing position, an event the stored tree did not record, or a store file that is
    not an intact ledger fail too. With --digest D (as `leadledger digest` printed it), check
    instead that the log still extends D, by the stored tree's consistency proof and the
    recorded hashes of D's events, without rehashing the log: a truncated tail or a rewritten
    event then fails (exit 6), naming its position when it can. An older lld1: digest is
    checked with every chain. A malformed digest is bad input (exit 2).

    \b
    Example:
      leadledger verify
      leadledger verify --digest llh1:…
    """
    def size(ledger) -> int:
        ledger.check_reader(app.actor)
        return ledger.store.max_position()

    def call(ledger):
        total = ledger.integrity.opened(lambda: size(ledger))
        if total < PROGRESS_FROM:
            return ledger.verify(digest)
        with click.progressbar(length=total, label=_("verifying"), file=sys.stderr) as bar:
            return ledger.verify(digest, progress=bar.update)

    def render(r: dict) -> None:
        from ledger.integrity import is_tree_head  # noqa: PLC0415 (loaded with the ledger's verify)
        if r.get("digest_position") and is_tree_head(digest or ""):
            click.echo(_("ok: the log extends the digest at position {position}: the stored tree's proof and the "
                         "recorded hashes of its {n} events hold (`verify` without --digest checks every chain)",
                         n=r["events_checked"], position=r["digest_position"]))
        elif r.get("digest_position"):
            click.echo(_("ok: {n} events checked, every chain intact; the log extends the digest at position "
                         "{position}", n=r["events_checked"], position=r["digest_position"]))
        else:
            click.echo(_("ok: {n} events checked, every chain intact", n=r["events_checked"]))

    app.run(call, render)  # the reader is checked in `call`: a damaged store is reported, not ok


SIGNING_KEY = helptext.option("--signing-key", "signing_key", metavar="FILE", envvar=SIGNING_KEY_ENV,
                           help="sign the tree head with this Ed25519 key (as `keygen` wrote it); "
                                "default: $LEADLEDGER_SIGNING_KEY")


@helptext.command()
@helptext.option("--upto", metavar="N", help="the tree head at position N (default: the whole log)")
@SIGNING_KEY
@pass_app
def digest(app: App, upto: str | None, signing_key: str | None) -> None:
    """Print the log's tree head (a digest), to keep outside the database.

    The digest holds the log's size and Merkle root (and the signature, when signed).
    `verify --digest` later proves the log still extends it.

    \b
    Example:
      leadledger digest      # later: leadledger verify --digest <it>
      leadledger digest --upto 1000 --signing-key ~/.leadledger/signing.pem
    """
    try:
        position = parse_position(upto, "--upto") if upto is not None else None
    except LedgerError as e:
        app.fail(e)
    app.run(lambda ledger: ledger.digest(position, signing_key), lambda r: click.echo(r["digest"]), reader=True)


COMMANDS = [verify, digest]
