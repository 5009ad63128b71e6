"""Tamper evidence: recompute every hash chain, and a digest of the whole log.

Each stored event carries the hash of the previous event of its stream and its own hash
(see codec). `verify` walks the log in position order and checks, for each event, that
its hash matches its bytes, that it follows its stream's previous event (version and
hash), and that no stream's chain is left dangling. The digest is a rolling hash over
(position, event hash) for every event up to a position; `verify --digest D` recomputes
it at D's position, so a truncated tail or a rewritten chain shows even when every chain
is consistent on its own.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import msgspec

from ledger import codec
from ledger.errors import IntegrityViolation, InvalidInput

DIGEST_PREFIX = "lld1"


def _roll(previous: bytes, position: int, event_hash: str) -> bytes:
    return hashlib.sha256(previous + f"|{position}|{event_hash}".encode()).digest()


class Integrity:
    """verify and digest (a Ledger mixin)."""

    def _scan(self, stop_at: int | None = None,
              progress: Callable[[int], None] | None = None) -> dict[str, Any]:
        """Check every event; return counts, the first problem, and the rolling digest."""
        heads: dict[str, tuple[int, str]] = {}
        rolling = b""
        ledger_id = None
        checked = 0
        digest_at: dict[str, Any] | None = None
        after = 0
        while rows := self.store.read_log_raw(after=after, limit=5000):
            for position, stream, version, state in rows:
                problem = _check(stream, version, state, heads)
                if problem:
                    return {"checked": checked, "bad": position, "problem": problem, "rolling": rolling,
                            "ledger_id": ledger_id, "digest_at": digest_at}
                own = codec.decode_raw(state).hash
                heads[stream] = (version, own)
                rolling = _roll(rolling, position, own)
                ledger_id = ledger_id or own[:16]
                checked += 1
                if stop_at is not None and position == stop_at:
                    digest_at = {"position": position, "rolling": rolling.hex()}
                after = position
            if progress:
                progress(len(rows))
        return {"checked": checked, "bad": None, "problem": None, "rolling": rolling,
                "ledger_id": ledger_id, "position": after, "digest_at": digest_at}

    def verify(self, digest: str | None = None, progress: Callable[[int], None] | None = None) -> dict[str, Any]:
        self._ready()
        wanted = parse_digest(digest) if digest else None
        scan = self._scan(stop_at=wanted["position"] if wanted else None, progress=progress)
        result = {"ok": scan["bad"] is None, "events_checked": scan["checked"],
                  "first_bad_position": scan["bad"], "problem": scan["problem"]}
        if result["ok"] and wanted is not None:
            problem = None
            if scan["ledger_id"] != wanted["ledger"]:
                problem = "the digest belongs to another ledger (or the first event was rewritten)"
            elif wanted["position"] > scan["position"]:
                problem = (f"the log ends at position {scan['position']}, before the digest's position "
                           f"{wanted['position']}: events were removed from its end")
            elif scan["digest_at"] is None:
                problem = f"the event at the digest's position {wanted['position']} is missing"
            elif scan["digest_at"]["rolling"] != wanted["rolling"]:
                problem = f"the log up to position {wanted['position']} differs from the one the digest was taken of"
            if problem:
                result.update(ok=False, first_bad_position=_first_after(wanted["position"], scan), problem=problem)
            else:
                result["digest_position"] = wanted["position"]
        if not result["ok"]:
            raise IntegrityViolation(result["problem"], **result)
        return result

    def digest(self) -> dict[str, Any]:
        self._ready()
        scan = self._scan()
        if scan["bad"] is not None:
            raise IntegrityViolation(scan["problem"], ok=False, events_checked=scan["checked"],
                                     first_bad_position=scan["bad"], problem=scan["problem"])
        position = scan.get("position", 0)
        text = f"{DIGEST_PREFIX}:{scan['ledger_id'] or '-'}:{position}:{scan['rolling'].hex() or '-'}"
        return {"digest": text, "position": position, "events": scan["checked"]}


def _first_after(position: int, scan: dict[str, Any]) -> int | None:
    return min(position, scan.get("position") or position) or None


def _check(stream: str, version: int, state: bytes, heads: dict[str, tuple[int, str]]) -> str | None:
    try:
        record = codec.decode_raw(state)
    except msgspec.DecodeError as e:
        return f"the stored bytes do not decode: {e}"
    expected = codec.chain_hash(stream, version, record.prev, bytes(record.recorded_at), bytes(record.event))
    if expected != record.hash:
        return f"the hash of {stream} v{version} does not match its bytes (altered, or moved from another stream)"
    last_version, last_hash = heads.get(stream, (0, codec.GENESIS))
    if version != last_version + 1:
        return f"{stream} jumps from version {last_version} to {version}: an event is missing or out of place"
    if record.prev != last_hash:
        return f"{stream} v{version} does not follow the stream's previous event (removed, swapped or rewritten)"
    try:
        codec.decode_event(bytes(record.event))
    except msgspec.DecodeError as e:
        return f"{stream} v{version} is not a valid event: {e}"
    return None


def parse_digest(text: str) -> dict[str, Any]:
    parts = (text or "").strip().split(":")
    if len(parts) != 4 or parts[0] != DIGEST_PREFIX or not parts[2].isdigit():
        raise InvalidInput(f"malformed digest {text!r}: expected {DIGEST_PREFIX}:LEDGER:POSITION:HASH "
                           "as printed by `leadledger digest`")
    ledger_id, position, rolling = parts[1], int(parts[2]), parts[3]
    try:
        bytes.fromhex(rolling)
    except ValueError:
        raise InvalidInput(f"malformed digest {text!r}: the hash is not hexadecimal") from None
    if len(rolling) != 64 or len(ledger_id) != 16 or position < 1:
        raise InvalidInput(f"malformed digest {text!r}")
    return {"ledger": ledger_id, "position": position, "rolling": rolling}
