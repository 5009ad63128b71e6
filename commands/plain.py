"""Output without click: one JSON object on stdout, or an error line on stderr, and the exit
status of an error. commands/output.py builds on it; commands/offline.py needs no more."""

from __future__ import annotations

import json
import os
import sys

TYPE_CHECKING = False  # not typing's: it is not loaded by `verify-receipt` (commands/offline.py)
if TYPE_CHECKING:
    from typing import Any, NoReturn

from ledger.errors import IntegrityViolation, LedgerError
from ledger.i18n import _


def emit_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False, default=str) + "\n")
    sys.stdout.flush()


def report(error: LedgerError, as_json: bool) -> NoReturn:
    """Print an error (its JSON object on stdout, or one line on stderr) and exit with its status."""
    try:
        if as_json and isinstance(error, IntegrityViolation):  # verify: its report, plus the error
            emit_json({**error.details, "error": {"code": error.code, "message": error.message}})
        elif as_json:
            emit_json({"error": error.to_dict()})
        else:
            sys.stderr.write(_("error: {message} [{code}]", message=error.message, code=error.code) + "\n")
            sys.stderr.flush()
    except BrokenPipeError:  # nobody reads it any more: the status still says what happened
        stdout_gone()
    raise SystemExit(error.exit_code)


def wants_json(argv: list[str]) -> bool:
    """--json before the sub-command, as the root group would parse it."""
    return "--json" in argv or os.environ.get("LEADLEDGER_JSON") == "1"


def undecodable(argv: list[str]) -> str | None:
    """The first argument (or LEADLEDGER_ setting) that is not UTF-8 text, shown as its bytes:
    Python keeps such bytes as lone surrogates, which no store, file or terminal takes."""
    named = [(None, a) for a in argv] + [(k, v) for k, v in os.environ.items() if k.startswith("LEADLEDGER_")]
    for name, value in named:
        if any("\udc80" <= ch <= "\udcff" for ch in value):
            shown = repr(value.encode("utf-8", "surrogateescape"))[2:-1][:80]
            return f"{name}={shown}" if name else shown
    return None


def closed_streams() -> None:
    """A standard stream closed before the command started (`leadledger claim L-1 >&-`) is None
    in Python: what the command writes there goes nowhere, and its status still tells."""
    for name in ("stdout", "stderr"):
        if getattr(sys, name) is None:
            setattr(sys, name, open(os.devnull, "w", encoding="utf-8"))  # noqa: SIM115 - for the process's life


def stdout_gone() -> None:
    """The reader of stdout went away (`leadledger export events | head -1`): point stdout at
    /dev/null so that Python's own flush at exit does not fail again, and end quietly."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # no real file behind stdout (tests)
        pass
