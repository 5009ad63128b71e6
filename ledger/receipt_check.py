"""Check a receipt offline: proof that one event is at its position in a log with that tree head.

Needs no store and no network: only the receipt, and what the auditor kept (a digest, a public key).
A receipt, as `leadledger receipt` prints it:

    {"event": {...the change-feed object...},
     "record": {"stream": S, "version": V, "state": TEXT},   the event exactly as stored
     "leaf_hash": HEX, "tree_size": N, "root": HEX, "inclusion_proof": [HEX, ...],
     "origin": TEXT, "signature": B64|null, "public_key": B64|null,
     "consistency_proof": [HEX, ...]}                        (made with --digest D)

The checks, in this order; the first that fails is named in `failed`:

  record            the stored record's hash matches its bytes: stream, version, the previous
                    event's hash, recording time and event bytes (its stream's hash chain link);
  event             every field of the change-feed object equals the stored record's, the
                    personal fields of its type aside (they are not in a stored record in the
                    clear), and those the feed leaves out when null (null in the record);
  leaf_hash         the leaf is SHA-256(0x00 || the record's hash);
  inclusion_proof   RFC 9162's audit path leads from leaf position-1 to the root at tree_size;
  signature         the head (origin, tree size, root) is signed by the key the receipt
                    carries, or by --public-key when given (an unsigned receipt then fails);
  digest            with --digest D: the receipt's tree extends D's (the consistency proof).
                    A D larger than the receipt's tree is bad input: nothing in it reaches D.

Malformed fields (hex, base64, sizes, over-long proofs) fail the check of the field they are in.
"""

from __future__ import annotations

import json
import re

TYPE_CHECKING = False  # not typing's: it is not loaded by `verify-receipt` (commands/offline.py)
if TYPE_CHECKING:
    from typing import Any

from ledger import chain, checkpoint, merkle
from ledger.checkpoint import TreeHead
from ledger.errors import IntegrityViolation, InvalidInput
from ledger.i18n import N_, _, gettext

BACKDATED_AFTER = 300  # seconds; as the change feed computes `backdated`
MAX_PROOF = 64  # no tree of 2**63 leaves has a longer path
# Personal data (spec section 7), by event type: not bound by a receipt, and shown as text or null
# (opened, or erased). Paths of field names; list items skipped. Another type holds none of them.
PERSONAL = {"LeadAdded": {("attributes", "contact"), ("attributes", "phone"), ("attributes", "email"),
                          ("duplicates", "value")},
            "FollowUpLogged": {("note",)}}
# Top-level fields the change feed leaves out when null (disclosure.shown): absent from a receipt's
# event where its record holds null.
OMITTED_IF_NULL = {"LeadAdded": {"sealed"}, "FollowUpLogged": {"sealed"}}
_KINDS = {int: N_("a whole number"), str: N_("text"), dict: N_("an object")}
_HEX_DIGITS = "0123456789abcdef"  # the checks test text with str methods: each regex compiled costs a start
# A record as codec.encode lays it out. The standard library reads it, so that a check loads
# neither msgspec nor the event types (most of a command's start); a record laid out otherwise,
# or an event whose fields differ from the change feed's as read here (an old event, whose
# newer fields the feed shows at their defaults), is read again by the codec, which decides.
_TIME_MARKS = ((4, "-"), (7, "-"), (10, "T"), (13, ":"), (16, ":"))  # YYYY-MM-DDTHH:MM:SS[.ffffff]Z
_MONTH_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_RECORD = re.compile(r'\{"hash":"([^"]*)","prev":"([^"]*)","recorded_at":("[^"\\]*"),"event":(\{.*\})\}', re.DOTALL)


class Failed(Exception):
    def __init__(self, check: str, message: str) -> None:
        super().__init__(message)
        self.check, self.message = check, message


def check_receipt(receipt: Any, digest: TreeHead | None = None, public_key: bytes | None = None) -> dict[str, Any]:
    """What the receipt proves; IntegrityViolation naming the failed check otherwise."""
    try:
        try:
            return _check(receipt, digest, public_key)
        except RecursionError:  # no event of the ledger's nests so deep
            raise Failed("event", _("it is nested too deeply to be an event of the ledger's")) from None
    except Failed as e:
        raise IntegrityViolation(_("{check}: {problem}", check=e.check, problem=e.message), ok=False, failed=e.check) from None


def _check(receipt: Any, digest: TreeHead | None, public_key: bytes | None) -> dict[str, Any]:
    if not isinstance(receipt, dict):
        raise Failed("receipt", _("not a JSON object"))
    event, record = _need(receipt, "event", dict), _need(receipt, "record", dict)
    size = _need(receipt, "tree_size", int)
    if size < 1 or size > checkpoint.MAX_SIZE:
        raise Failed("tree_size", _("{size}: a tree holds from 1 event", size=size))
    position = _need(event, "position", int, "event")
    if not 1 <= position <= size:
        raise Failed("position", _("position {position} is not in a tree of {size} events", position=position, size=size))

    event_hash, parts = _check_record(record)
    _check_event(event, record, parts)
    leaf = _hex(receipt.get("leaf_hash"), "leaf_hash")
    if leaf != merkle.leaf_hash(event_hash):
        raise Failed("leaf_hash", _("it is not the leaf of the record's hash"))
    root = _hex(receipt.get("root"), "root")
    proof = _hashes(receipt.get("inclusion_proof"), "inclusion_proof")
    if not merkle.verify_inclusion(position - 1, size, leaf, proof, root):
        raise Failed("inclusion_proof", _("it does not lead from position {position} to the root "
                                          "of a tree of {size} events", position=position, size=size))
    head, key = _check_signature(receipt, size, root, public_key)
    result = {"ok": True, "position": position, "stream": record["stream"], "version": record["version"],
              "tree_size": size, "root": root.hex(), "signed": bool(head.signatures),
              "public_key": checkpoint.b64(key) if key else None, "key_checked": public_key is not None,
              "digest": head.digest()}
    if digest is not None:
        _check_digest(receipt, head, digest, key, position)
        result["digest_position"] = digest.size
    return result


def _check_record(record: dict[str, Any]) -> tuple[bytes, tuple[str, str] | None]:
    """The hash of the stored record, once it matches the record's bytes; and the record's
    recording time and event as JSON text, when laid out as codec.encode lays them out."""
    stream = _need(record, "stream", str, "record")
    version = _need(record, "version", int, "record")
    state = _need(record, "state", str, "record")
    found = _RECORD.fullmatch(state)
    if found:
        parts = found.groups()
    else:
        raw = _decoded(state, raw=True)
        parts = (raw.hash, raw.prev, bytes(raw.recorded_at).decode(), bytes(raw.event).decode())
    digest, prev, recorded_at, event = parts
    expected = chain.chain_hash(stream, version, prev, recorded_at.encode(), event.encode())
    if not _hex64(digest) or digest != expected:
        raise Failed("record", _("the hash of {stream} v{version} does not match its stored bytes",
                                   stream=stream, version=version))
    return bytes.fromhex(digest), (recorded_at, event) if found else None


def _decoded(state: str, raw: bool = False) -> Any:
    """The stored record read by the codec (the event types, msgspec): the record as the
    ledger reads it, or its raw parts."""
    import msgspec  # noqa: PLC0415 - see _RECORD

    from ledger import codec  # noqa: PLC0415

    try:
        return codec.decode_raw(state.encode()) if raw else codec.decode(state.encode())
    except msgspec.DecodeError as e:
        raise Failed("record", _("the stored record does not decode: {reason}", reason=e)) from None


def _check_event(event: dict[str, Any], record: dict[str, Any], parts: tuple[str, str] | None) -> None:
    if parts is not None and _event_mismatch(_as_read(event, record, *parts), event) is None:
        return
    stored = _decoded(record["state"])
    import msgspec  # noqa: PLC0415 - see _RECORD

    fields = msgspec.to_builtins(stored.event)
    seconds = (stored.recorded_at - stored.event.occurred_at).total_seconds()
    expected = {"position": event["position"], "stream": record["stream"], "version": record["version"],
                "type": fields.pop("type"), "occurred_at": fields.pop("occurred_at"),
                "recorded_at": msgspec.to_builtins(stored.recorded_at),
                "backdated": abs(seconds) > BACKDATED_AFTER, **fields}
    where = _event_mismatch(expected, event)
    if where is not None:
        raise Failed("event", _("field {field} differs from the stored record", field=repr(where)))


def _as_read(event: dict[str, Any], record: dict[str, Any], recorded_at: str, stored: str) -> dict[str, Any] | None:
    """The change-feed object of the stored event as the standard library reads it; None if
    it cannot (the codec then decides)."""
    try:
        fields, recorded = json.loads(stored), json.loads(recorded_at)
        micros = utc_microseconds(recorded) - utc_microseconds(fields["occurred_at"])
        return {"position": event["position"], "stream": record["stream"], "version": record["version"],
                "type": fields.pop("type"), "occurred_at": fields.pop("occurred_at"), "recorded_at": recorded,
                "backdated": abs(micros) > BACKDATED_AFTER * 1_000_000, **fields}
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError):
        return None


def utc_microseconds(text: str) -> int:
    """Microseconds since 1970 of a UTC time as msgspec writes it; ValueError for any other
    form (the codec then decides). The proleptic Gregorian calendar, as datetime counts it:
    importing datetime would cost the check a fifth of its start-up."""
    if not (20 <= len(text) <= 27 and text.isascii() and text[-1] == "Z"
            and all(text[at] == mark for at, mark in _TIME_MARKS) and (len(text) == 20 or text[19] == ".")):
        raise ValueError(text)
    digits = (text[0:4], text[5:7], text[8:10], text[11:13], text[14:16], text[17:19], text[20:-1] or "0")
    if not all(part.isdigit() for part in digits) or len(text) == 21:
        raise ValueError(text)
    year, month, day, hour, minute, second = (int(part) for part in digits[:6])
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    if not (year and 1 <= month <= 12 and 1 <= day <= _MONTH_DAYS[month - 1] + (month == 2 and leap)
            and hour < 24 and minute < 60 and second < 60):
        raise ValueError(text)
    # days from the civil date (H. Hinnant's days_from_civil): years start in March
    y = year - (month <= 2)
    era, year_of_era = divmod(y, 400)
    day_of_year = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    days = era * 146_097 + year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year - 719_468
    seconds = days * 86_400 + hour * 3_600 + minute * 60 + second
    return seconds * 1_000_000 + int(digits[6].ljust(6, "0"))


def _hex64(text: str) -> bool:
    return len(text) == 64 and not text.strip(_HEX_DIGITS)


def _event_mismatch(expected: dict[str, Any] | None, actual: dict[str, Any]) -> str | None:
    """The first field where the receipt's event differs from the stored record's as the change
    feed shows it (None: the record could not be read so). The record's type says which fields
    are personal (unbound), may be left out when null, or may be marked erased."""
    if expected is None:
        return _dotted(())
    kind = expected["type"] if isinstance(expected["type"], str) else None  # a forged record's may be anything
    left_out = {name for name in OMITTED_IF_NULL.get(kind, ())
                if name not in actual and name in expected and expected[name] is None}
    if isinstance(expected.get("lead"), str) and actual.get("erased") is True:
        # the key table's state, no part of the record: the change feed marks a lead's events
        # so once the lead is erased (disclosure.opened_log); no other event, no other value
        left_out.add("erased")
    return _mismatch({k: v for k, v in expected.items() if k not in left_out},
                     {k: v for k, v in actual.items() if k not in left_out}, (), PERSONAL.get(kind, set()))


def _mismatch(expected: Any, actual: Any, path: tuple[str | int, ...], personal: set[tuple[str, ...]]) -> str | None:
    """The first field where `actual` differs from `expected`, the `personal` ones aside (text
    or null, whatever the record holds)."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        for name in sorted(expected.keys() | actual.keys()):
            here = (*path, name)
            if tuple(p for p in here if isinstance(p, str)) in personal:
                if actual.get(name) is None or isinstance(actual[name], str):
                    continue
                return _dotted(here)
            if name not in expected or name not in actual:
                return _dotted(here)
            found = _mismatch(expected[name], actual[name], here, personal)
            if found is not None:
                return found
        return None
    if isinstance(expected, list) and isinstance(actual, list) and len(expected) == len(actual):
        return next((f for i, (e, a) in enumerate(zip(expected, actual, strict=True))
                     if (f := _mismatch(e, a, (*path, i), personal)) is not None), None)
    same = type(expected) is type(actual) and expected == actual
    return None if same and not isinstance(expected, (dict, list)) else _dotted(path)


def _dotted(path: tuple[str | int, ...]) -> str:
    return ".".join(str(p) for p in path) or "event"


def _check_signature(receipt: dict[str, Any], size: int, root: bytes,
                     trusted: bytes | None) -> tuple[TreeHead, bytes | None]:
    """The receipt's tree head (signed if it is), and the key that signed it."""
    origin = _need(receipt, "origin", str)
    signature = _b64(receipt.get("signature"), 64, "signature")
    carried = _b64(receipt.get("public_key"), 32, "public_key")
    if trusted is not None and carried is not None and carried != trusted:
        raise Failed("signature", _("the head is signed by another key than the one given"))
    key = trusted or carried
    if signature is None:
        if trusted is not None:
            raise Failed("signature", _("the receipt is not signed, and a public key was given"))
        key = None
    elif key is None:
        raise Failed("signature", _("the receipt is signed but names no public key"))
    try:
        head = checkpoint.head(origin, size, root, signature, key)
    except InvalidInput as e:
        raise Failed("origin", e.message) from None
    if signature is not None and not head.verify(key):
        raise Failed("signature", _("the signature over the tree head does not verify"))
    return head, key


def _check_digest(receipt: dict[str, Any], head: TreeHead, digest: TreeHead, key: bytes | None, position: int) -> None:
    proof = _hashes(receipt.get("consistency_proof", []), "consistency_proof")
    if digest.size in (0, head.size):
        proof = []  # none is needed (the one carried is from the digest it was made with)
    if digest.size and digest.origin != head.origin:
        raise Failed("digest", _("the digest is of another log ({origin}, the receipt's is {here})",
                                   origin=digest.origin, here=head.origin))
    if digest.size > head.size:  # not a failure: the receipt was made before the digest
        raise InvalidInput(_("the digest's log ({size} events) is longer than the receipt's ({here}): a receipt "
                             "holds no proof about a later tree head, so this cannot be checked offline; ask the "
                             "ledger for a receipt of its log as it is now, with proof that it extends D: "
                             "`leadledger receipt {position} --digest D`", size=digest.size, here=head.size,
                             position=position), digest_position=digest.size, tree_size=head.size)
    if not merkle.verify_consistency(digest.size, head.size, digest.root, head.root, proof):
        if proof or digest.size in (0, head.size):
            raise Failed("digest", _("the receipt's tree of {size} events does not extend the digest's tree of "
                                     "{digest}", size=head.size, digest=digest.size))
        raise Failed("digest", _("the receipt's tree of {size} events does not extend the digest's tree of "
                                 "{digest} (the receipt has no consistency_proof)", size=head.size, digest=digest.size))
    if key is not None and digest.signature_by(key) is not None and not digest.verify(key):
        raise Failed("digest", _("the digest's signature by the receipt's key does not verify"))


# --- fields -------------------------------------------------------------------------------

def _need(obj: dict[str, Any], name: str, kind: type, where: str | None = None) -> Any:
    value = obj.get(name)
    if not isinstance(value, kind) or kind is int and isinstance(value, bool) or kind is str and not _utf8(value):
        raise Failed(where or name, _("{name} is missing or not {kind}", name=name, kind=gettext(_KINDS[kind])))
    return value


def _utf8(text: str) -> bool:
    """Whether the text has UTF-8 bytes to hash: JSON's \\ud800 is a lone surrogate, which has none."""
    if text.isascii():
        return True
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _hex(value: Any, what: str) -> bytes:
    if not isinstance(value, str) or not _hex64(value):
        raise Failed(what, _("not 64 lowercase hex digits"))
    return bytes.fromhex(value)


def _hashes(value: Any, what: str) -> list[bytes]:
    if not isinstance(value, list) or len(value) > MAX_PROOF:
        raise Failed(what, _("not a list of at most {most} hashes", most=MAX_PROOF))
    return [_hex(v, f"{what}[{i}]") for i, v in enumerate(value)]


def _b64(value: Any, size: int, what: str) -> bytes | None:
    if value is None:
        return None
    try:
        return checkpoint.b64decode(value, size, what)
    except InvalidInput as e:
        raise Failed(what, e.message) from None


# --- making one (the store supplies the parts) ----------------------------------------------

def make_receipt(event: dict[str, Any], stream: str, version: int, state: bytes, proof: list[bytes],
                 head: TreeHead, public_key: bytes | None, consistency: list[bytes] | None = None) -> dict[str, Any]:
    """A receipt of the change-feed `event` as stored (`state`), in the tree of `head`."""
    from ledger import codec  # noqa: PLC0415 - the store's side; the check never needs it

    signature = head.signature_by(public_key) if public_key else None
    receipt = {
        "event": event, "record": {"stream": stream, "version": version, "state": state.decode()},
        "leaf_hash": merkle.leaf_hash(bytes.fromhex(codec.decode_raw(state).hash)).hex(),
        "tree_size": head.size, "root": head.root.hex(), "inclusion_proof": [p.hex() for p in proof],
        "origin": head.origin, "signature": checkpoint.b64(signature) if signature else None,
        "public_key": checkpoint.b64(public_key) if signature and public_key else None,
    }
    if consistency is not None:
        receipt["consistency_proof"] = [p.hex() for p in consistency]
    return receipt
