"""The hash that links each stored event to the one before it in its stream.

It covers the stream id, the version, the previous event's hash, the recording time and the
event's exact bytes. Standard library only: the offline receipt check (receipt_check.py)
computes it without loading the codec.
"""

from __future__ import annotations

try:  # the interpreter's own SHA-256: the same digests, and unlike hashlib it does not load
    # OpenSSL, which cost the offline check more start-up than the rest of it (and is slower on
    # the tree's short messages). CPython 3.12 renamed it _sha2.
    from _sha256 import sha256
except ImportError:  # pragma: no cover - by Python version
    try:
        from _sha2 import sha256
    except ImportError:
        from hashlib import sha256

GENESIS = "0" * 64  # the "previous hash" of a stream's first event


def chain_hash(stream: str, version: int, prev: str, recorded_at: bytes, event: bytes, new=sha256) -> str:
    return chain_digest(stream, version, prev, recorded_at, event, new).hex()


def chain_digest(stream: str, version: int, prev: str, recorded_at: bytes, event: bytes, new=sha256) -> bytes:
    """The chain hash as bytes: `verify` takes the event's tree leaf from them as well."""
    return new(f"{stream}\n{version}\n{prev}\n".encode() + recorded_at + b"\n" + event).digest()
