"""Reading lead files for `lead import`: CSV with a header row, or JSON Lines.

Rows come out as (line, fields), where `line` is the 1-based physical line of the file
(a CSV header is line 1); a row that cannot be read comes out as (line, "what is wrong").
"""

from __future__ import annotations

import codecs
import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path

from ledger.errors import InvalidInput

FIELDS = ("id", "company", "contact", "phone", "email", "region", "industry", "source")


def _open(path: str) -> io.TextIOWrapper:
    try:
        return open(path, encoding="utf-8-sig", newline="")  # noqa: SIM115
    except OSError as e:
        raise InvalidInput(f"cannot read {path}: {e.strerror}") from None


def is_jsonl(path: str) -> bool:
    if Path(path).suffix.lower() in (".jsonl", ".ndjson", ".json"):
        return True
    with _open(path) as f:
        try:
            for line in f:
                if line.strip():
                    return line.lstrip().startswith("{")
        except UnicodeDecodeError:
            raise InvalidInput(f"{path} is not UTF-8 text") from None
    return False


def count_rows(path: str) -> int:
    try:
        with open(path, "rb") as f:
            return sum(buf.count(b"\n") for buf in iter(lambda: f.read(1 << 20), b""))
    except OSError as e:
        raise InvalidInput(f"cannot read {path}: {e.strerror}") from None


def check_utf8(path: str) -> None:
    """The whole file must be UTF-8 text: an unreadable file imports nothing at all."""
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    line = 1
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                try:
                    decoder.decode(block)
                except UnicodeDecodeError as e:
                    near = line + block[:max(e.start, 0)].count(b"\n")
                    raise InvalidInput(f"{path} is not UTF-8 text (near line {near})") from None
                line += block.count(b"\n")
            decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise InvalidInput(f"{path} is not UTF-8 text (it ends inside a character)") from None
    except OSError as e:
        raise InvalidInput(f"cannot read {path}: {e.strerror}") from None


def read_rows(path: str) -> Iterator[tuple[int, dict[str, str] | str]]:
    """Check the file can be read and its header is sound, then yield its rows."""
    check_utf8(path)
    jsonl = is_jsonl(path)
    f = _open(path)
    if jsonl:
        return _jsonl(f, path)
    reader = csv.reader(f)
    try:
        header = [h.strip().lower() for h in next(reader, [])]
    except (UnicodeDecodeError, csv.Error) as e:
        f.close()
        raise InvalidInput(f"{path}: cannot read the CSV header: {e}") from None
    if not header or "id" not in header:
        f.close()
        raise InvalidInput(f"{path}: the CSV header must name an 'id' column (fields: {', '.join(FIELDS)})")
    unknown = [h for h in header if h not in FIELDS and h != "lead"]
    if unknown:
        f.close()
        raise InvalidInput(f"{path}: unknown CSV column(s) {', '.join(unknown)} (fields: {', '.join(FIELDS)})")
    return _csv(f, reader, header, path)


def _csv(f: io.TextIOWrapper, reader, header: list[str], path: str) -> Iterator[tuple[int, dict[str, str] | str]]:
    with f:
        while True:
            start = reader.line_num + 1
            try:
                row = next(reader)
            except StopIteration:
                return
            except UnicodeDecodeError:
                yield start, "not UTF-8 text"
                return
            except csv.Error as e:
                yield start, f"broken CSV: {e}"
                continue
            if not "".join(row).strip():  # a blank line (or only commas and spaces)
                continue
            if len(row) != len(header):
                yield start, f"expected {len(header)} fields, found {len(row)}"
                continue
            yield start, dict(zip(header, row, strict=True))


def _jsonl(f: io.TextIOWrapper, path: str) -> Iterator[tuple[int, dict[str, str] | str]]:
    with f:
        line_no = 0
        while True:
            try:
                line = f.readline()
            except UnicodeDecodeError:
                yield line_no + 1, "not UTF-8 text"
                return
            if not line:
                return
            line_no += 1
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                yield line_no, f"invalid JSON: {e.msg}"
                continue
            if not isinstance(obj, dict):
                yield line_no, "each line must be a JSON object"
                continue
            yield line_no, obj
