"""Output in one place: --json or readable text, error rendering and exit codes."""

from __future__ import annotations

import os
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from commands.helptext import option
from commands.plain import emit_json, report
from ledger.errors import InvalidInput, LedgerError, StoreUnavailable
from ledger.i18n import N_, _, gettext

if TYPE_CHECKING:
    from ledger.application import Ledger


SIGNING_KEY_ENV = "LEADLEDGER_SIGNING_KEY"
STORE_COMPANIONS = ("", "-wal", "-shm", "-journal", "-lock")  # SQLite's own, and the library's lock
KEPT = {"store": N_("cannot write {path}: it is a file of the ledger's store"),  # by kind (App.kept_files)
        "input": N_("cannot write {path}: it is the file being imported"),
        "key": N_("cannot write {path}: it is the signing key")}


class App:
    """What the root group parsed: the store, the actor, the output format."""

    def __init__(self, store: str | None, actor: str | None, as_json: bool) -> None:
        self.store_url = store
        self.actor = actor
        self.json = as_json
        self._ledger: Ledger | None = None

    @property
    def ledger(self) -> Ledger:
        if self._ledger is None:
            from ledger.application import Ledger  # noqa: PLC0415 - `--help` needs none of it
            self._ledger = Ledger(self.store_url)
        return self._ledger

    def kept_files(self, *keys: str | None) -> list[tuple[str, str]]:
        """The files no output may be written over, each with its kind: the SQLite store's file
        and its companions (a receipt written there leaves no ledger), and the signing keys
        (these, and $LEADLEDGER_SIGNING_KEY's)."""
        kept = [(key, "key") for key in (*keys, os.environ.get(SIGNING_KEY_ENV)) if key]
        store = self.ledger.store  # the URL parsed, nothing opened
        if store.kind == "sqlite":
            kept += [(name + suffix, "store") for name in (store.path, os.path.realpath(store.path))
                     for suffix in STORE_COMPANIONS]
        return kept

    def close(self) -> None:
        if self._ledger is not None:
            self._ledger.close()

    def run(self, call: Callable[[Ledger], Any], render: Callable[[Any], None] | None = None,
            *, reader: bool = False) -> Any:
        """Call the application, print the result, or print the error and exit with its status."""
        try:
            if reader:
                self.ledger.check_reader(self.actor)
            result = call(self.ledger)
        except LedgerError as e:
            self.fail(e)
        except BrokenPipeError:  # stdout closed (`| head`): the entry point ends quietly
            raise
        except Exception as e:  # noqa: BLE001 - every failure gets an error code and a status
            if debug():
                raise
            self.fail(unexpected(e))
        if self.json:
            emit_json(result)
        elif render is not None:
            render(result)
        return result

    def fail(self, error: LedgerError) -> NoReturn:
        report(error, self.json)


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return f"{type(e).__name__}: {text.splitlines()[0]}" if text else type(e).__name__


def unexpected(e: Exception) -> LedgerError:
    """An exception the ledger did not turn into one of its errors, as one of them, so that no
    command exits outside 0-6: the database or the file system failing is `store_unavailable`
    (5); a value the database refuses (psycopg's DataError) or anything else (a bug met by
    some input nobody foresaw) is `invalid_input` (2), marked `"internal": true`."""
    if isinstance(e, LedgerError):
        return e
    # Drivers not imported by now raised nothing: a SQLite command never loads psycopg for this.
    psycopg = sys.modules.get("psycopg")
    persistence = sys.modules.get("eventsourcing.persistence")
    refused = (sqlite3.DataError, psycopg.DataError) if psycopg else (sqlite3.DataError,)
    failed = (sqlite3.DatabaseError, OSError) + ((psycopg.Error,) if psycopg else ()) \
        + ((persistence.PersistenceError,) if persistence else ())
    if isinstance(e, refused):
        return InvalidInput(_("the store refused a value: {error}", error=_first_line(e)))
    if isinstance(e, failed):
        return StoreUnavailable(_("the store failed: {error}", error=_first_line(e)))
    return InvalidInput(_("internal error (please report it): {error}", error=_first_line(e)), internal=True)


pass_app = click.make_pass_decorator(App)


def ownership_line(result: dict[str, Any]) -> None:
    """One line for claim, release, assign, reassign, follow-up, convert, move."""
    facts = {"lead": result["lead"], "event": result["event"], "at": result["occurred_at"],
             "position": result["position"], "owner": result.get("owner"), "pool": result.get("pool")}
    if result.get("status") == "converted":
        line = _("{lead}: {event} at {at} (event #{position}); now converted by {owner}", **facts)
    elif result.get("owner"):
        line = _("{lead}: {event} at {at} (event #{position}); now held by {owner}", **facts)
    else:
        line = _("{lead}: {event} at {at} (event #{position}); now in pool {pool}", **facts)
    click.echo(line)


def debug() -> bool:
    return bool(os.environ.get("LEADLEDGER_DEBUG"))


def usage_error(message: str, as_json: bool) -> NoReturn:
    report(InvalidInput(message), as_json)


def checked(check: Callable[[Any], Any]) -> Callable[[click.Context, click.Parameter, Any], Any]:
    """A click callback that runs one of the vocabulary's checks (ledger/values.py) on an
    option's value: bad input is then a usage error (exit 2) before anything is read."""
    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        if value is None:
            return None
        try:
            return check(value)
        except InvalidInput as e:
            raise click.UsageError(e.message, ctx) from None  # the message names the option
    return callback


def check_writable(path: str, kept: list[tuple[str, str]] = ()) -> str:
    """An output file that cannot be written is bad input, found before any work is done
    (and without making the file yet); so is one of `kept` (App.kept_files), however named."""
    from commands.files import in_place  # noqa: PLC0415 - only the commands that write files load it

    try:
        real = os.path.realpath(path)
        if not (os.access(path, os.W_OK) if in_place(path) else _replaceable(Path(real))):
            raise InvalidInput(_("cannot write {path}", path=path))
    except (ValueError, OSError):  # a NUL in the name, a name too long
        raise InvalidInput(_("cannot write {path}", path=repr(path))) from None
    for file, kind in kept:
        if real == os.path.realpath(file) or _same_file(path, file):
            raise InvalidInput(_(KEPT[kind], path=path))
    return path


def _replaceable(target: Path) -> bool:
    """Whether a file can be written beside `target` (a link's file) and renamed over it: its
    folder is there and writable, and it is no folder."""
    folder = target.parent
    return not target.is_dir() and folder.is_dir() and os.access(folder, os.W_OK | os.X_OK)


def _same_file(path: str, other: str) -> bool:
    """Whether both name one file (a hard link too)."""
    try:
        return os.path.samefile(path, other)
    except (OSError, ValueError):  # either does not exist
        return False


def writable_output(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """The click callback of an output FILE option: check_writable, before anything is read, with
    the store's files and the signing key kept."""
    if value is None:
        return None
    try:
        return check_writable(value, ctx.find_object(App).kept_files())
    except InvalidInput as e:
        raise click.UsageError(e.message, ctx) from None


at_option = option(
    "--at", metavar="TIME",
    help="when it happened (ISO 8601, e.g. 2026-03-02T09:00:00Z; no offset means UTC); default now",
)


# Labels made from the keys of a result (`claim_limit` -> "claim limit"), translated where shown.
LABELS = [N_("claim limit"), N_("daily claim limit"), N_("idle limit"), N_("hold limit"), N_("cooldown"),
          N_("warn before"), N_("now"), N_("since"), N_("last follow up"), N_("last event at"),
          N_("claimed at"), N_("held before claim"), N_("held since"), N_("last follow up then"),
          N_("recycle rule"), N_("recycle limit"), N_("recycle deadline"), N_("converted by"),
          N_("converted at"), N_("deal"), N_("converted position"), N_("warn at"), N_("warned")]


def label(key: str) -> str:
    """The label of a result's key, in the reader's language (a key not in LABELS as it is)."""
    return gettext(key.replace("_", " "))
