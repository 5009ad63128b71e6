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

TYPE_CHECKING = False  # not typing's: this module is what `verify-receipt` runs, and loads little
if TYPE_CHECKING:
    from typing import Any

from commands.plain import emit_json, report
from ledger.errors import InvalidInput, LedgerError
from ledger.i18n import LANGUAGES, _

_GLOBAL_VALUES = ("--lang", "--store", "--as")
_OPTIONS = {"--digest": "digest", "--public-key": "public_key"}
MAX_RECEIPT = 1024 * 1024  # bytes: a receipt is a few KB; more is no receipt (and /dev/zero never ends)


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
    """The receipt in FILE (`-`: stdin): UTF-8 text of at most MAX_RECEIPT bytes, a JSON object."""
    try:
        data = _content(file)
    except OSError as e:
        raise InvalidInput(_("cannot read {file}: {reason}", file=file, reason=e.strerror), file=file) from None
    except ValueError:  # a NUL in the name: no file has it
        raise InvalidInput(_("cannot read {file}: {reason}", file=repr(file), reason=_("not a valid file name")),
                           file=file) from None
    if len(data) > MAX_RECEIPT:
        raise InvalidInput(_("{file} is not a JSON receipt: {reason}", file=file,
                             reason=_("it is larger than {size} bytes", size=MAX_RECEIPT)), file=file)
    try:
        receipt = json.loads(data.decode("utf-8"))  # strictly: bytes that are not text are no receipt
    except (UnicodeDecodeError, ValueError) as e:
        raise InvalidInput(_("{file} is not a JSON receipt: {reason}", file=file, reason=e), file=file) from None
    except RecursionError:
        raise InvalidInput(_("{file} is not a JSON receipt: it is nested too deeply", file=file), file=file) from None
    if not isinstance(receipt, dict):
        raise InvalidInput(_("{file} is not a JSON receipt: not an object", file=file), file=file)
    return receipt


def _content(file: str) -> bytes:
    """Up to one byte more than MAX_RECEIPT of FILE's bytes (so /dev/zero ends): stdin's as
    they are, not as its text layer decodes them (which may keep bad bytes as surrogates)."""
    if file != "-":
        with open(file, "rb") as f:
            return f.read(MAX_RECEIPT + 1)
    if sys.stdin is None:  # closed: nothing to read
        return b""
    stream = getattr(sys.stdin, "buffer", None)
    if stream is not None:
        return stream.read(MAX_RECEIPT + 1)
    return sys.stdin.read(MAX_RECEIPT + 1).encode("utf-8", "surrogatepass")  # a text stream: its surrogates fail
