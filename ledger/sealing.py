"""Personal data sealed per lead: keys, AEAD, and keyed hashes. No I/O.

A lead's `contact`, `phone`, `email` and its follow-up notes go into events only as
AES-256-GCM ciphertext under a key of the lead's own. The associated data is the event's
identity (stream, version, type), so a ciphertext copied into another event does not open.
Deleting the key erases them for good: the events, and their hash chains, stay as they are.

The duplicate check compares HMAC-SHA-256 of the normalised keys under the store's secret,
never the values themselves.
"""

from __future__ import annotations

import binascii
import functools
import hashlib
import os
from collections.abc import Callable
from typing import Any

import msgspec

from ledger import events as ev
from ledger.errors import IntegrityViolation
from ledger.i18n import _

KEY_BYTES = 32  # 256 bits
NONCE_BYTES = 12
PERSONAL_ATTRIBUTES = ("contact", "phone", "email")
_BLOCK = 64  # SHA-256's block, in bytes
SEALED_TYPES = (ev.LeadAdded, ev.FollowUpLogged)

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(dict[str, str | None]).decode


def new_key() -> bytes:
    return os.urandom(KEY_BYTES)


def random_pieces(count: int, size: int) -> list[bytes]:
    """`count` random strings of `size` bytes each, from one call to the OS: an import's batch
    takes its data keys and nonces so, where a call for each cost it more than its AEAD."""
    pool = os.urandom(count * size)
    return [pool[i:i + size] for i in range(0, count * size, size)]


def _associated(stream: str, version: int, event: ev.Event) -> bytes:
    return f"{stream}\n{version}\n{type(event).__name__}".encode()


def _seal(key: bytes, data: bytes, associated: bytes, nonce: bytes | None = None) -> str:
    nonce = nonce or os.urandom(NONCE_BYTES)
    return binascii.b2a_base64(nonce + _crypto()[0](key).encrypt(nonce, data, associated), newline=False).decode()


@functools.cache
def _crypto() -> tuple[Any, type[Exception]]:
    """AESGCM and the error of a ciphertext that does not open (imported once: a query of no
    sealed field needs neither)."""
    from cryptography.exceptions import InvalidTag  # noqa: PLC0415
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # noqa: PLC0415

    return AESGCM, InvalidTag


def _open(key: bytes, sealed: str, associated: bytes) -> dict[str, str | None]:
    return _opened(_crypto()[0](key), sealed, associated)


def _opened(cipher: Any, sealed: str, associated: bytes) -> dict[str, str | None]:
    try:
        raw = binascii.a2b_base64(sealed, strict_mode=True)  # b64decode's validation is a regex a call
        return _decode(cipher.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], associated))
    except (_crypto()[1], ValueError, msgspec.DecodeError):
        raise IntegrityViolation(
            _("a sealed personal field does not open under its lead's key: the event or the key "
              "was changed, or the ciphertext belongs to another event")) from None


def personal_of(event: ev.Event) -> dict[str, str]:
    """The personal fields an event holds in the clear (none once sealed)."""
    if isinstance(event, ev.LeadAdded):
        found = {n: v for n in PERSONAL_ATTRIBUTES if (v := getattr(event.attributes, n)) is not None}
        found.update({f"duplicate_{d.field}": d.value for d in event.duplicates if d.value is not None})
        return found
    if isinstance(event, ev.FollowUpLogged) and event.note is not None:
        return {"note": event.note}
    return {}


def seal(event: ev.Event, key: bytes | None, stream: str, version: int, nonce: bytes | None = None) -> ev.Event:
    """The event as it is stored: its personal fields sealed under `key` (with `nonce`, or a
    new one), or, with no key (the lead's data was erased), not stored at all. Duplicate
    matches keep their field and lead."""
    if isinstance(event, ev.LeadAdded):
        personal = {n: v for n in PERSONAL_ATTRIBUTES if (v := getattr(event.attributes, n)) is not None}
        attributes = msgspec.structs.replace(event.attributes, contact=None, phone=None, email=None)
        duplicates = [msgspec.structs.replace(d, value=None) for d in event.duplicates]
        sealed = _seal(key, _encode(personal), _associated(stream, version, event), nonce) \
            if key and personal else None
        return msgspec.structs.replace(event, attributes=attributes, duplicates=duplicates, sealed=sealed)
    if isinstance(event, ev.FollowUpLogged) and event.note is not None:
        sealed = _seal(key, _encode({"note": event.note}), _associated(stream, version, event), nonce) \
            if key else None
        return msgspec.structs.replace(event, note=None, sealed=sealed)
    return event


def unseal(event: Any, key: bytes | None, stream: str, version: int) -> Any:
    """The event with its sealed fields opened (left None without a key: erased).

    IntegrityViolation when the ciphertext does not open under the key."""
    sealed = getattr(event, "sealed", None)
    if sealed is None or key is None:
        return event
    opened = _open(key, sealed, _associated(stream, version, event))
    if isinstance(event, ev.LeadAdded):
        fields = {n: opened.get(n) for n in PERSONAL_ATTRIBUTES}
        return msgspec.structs.replace(event, attributes=msgspec.structs.replace(event.attributes, **fields))
    return msgspec.structs.replace(event, note=opened.get("note"))


def note_opener(key: bytes) -> Callable[[Any, str, int], str | None]:
    """The note of a follow-up of one lead (stream, version) as `unseal` opens it, the cipher
    of `key` made once for all of them. IntegrityViolation when a note does not open."""
    cipher = _crypto()[0](key)

    def note(event: Any, stream: str, version: int) -> str | None:
        if event.sealed is None:
            return event.note
        return _opened(cipher, event.sealed, _associated(stream, version, event)).get("note")
    return note


def erased_copy(event: Any) -> Any:
    """The event with every personal field blanked (what outputs show once it is erased)."""
    if isinstance(event, ev.LeadAdded):
        return msgspec.structs.replace(
            event, attributes=msgspec.structs.replace(event.attributes, contact=None, phone=None, email=None),
            duplicates=[msgspec.structs.replace(d, value=None) for d in event.duplicates])
    if isinstance(event, ev.FollowUpLogged):
        return msgspec.structs.replace(event, note=None)
    return event


# --- the duplicate check --------------------------------------------------------------------

def new_secret() -> str:
    return os.urandom(KEY_BYTES).hex()


class KeyHasher:
    """HMAC-SHA-256 of normalised keys (each with its kind: a phone never equals an email)
    under one secret. The secret's inner and outer pads (RFC 2104) are hashed once, and each
    key costs two copies of them, a third of what a one-shot `hmac.digest` spends setting
    itself up every time. `raw`: the digest's bytes, else its hex (the key index of a store
    made by an earlier version)."""

    def __init__(self, secret: bytes, *, raw: bool = True) -> None:
        self.raw = raw
        if len(secret) > _BLOCK:
            secret = hashlib.sha256(secret).digest()
        secret = secret.ljust(_BLOCK, b"\0")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in secret)).copy
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in secret)).copy

    def pads(self) -> tuple[Callable[[], Any], Callable[[], Any]]:
        """New copies of the hashes of the inner and outer pads, as `__call__` uses them."""
        return self._inner, self._outer

    def __call__(self, kind: str, value: str) -> bytes | str:
        inner = self._inner()
        inner.update(f"{kind}\n{value}".encode())
        outer = self._outer()
        outer.update(inner.digest())
        return outer.digest() if self.raw else outer.hexdigest()
