"""Output in one place: --json or readable text, error rendering and exit codes."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import click
from eventsourcing.persistence import PersistenceError

from ledger.application import Ledger
from ledger.errors import IntegrityViolation, LedgerError, StoreUnavailable


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
            self._ledger = Ledger(self.store_url)
        return self._ledger

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
        except PersistenceError as e:
            self.fail(StoreUnavailable(f"the store failed: {str(e).splitlines()[0] if str(e) else type(e).__name__}"))
        if self.json:
            emit_json(result)
        elif render is not None:
            render(result)
        return result

    def fail(self, error: LedgerError) -> None:
        if self.json and isinstance(error, IntegrityViolation):  # verify: its report, plus the error
            emit_json({**error.details, "error": {"code": error.code, "message": error.message}})
        elif self.json:
            emit_json({"error": error.to_dict()})
        else:
            click.echo(f"error: {error.message} [{error.code}]", err=True)
        raise SystemExit(error.exit_code)


pass_app = click.make_pass_decorator(App)


def emit_json(obj: Any) -> None:
    click.echo(json.dumps(obj, ensure_ascii=False, default=str))


def table(rows: Sequence[dict[str, Any]], columns: Sequence[str], headers: Sequence[str] | None = None,
          empty: str = "(none)") -> None:
    """An aligned text table of the given columns."""
    if not rows:
        click.echo(empty)
        return
    headers = list(headers or [c.upper().replace("_", " ") for c in columns])
    cells = [[_cell(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(h), *(len(row[i]) for row in cells)) for i, h in enumerate(headers)]
    click.echo("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
    for row in cells:
        click.echo("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


def fields(pairs: Iterable[tuple[str, Any]]) -> None:
    """Aligned `label  value` lines, skipping empty values."""
    pairs = [(k, v) for k, v in pairs if v not in (None, "", [], {})]
    if not pairs:
        return
    width = max(len(k) for k, _ in pairs)
    for k, v in pairs:
        click.echo(f"{k.ljust(width)}  {_cell(v)}")


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ", ".join(_cell(v) for v in value) or "-"
    if isinstance(value, dict):
        return ", ".join(f"{k}={_cell(v)}" for k, v in value.items())
    return str(value)


def ownership_line(result: dict[str, Any]) -> None:
    """One line for claim, release, assign, reassign, follow-up, convert, move."""
    where = f"held by {result['owner']}" if result.get("owner") else f"in pool {result['pool']}"
    if result.get("status") == "converted":
        where = f"converted by {result['owner']}"
    click.echo(f"{result['lead']}: {result['event']} at {result['occurred_at']} "
               f"(event #{result['position']}); now {where}")


def debug() -> bool:
    return bool(os.environ.get("LEADLEDGER_DEBUG"))


def wants_json(argv: Sequence[str]) -> bool:
    """--json before the sub-command, as the root group would parse it."""
    return "--json" in argv or os.environ.get("LEADLEDGER_JSON") == "1"


def usage_error(message: str, as_json: bool) -> None:
    if as_json:
        emit_json({"error": {"code": "invalid_input", "message": message}})
    else:
        click.echo(f"error: {message} [invalid_input]", err=True)
    sys.exit(2)


at_option = click.option(
    "--at", metavar="TIME", help="when it happened (ISO 8601, e.g. 2026-03-02T09:00:00Z); default now"
)
