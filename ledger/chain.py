"""The hash that links each stored event to the one before it in its stream.

It covers the stream id, the version, the previous event's hash, the recording time and the
event's exact bytes. Standard library only: the offline receipt check (receipt_check.py)
computes it without loading the codec.
"""

from __future__ import annotations

import hashlib

GENESIS = "0" * 64  # the "previous hash" of a stream's first event


def chain_hash(stream: str, version: int, prev: str, recorded_at: bytes, event: bytes) -> str:
    h = hashlib.sha256()
    h.update(f"{stream}\n{version}\n{prev}\n".encode())
    h.update(recorded_at)
    h.update(b"\n")
    h.update(event)
    return h.hexdigest()
