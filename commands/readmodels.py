"""project, export."""

from __future__ import annotations

import atexit
import itertools
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

import click

from commands import helptext
from commands.files import replacing
from commands.output import App, pass_app, writable_output
from ledger.errors import InvalidInput
from ledger.feeds import MODELS
from ledger.i18n import _
from ledger.spreadsheets import check_export, write_export
from ledger.values import parse_position

PROGRESS_FROM = 10000  # events to apply before a progress bar is worth showing


@contextmanager
def progress_bar() -> Iterator[Any]:
    """A progress callback (done, total) that draws a bar on stderr once the work is large."""
    state: dict[str, Any] = {"bar": None, "done": 0}

    def step(done: int, total: int) -> None:
        if state["bar"] is None:
            if total < PROGRESS_FROM:
                return
            state["bar"] = click.progressbar(length=max(total, 1), label=_("projecting"),
                                             file=sys.stderr)
            state["bar"].__enter__()
        state["bar"].update(done - state["done"])
        state["done"] = done

    try:
        yield step
    finally:
        if state["bar"] is not None:
            state["bar"].__exit__(None, None, None)


@contextmanager
def interruptible() -> Iterator[None]:
    """SIGTERM stops the command like Ctrl-C does: as a KeyboardInterrupt, which leaves
    nothing half-applied (an open transaction rolls back)."""
    def on_term(*_args: object) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # once is enough
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _ignore_stop_signals() -> None:
    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, signal.SIG_IGN)


@contextmanager
def stopping_on_signals() -> Iterator[threading.Event]:
    """Ctrl-C and SIGTERM set the event: following ends between batches, its subscription
    closed in order. An exception raised wherever the signal lands could land inside a lock
    just taken (a library's queue's or pool's), and leave the exit waiting on it forever. The
    handler takes no lock either (setting an event takes one): it writes a byte that a thread
    of its own turns into the event. A second signal ends the process at once (status 130):
    the database rolls back the batch being applied, as after a kill."""
    stop = threading.Event()
    read_end, write_end = os.pipe()
    signals = [0]
    farewell = (_("interrupted: stopped at once") + "\n").encode()

    def on_signal(*_args: object) -> None:
        signals[0] += 1
        if signals[0] > 1:
            with suppress(OSError):  # stderr may be gone: the exit must not wait on it
                os.write(sys.stderr.fileno(), farewell)
            os._exit(130)
        os.write(write_end, b"\0")

    def relay() -> None:
        os.read(read_end, 1)
        stop.set()

    relayer = threading.Thread(target=relay, daemon=True)
    relayer.start()
    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        if not signals[0]:
            for s, handler in previous.items():
                signal.signal(s, handler)
            os.write(write_end, b"\0")
        else:  # a second signal sent just after the first may land once following has ended:
            # the handler stays (it still ends the process at once), and then, as the interpreter
            # finalizes (restoring the default action, which the process would die of), it is ignored
            atexit.register(_ignore_stop_signals)
        relayer.join()
        os.close(read_end)
        os.close(write_end)


@helptext.command()
@helptext.option("--rebuild", is_flag=True, help="rebuild every model from position 0, then swap it in")
@helptext.option("--follow", is_flag=True, help="keep the models current as events arrive, until interrupted")
@pass_app
def project(app: App, rebuild: bool, follow: bool) -> None:
    """Bring the read models up to date (tables other apps may query).

    A rebuild that was interrupted is finished first. With --follow, go on applying new
    events as they are stored (PostgreSQL: LISTEN/NOTIFY; SQLite: polling) until Ctrl-C or
    SIGTERM.

    \b
    Example:
      leadledger project
      leadledger project --rebuild
      leadledger project --follow
    """
    def call(ledger) -> dict[str, Any]:
        if not follow:
            try:
                with progress_bar() as step:
                    return ledger.project(rebuild, progress=step)
            except KeyboardInterrupt:
                if rebuild or _pending(ledger):  # what was rebuilt so far is kept
                    click.echo(_("interrupted: the rebuild is unfinished; `leadledger project` resumes it"),
                               err=True)
                raise
        result: dict[str, Any] = {"rebuilt": False, "position": None}
        try:
            with interruptible():
                with progress_bar() as step:
                    result = ledger.project(rebuild, progress=step)
                click.echo(_("following from position {position} (Ctrl-C to stop)", position=result["position"]),
                           err=True)
                with stopping_on_signals() as stop:
                    ledger.follow(stop, on_batch=lambda p: click.echo(
                        _("projected up to position {position}", position=p), err=True),
                        on_error=lambda e, delay: click.echo(_(
                            "lost the store ({reason}); trying again in {delay}s",
                            reason=str(e).splitlines()[0] if str(e) else type(e).__name__,
                            delay=format(delay, "g")), err=True))
        except KeyboardInterrupt:
            pass
        result["position"] = ledger.views.position()
        result["followed"] = True
        return result

    app.run(call, lambda r: click.echo(
        _("read models rebuilt at position {position}", position=r["position"]) if r["rebuilt"]
        else _("read models up to date at position {position}", position=r["position"])))


def _pending(ledger: Any) -> bool:
    """Whether a rebuild is unfinished (the store may be unreachable after an interrupt)."""
    with suppress(Exception):
        return ledger.views.pending_rebuild() is not None
    return False


FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".xlsx": "xlsx"}


def _position(ctx: click.Context, param: click.Parameter, value: str | None) -> int:
    try:
        return parse_position("0" if value is None else value, f"--{param.name}")
    except InvalidInput as e:
        raise click.UsageError(e.message, ctx) from None



@contextmanager
def _closing(rows: Any) -> Iterator[None]:
    """Rows read from the store, closed on the way out: a reader that went away (`| head`)
    leaves no generator to be finished after the store is closed."""
    try:
        yield
    finally:
        close = getattr(rows, "close", None)
        if close is not None:
            close()


def _started(rows: Any) -> Iterator[Any]:
    """The rows, the first of them read now."""
    rows = iter(rows)
    first = next(rows, _NONE)
    return rows if first is _NONE else itertools.chain([first], rows)


_NONE = object()


@contextmanager
def _replacing(out: str) -> Iterator[str]:
    """The export written whole or not at all (commands/files.py): a failed export leaves no
    half-written file. A place that cannot be written (`--out` has been checked) is bad input."""
    try:
        with replacing(out) as temp:
            yield temp
    except OSError as e:
        raise InvalidInput(_("cannot write --out {out}: {reason}", out=repr(out[:80]),
                             reason=e.strerror or e)) from None


@helptext.command()
@click.argument("model", type=click.Choice([*MODELS, "events"]))
@helptext.option("--format", "fmt", type=click.Choice(["jsonl", "csv", "xlsx"]),
              help="jsonl, csv or xlsx (needs --out); default: from the extension of --out, else jsonl")
@helptext.option("--out", metavar="FILE", callback=writable_output,
                 help="write to FILE instead of stdout (whole, or not at all)")
@helptext.option("--bom", is_flag=True, help="csv: begin with a byte-order mark (for Excel)")
@helptext.option("--since", metavar="POSITION", callback=_position,
              help="events: only those after POSITION (0 to 2^63-1)")
@helptext.option("--at", metavar="TIME", help="a read model as of this business time (ISO 8601; no offset means UTC)")
@helptext.option("--upto", metavar="POSITION", help="a read model as the log said when it ended at POSITION")
@pass_app
def export(app: App, model: str, fmt: str | None, out: str | None, bom: bool, since: int,
           at: str | None = None, upto: str | None = None) -> None:
    """Write a read model's rows, or the events (the change feed), as JSON Lines, CSV or Excel.

    \b
    Example:
      leadledger export holdings --out holdings.csv     # CSV, from the extension
      leadledger export holdings --out holdings.xlsx    # an Excel workbook
      leadledger export events --since 5120             # what came after position 5120
      leadledger export holdings --at 2026-03-31T23:59:59Z   # as of quarter end
    """
    def call(ledger) -> dict[str, Any] | None:
        chosen = fmt or FORMATS.get(os.path.splitext(out or "")[1].lower(), "jsonl")
        check_export(chosen, out, bom)  # bad options fail before any work
        if out is None:
            columns, rows = ledger.export(model, since, at, upto)
            with _closing(rows):
                rows = _started(rows)  # a store that cannot be read fails here, its error still JSON
                app.json = False  # the rows themselves are the output
                write_export(rows, chosen, sys.stdout, events=model == "events", columns=columns, bom=bom)
                sys.stdout.flush()
            return None
        with _replacing(out) as temp:
            columns, rows = ledger.export(model, since, at, upto)
            with _closing(rows):
                if chosen == "xlsx":
                    count = write_export(rows, chosen, None, path=temp, events=model == "events", columns=columns)
                else:
                    with open(temp, "w", encoding="utf-8", newline="") as f:
                        count = write_export(rows, chosen, f, events=model == "events", columns=columns, bom=bom)
        as_of = {"at": at} if at is not None else {"upto": int(upto)} if upto is not None else {}
        return {"model": model, "format": chosen, "out": out, "rows": count, **as_of}

    app.run(call, lambda r: r and click.echo(_("wrote {rows} {model} rows to {path}", rows=r["rows"],
                                              model=r["model"], path=r["out"]), err=True),
            reader=True)


COMMANDS = [project, export]
