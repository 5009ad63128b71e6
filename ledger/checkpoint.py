"""Tree heads as text (C2SP tlog-checkpoint in a C2SP signed note), and their Ed25519 keys.

The checkpoint text, the part that is signed, is three lines, each ending in a newline:

    leadledger/3f2a9c01d4e5b6a7     origin: which log (see `origin_of`)
    1024                            tree size: the events in the log
    q1v9...=                        base64 of the tree's root at that size

A signed note adds a blank line, then one line per signature:

    — leadledger/3f2a9c01d4e5b6a7 BASE64(key id (4 bytes) || Ed25519 signature (64 bytes))

The key is named by the origin; its id is the first 4 bytes of SHA-256(name || 0x0A || 0x01 ||
public key), as signed-note says. An unsigned head is the text alone. The digest string
`leadledger digest` prints is the note base64-encoded behind `llh1:`, one word for a shell;
`parse_digest` takes that or the note as is.
"""

from __future__ import annotations

import binascii
import os
from collections import namedtuple
from pathlib import Path

TYPE_CHECKING = False  # typing itself is not imported: the offline receipt check loads little
if TYPE_CHECKING:  # the library loads when a key is used: an unsigned head needs none of it
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ledger.chain import sha256
from ledger.errors import InvalidInput
from ledger.i18n import N_, _, gettext

PREFIX = "llh1:"
ORIGIN = "leadledger"
MAX_SIZE = 2**63 - 1
MAX_NOTE = 16 * 1024  # a head with a few signatures is a few hundred bytes
MAX_KEY = 64 * 1024  # bytes: a key file (PEM) is about a hundred; more is no key
_DASH = "\u2014 "


# Named tuples, not dataclasses: those import `inspect`, a tenth of the check's start-up.
class NoteSignature(namedtuple("NoteSignature", "name key_id signature")):
    """name: str; key_id: bytes (4 bytes); signature: bytes."""

    __slots__ = ()

    def line(self) -> str:
        return f"{_DASH}{self.name} {b64(self.key_id + self.signature)}\n"


class TreeHead(namedtuple("TreeHead", "origin size root signatures", defaults=((),))):
    """origin: str; size: int; root: bytes; signatures: tuple[NoteSignature, ...]."""

    __slots__ = ()

    def text(self) -> str:
        """The checkpoint text: what a signature covers."""
        return f"{self.origin}\n{self.size}\n{b64(self.root)}\n"

    def note(self) -> str:
        if not self.signatures:
            return self.text()
        return self.text() + "\n" + "".join(s.line() for s in self.signatures)

    def digest(self) -> str:
        return PREFIX + b64(self.note().encode())

    def signed(self, key: Ed25519PrivateKey) -> TreeHead:
        """This head with the key's signature (in place of any earlier one by the same key)."""
        public = public_key_of(key)
        kid = key_id(self.origin, public)
        others = tuple(s for s in self.signatures if (s.name, s.key_id) != (self.origin, kid))
        mine = NoteSignature(self.origin, kid, key.sign(self.text().encode()))
        return self._replace(signatures=(mine, *others))

    def signature_by(self, public_key: bytes) -> bytes | None:
        """The signature on this head that names this key (not yet checked), if any."""
        kid = key_id(self.origin, public_key)
        return next((s.signature for s in self.signatures if (s.name, s.key_id) == (self.origin, kid)), None)

    def verify(self, public_key: bytes) -> bool:
        """Whether this key signed this head."""
        signature = self.signature_by(public_key)
        return signature is not None and verify_signature(public_key, signature, self.text().encode())


def origin_of(first_event_hash: str | None) -> str:
    """A log's origin: its first event's hash names it (the empty log has none of its own)."""
    return f"{ORIGIN}/{first_event_hash[:16]}" if first_event_hash else ORIGIN


def head(origin: str, size: int, root: bytes, signature: bytes | None = None,
         public_key: bytes | None = None) -> TreeHead:
    """A head from its parts, as a receipt or `digest` carries them (signature and key apart)."""
    if not _origin(origin):
        raise InvalidInput(_("invalid origin {origin}: printable ASCII without spaces or '+'", origin=repr(origin)))
    if not 0 <= size <= MAX_SIZE or len(root) != 32:
        raise InvalidInput(_("a tree head needs a size from 0 and a 32-byte root"))
    signatures: tuple[NoteSignature, ...] = ()
    if signature is not None and public_key is not None:
        signatures = (NoteSignature(origin, key_id(origin, public_key), signature),)
    return TreeHead(origin, size, root, signatures)


def _origin(text: str) -> bool:
    """Printable ASCII without a space or '+', 1 to 200 characters (str methods, not a regex:
    compiling one costs the offline check's start-up)."""
    return 0 < len(text) <= 200 and text.isascii() and text.isprintable() and " " not in text and "+" not in text


def key_id(name: str, public_key: bytes) -> bytes:
    return sha256(name.encode() + b"\n\x01" + public_key).digest()[:4]


def verify_signature(public_key: bytes, signature: bytes, message: bytes) -> bool:
    try:
        _public_key(public_key).verify(signature, message)
    except ValueError:  # not a key
        return False
    except Exception as e:
        from cryptography.exceptions import InvalidSignature  # noqa: PLC0415 - see TYPE_CHECKING above

        if isinstance(e, InvalidSignature):
            return False
        raise
    return True


def _public_key(raw: bytes) -> Ed25519PublicKey:
    """The library's Ed25519 public key (ValueError if `raw` is not one). Its public module loads `typing` and a serialisation
    layer before the native core, which doubles the library's cost to a signed receipt's
    check; the core's own constructor is the same key. Falls back if a release moves it."""
    try:
        from cryptography.hazmat.bindings._rust import openssl  # noqa: PLC0415

        return openssl.ed25519.from_public_bytes(raw)
    except (ImportError, AttributeError):  # pragma: no cover - by cryptography release
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey  # noqa: PLC0415

        return Ed25519PublicKey.from_public_bytes(raw)


# --- parsing ------------------------------------------------------------------------------

def parse_digest(text: str) -> TreeHead:
    """A tree head as `leadledger digest` prints it (or the note itself); InvalidInput if not."""
    text = (text or "").strip()
    if text.startswith(PREFIX):
        try:
            note = _a2b(text[len(PREFIX):]).decode()
        except (binascii.Error, ValueError):
            raise InvalidInput(_("malformed digest: the text after {prefix} is not base64 of a tree head", prefix=PREFIX),
                               digest=text) from None
        return parse_note(note)
    if "\n" in text:
        return parse_note(text + "\n")
    raise InvalidInput(_("malformed digest {digest}: expected {prefix}… as printed by `leadledger digest`",
                         digest=repr(text[:80]), prefix=PREFIX),
                       digest=text)


def parse_note(note: str) -> TreeHead:
    """A checkpoint, unsigned (its text alone) or as a signed note."""
    if len(note) > MAX_NOTE or any(c < " " and c != "\n" for c in note):
        raise InvalidInput(_("malformed tree head: too long, or holds control characters"))
    text, block = note, ""
    if "\n\n" in note:  # a signed note: the text, a blank line, the signature lines
        text, _blank, block = note.rpartition("\n\n")
        text += "\n"
    lines = text.split("\n")
    if len(lines) != 4 or lines[3] != "" or "\n\n" in note and not block:
        raise InvalidInput(_("malformed tree head: expected three lines (origin, tree size, base64 root)"))
    origin, size, root_text = lines[:3]
    if not (0 < len(size) <= 19 and size.isascii() and size.isdigit() and (size == "0" or size[0] != "0")) \
            or int(size) > MAX_SIZE:
        raise InvalidInput(_("malformed tree head: tree size {size} is not a number", size=repr(size[:30])))
    root = b64decode(root_text, 32, N_("root"))
    result = head(origin, int(size), root)
    return result._replace(signatures=tuple(_signature(line) for line in _lines(block)))


def _lines(block: str) -> list[str]:
    if block and not block.endswith("\n"):
        raise InvalidInput(_("malformed tree head: a signature line does not end"))
    return block.split("\n")[:-1] if block else []


def _signature(line: str) -> NoteSignature:
    name, _space, encoded = line.removeprefix(_DASH).partition(" ")
    if not line.startswith(_DASH) or not _origin(name) or " " in encoded:
        raise InvalidInput(_("malformed signature line {line}", line=repr(line[:60])))
    raw = b64decode(encoded, None, N_("signature"))
    if len(raw) < 5:
        raise InvalidInput(_("malformed signature line: too short"))
    return NoteSignature(name, raw[:4], raw[4:])


def b64(data: bytes) -> str:
    return binascii.b2a_base64(data, newline=False).decode()


def _a2b(text: str) -> bytes:
    """Standard base64, strictly (binascii, not the base64 module: a smaller start-up)."""
    return binascii.a2b_base64(text.encode("ascii"), strict_mode=True)


def b64decode(text: object, size: int | None, what: str) -> bytes:
    """Strict standard base64 (of `size` bytes when given); InvalidInput otherwise."""
    try:
        raw = _a2b(text) if isinstance(text, str) else None
    except (binascii.Error, ValueError):
        raw = None
    if raw is None or b64(raw) != text or size is not None and len(raw) != size:
        if size:
            raise InvalidInput(_("malformed {what}: not base64 of {size} bytes", what=gettext(what), size=size))
        raise InvalidInput(_("malformed {what}: not base64", what=gettext(what)))
    return raw


# --- keys ---------------------------------------------------------------------------------

def public_key_of(key: Ed25519PrivateKey) -> bytes:
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415

    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def parse_public_key(text: str) -> bytes:
    """A public key as `digest` prints it: base64 of 32 bytes."""
    raw = b64decode((text or "").strip(), 32, N_("public key"))
    try:
        _public_key(raw)
    except ValueError:
        raise InvalidInput(_("malformed public key: not an Ed25519 key")) from None
    return raw


def write_new_key(path: str | Path) -> Ed25519PrivateKey:
    """Make a key and write it (PEM, PKCS#8) to a new file only its owner may read."""
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: PLC0415

    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise InvalidInput(_("{path} already exists: a key is never overwritten", path=path), file=str(path)) from None
    except OSError as e:
        raise InvalidInput(_("cannot create {path}: {reason}", path=path, reason=e.strerror), file=str(path)) from None
    with os.fdopen(fd, "wb") as f:
        os.fchmod(f.fileno(), 0o600)  # whatever the umask
        f.write(pem)
    return key


def load_signing_key(path: str | Path) -> Ed25519PrivateKey:
    """A private key from a file: PEM (as `keygen` writes it) or the raw 32 bytes."""
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: PLC0415

    data = _key_bytes(path)
    try:
        key = (Ed25519PrivateKey.from_private_bytes(data) if len(data) == 32
               else serialization.load_pem_private_key(data, password=None))
    except (ValueError, TypeError):
        key = None
    if not isinstance(key, Ed25519PrivateKey):
        raise InvalidInput(_("{path} is not an unencrypted Ed25519 private key (PEM or raw)", path=path))
    return key


def _key_bytes(path: str | Path) -> bytes:
    """The bytes of a key file, up to one more than MAX_KEY (so /dev/zero ends)."""
    if not str(path):  # Path("") is the working directory: an empty name names no key
        raise InvalidInput(_("cannot read the signing key {path}: {reason}", path=repr(str(path)),
                             reason=_("not a valid file name")))
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_KEY + 1)
    except OSError as e:
        raise InvalidInput(_("cannot read the signing key {path}: {reason}", path=path, reason=e.strerror)) from None
    except ValueError:  # a NUL in the name (or a surrogate): no file has it
        raise InvalidInput(_("cannot read the signing key {path}: {reason}", path=repr(str(path)),
                             reason=_("not a valid file name"))) from None
    if len(data) > MAX_KEY:
        raise InvalidInput(_("cannot read the signing key {path}: {reason}", path=path,
                             reason=_("it is larger than {size} bytes", size=MAX_KEY)))
    return data
