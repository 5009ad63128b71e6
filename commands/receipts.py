"""keygen, verify-receipt: the parts of receipts that need no store."""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from commands import helptext, offline
from commands.integrity import SIGNING_KEY
from commands.files import write_file
from commands.output import App, check_writable, emit_json, pass_app
from ledger.errors import InvalidInput, LedgerError
from ledger.i18n import _
from ledger.values import parse_position


@helptext.command()
@click.argument("file", type=click.Path(dir_okay=False))
@pass_app
def keygen(app: App, file: str) -> None:
    """Make an Ed25519 signing key for tree heads and receipts.

    Writes the private key (PEM) to FILE, readable by its owner only, and prints the
    public key auditors check signatures with. An existing FILE is never overwritten.
    Keep the key outside the database: whoever can write the database cannot sign.

    \b
    Example:
      leadledger keygen ~/.leadledger/signing.pem
      LEADLEDGER_SIGNING_KEY=~/.leadledger/signing.pem leadledger digest
    """
    from ledger import checkpoint  # noqa: PLC0415 - the crypto library, for the commands that sign or check

    try:
        key = _write_key(app, file)
    except LedgerError as e:
        app.fail(e)
    result = {"key_file": file, "public_key": checkpoint.b64(checkpoint.public_key_of(key))}
    if app.json:
        emit_json(result)
    else:
        click.echo(_("wrote {file} (mode 0600); public key: {key}", file=file, key=result["public_key"]))


def _write_key(app: App, file: str) -> Any:
    """keygen's file, whole or not at all, mode 0600, never over a file (nor the store's)."""
    from ledger import checkpoint  # noqa: PLC0415

    if os.path.lexists(file):  # before a key is made; the write itself never replaces one either
        raise InvalidInput(_("{path} already exists: a key is never overwritten", path=file), file=file)
    check_writable(file, app.kept_files())
    try:
        return write_file(file, checkpoint.write_new_key, new=True)
    except FileExistsError:
        raise InvalidInput(_("{path} already exists: a key is never overwritten", path=file), file=file) from None


@helptext.command("verify-receipt")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@helptext.option("--digest", metavar="D", help="also check the receipt's tree extends this digest")
@helptext.option("--public-key", "public_key", metavar="K", help="the key that must have signed (base64)")
@pass_app
def verify_receipt(app: App, file: str, digest: str | None, public_key: str | None) -> None:
    """Check a receipt offline: the event, its place in the log, the signed head.

    Needs no store. Recomputes the event's hash from the stored record the receipt
    carries, checks every non-personal field of the event against it, the inclusion
    proof up to the root, and the signature over the tree head (against --public-key
    when given). With --digest, also checks the receipt's tree extends that digest.
    Exit 0 when all of it holds, 6 naming what failed, 2 for an unreadable file.

    \b
    Example:
      leadledger verify-receipt claim-L-1001.json --public-key 3q2+7w…
    """
    try:
        result = offline.check(file, digest, public_key)
    except LedgerError as e:
        app.fail(e)
    if app.json:
        emit_json(result)
    else:
        click.echo(offline.text(result))


@helptext.command()
@click.argument("position")
@helptext.option("--digest", metavar="D", help="add the consistency proof from this earlier digest")
@helptext.option("--out", "out", metavar="FILE", help="write the receipt to FILE instead of printing it")
@SIGNING_KEY
@pass_app
def receipt(app: App, position: str, digest: str | None, out: str | None, signing_key: str | None) -> None:
    """Print the receipt of the event at POSITION: proof it is in the log.

    The receipt carries the event (as the change feed shows it), its stored record, and
    the path from it to the log's tree head, signed with --signing-key when given.
    `verify-receipt` checks it with no store.

    \b
    Example:
      leadledger receipt 1042 --out claim-1042.json
    """
    try:
        number = parse_position(position)
        if out:
            check_writable(out, app.kept_files(signing_key))
    except LedgerError as e:
        app.fail(e)

    def call(ledger):
        made = ledger.receipt(number, digest, signing_key)
        write_receipt(made, out)
        return made

    def render(r: dict) -> None:
        click.echo(_("wrote the receipt of event {position} to {out}", position=number, out=out) if out
                   else json.dumps(r, ensure_ascii=False, indent=2))

    app.run(call, render, reader=True)


def write_receipt(made: dict, out: str | None) -> None:
    """Write a receipt to the file `out`, when one is named."""
    if out is None:
        return
    text = json.dumps(made, ensure_ascii=False, indent=2) + "\n"
    write_file(out, lambda temp: Path(temp).write_text(text, encoding="utf-8"))


COMMANDS = [keygen, verify_receipt, receipt]


def receipt_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """`--receipt FILE` and `--signing-key FILE` (default $LEADLEDGER_SIGNING_KEY) for a command
    that records an event, checked together before it records anything: FILE can be written and
    is neither one of the store's files nor the key, and the key loads. Either failing once the
    event is recorded would leave the command half done."""
    @functools.wraps(command)
    def checked_first(*args: Any, receipt_file: str | None, signing_key: str | None, **kwargs: Any) -> Any:
        if receipt_file:
            ctx = click.get_current_context()
            try:
                _check_receipt(ctx.find_object(App), receipt_file, signing_key)
            except InvalidInput as e:
                raise click.UsageError(e.message, ctx) from None
        return command(*args, receipt_file=receipt_file, signing_key=signing_key, **kwargs)

    return RECEIPT(SIGNING_KEY(checked_first))


def _check_receipt(app: App, file: str, key: str | None) -> None:
    check_writable(file, app.kept_files(key))
    if key is not None:  # an empty --signing-key is no key: refused, not ignored
        from ledger import checkpoint  # noqa: PLC0415 - signing loads the crypto library

        checkpoint.load_signing_key(key)


RECEIPT = helptext.option("--receipt", "receipt_file", metavar="FILE",
                          help="write the receipt of the recorded event to FILE (signed with --signing-key)")


def save_receipt(app: App, result: dict, file: str | None, signing_key: str | None) -> None:
    """After a command recorded an event: write that event's receipt to `file`, if asked. The
    event stands whatever happens here (its result is printed already): a receipt that cannot
    be written after all (a full disk) is a warning that says how to make it again."""
    if not file or not isinstance(result, dict) or not result.get("position"):
        return
    position = result["position"]
    try:
        write_receipt(app.ledger.receipt(position, None, signing_key), file)
    except LedgerError as e:
        click.echo(_("warning: event {position} is recorded, but its receipt was not written: {reason}; "
                     "`leadledger receipt {position} --out FILE` writes it",
                     position=position, reason=e.message), err=True)
