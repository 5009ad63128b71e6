"""An import's scratch files: what a dry run remembers of its keys, and the ids it has seen."""

from __future__ import annotations

import os

from ledger.scratch import ScratchIds, ScratchKeys


def test_a_dry_runs_keys_are_found_again_and_are_not_on_disk_in_the_clear():
    keys = ScratchKeys()
    try:
        keys.add([("phone", "13800138000", "L-1"), ("email", "wang@example.cn", "L-1")])
        keys.add([("phone", "13800138000", "L-2")])  # the first lead keeps the key
        found = keys.find([("phone", "13800138000"), ("email", "wang@example.cn"), ("phone", "13900000000")])
        assert found == {("phone", "13800138000"): "L-1", ("email", "wang@example.cn"): "L-1"}
        folder = os.path.dirname(keys.path)
        on_disk = b"".join(open(os.path.join(folder, f), "rb").read() for f in os.listdir(folder))
        assert b"L-1" in on_disk  # the file is where the rows are ...
        assert b"13800138000" not in on_disk and b"wang@example.cn" not in on_disk  # ... but not the values
    finally:
        keys.close()


def test_ids_keep_their_first_mark_past_the_memory_limit():
    ids = ScratchIds(keep=3)
    try:
        marks = [ids.setdefault(f"L-{i % 5}", i) for i in range(10)]
        assert marks == [0, 1, 2, 3, 4, 0, 1, 2, 3, 4]
    finally:
        ids.close()
