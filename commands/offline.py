"""`verify-receipt` without click: an auditor's check needs no store, no click and no codec, so
it answers in little more than the interpreter's start.

`cli.main` sends a plain command line here: global options (`--json`, `--lang`, and `--store`
or `--as`, which the check ignores), `verify-receipt`, one FILE, and `--digest`/`--public-key`.
Any other line (`--help`, a usage error, a directory for FILE) goes to click, whose
`verify-receipt` command calls `check` and `text` below, so both answer alike.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

TYPE_CHECKING = False  # not typing's: this module is what `verify-receipt` runs, and loads little
if TYPE_CHECKING:
    from typing import Any

from commands.plain import emit_json, report
from ledger.errors import InvalidInput, LedgerError
from ledger.i18n import LANGUAGES, _

_GLOBAL_VALUES = ("--lang", "--store", "--as")
_OPTIONS = {"--digest": "digest", "--public-key": "public_key"}


def parse(argv: list[str]) -> dict[str, Any] | None:
    """The check a plain `verify-receipt` command line asks for, or None for any other line."""
    request: dict[str, Any] = {"as_json": False, "file": None, "digest": None, "public_key": None}
    i = 0
    while i < len(argv) and argv[i].startswith("-"):
        name, eq, value = argv[i].partition("=")
        if name == "--json" and not eq:
            request["as_json"] = True
        elif name in _GLOBAL_VALUES and (eq or i + 1 < len(argv)):
            value = value if eq else argv[i + 1]
            if name == "--lang" and value not in LANGUAGES:
                return None
            i += 0 if eq else 1
        else:
            return None
        i += 1
    if argv[i:i + 1] != ["verify-receipt"]:
        return None
    rest = argv[i + 1:]
    while rest:
        arg = rest.pop(0)
        name, eq, value = arg.partition("=")
        if name in _OPTIONS and (eq or rest):
            request[_OPTIONS[name]] = value if eq else rest.pop(0)
        elif request["file"] is None and (arg == "-" or arg and not arg.startswith("-")):
            request["file"] = arg
        else:
            return None
    if request["file"] is None or os.path.isdir(request["file"]):  # click says what is wrong
        return None
    return request


def run(request: dict[str, Any]) -> None:
    """Check the receipt and print what it proves; exit 6 naming what failed, 2 for bad input."""
    try:
        result = check(request["file"], request["digest"], request["public_key"])
    except LedgerError as e:
        report(e, request["as_json"])
    if request["as_json"]:
        emit_json(result)
    else:
        sys.stdout.write(text(result) + "\n")


def check(file: str, digest: str | None, public_key: str | None) -> dict[str, Any]:
    from ledger import checkpoint  # noqa: PLC0415 - after parsing: a usage error needs none of it
    from ledger.receipt_check import check_receipt  # noqa: PLC0415

    trusted = checkpoint.parse_public_key(public_key) if public_key is not None else None
    wanted = checkpoint.parse_digest(digest) if digest is not None else None
    return check_receipt(read(file), wanted, trusted)


def text(result: dict[str, Any]) -> str:
    if not result["signed"]:
        signer = _("unsigned")
    elif result["key_checked"]:
        signer = _("signed by {key} (the key given)", key=result["public_key"])
    else:
        signer = _("signed by {key} (the key it carries: compare it)", key=result["public_key"])
    facts = {"stream": result["stream"], "version": result["version"], "position": result["position"],
             "size": result["tree_size"], "root": result["root"], "signer": signer}
    if "digest_position" in result:
        return _("ok: {stream} v{version} is event {position} of a log of {size} events, root {root}; "
                 "{signer}; it extends the digest at {at}", at=result["digest_position"], **facts)
    return _("ok: {stream} v{version} is event {position} of a log of {size} events, root {root}; "
             "{signer}", **facts)


def read(file: str) -> dict:
    try:
        content = sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8")
        receipt = json.loads(content)
    except OSError as e:
        raise InvalidInput(_("cannot read {file}: {reason}", file=file, reason=e.strerror), file=file) from None
    except (UnicodeDecodeError, ValueError) as e:
        raise InvalidInput(_("{file} is not a JSON receipt: {reason}", file=file, reason=e), file=file) from None
    except RecursionError:
        raise InvalidInput(_("{file} is not a JSON receipt: it is nested too deeply", file=file), file=file) from None
    if not isinstance(receipt, dict):
        raise InvalidInput(_("{file} is not a JSON receipt: not an object", file=file), file=file)
    return receipt
