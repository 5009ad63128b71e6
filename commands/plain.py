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
    if as_json and isinstance(error, IntegrityViolation):  # verify: its report, plus the error
        emit_json({**error.details, "error": {"code": error.code, "message": error.message}})
    elif as_json:
        emit_json({"error": error.to_dict()})
    else:
        sys.stderr.write(_("error: {message} [{code}]", message=error.message, code=error.code) + "\n")
        sys.stderr.flush()
    raise SystemExit(error.exit_code)


def stdout_gone() -> None:
    """The reader of stdout went away (`leadledger export events | head -1`): point stdout at
    /dev/null so that Python's own flush at exit does not fail again, and end quietly."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # no real file behind stdout (tests)
        pass
