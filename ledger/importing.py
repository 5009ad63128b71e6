"""Reading lead files for `lead import`: CSV, Excel .xlsx or JSON Lines.

`read_rows` checks the file as a whole first — what it is (by content, not by name), its
encoding, its header — so an unreadable file imports nothing at all. Then its rows come out,
one at a time, as (line, fields), where `line` is the 1-based physical line of the file (a
CSV header is line 1; in a workbook, the sheet's row number), or as (line, "what is wrong").
A CSV file whose quote is never closed is refused whole: that quote would make every row
after it one cell, and nothing says where the row meant to end.
Nothing here touches the store.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Collection, Iterator, Sequence
from itertools import chain, islice
from pathlib import Path
from typing import Any

from ledger.cells import (
    FIELDS, NAMES, TIME_FIELDS, Rejected, RowError, header_key, moment, parse_mapping, text, zone,
)
from ledger.errors import InvalidInput
from ledger.i18n import N_, _
from ledger.scratch import ScratchIds
from ledger.spreadsheets import cell_text, open_sheet, sheet_rows, text_encoding, workbook_kind
from ledger.values import MAX_ID, check_id

__all__ = ["FIELDS", "LeadFile", "count_rows", "read_rows"]

Row = tuple[int, "dict[str, Any] | str"]
HEAD = 1 << 16  # bytes looked at to tell a workbook, a binary file and text apart
JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json")


def read_rows(path: str, *, encoding: str | None = None, tz: str | None = None,
              mapping: dict[str, str] | Sequence[str] | None = None) -> LeadFile:
    """Check the file can be read and its header is sound; iterate the result for its rows.

    `encoding` forces a text encoding; `tz` is the zone of times without an offset (IANA,
    default UTC); `mapping` is {column: field} or `--map COLUMN=FIELD` strings."""
    zone_ = zone(tz)
    names = parse_mapping(list(mapping)) if mapping is not None and not isinstance(mapping, dict) \
        else {header_key(k): v for k, v in (mapping or {}).items()}
    head = _head(path)
    if not head.strip():
        raise InvalidInput(_("{path} is empty", path=path))
    if workbook_kind(path, head) == "xlsx":
        return LeadFile(path, "xlsx", zone_, names)
    enc = text_encoding(path, head, encoding)
    kind = "jsonl" if Path(path).suffix.lower() in JSONL_SUFFIXES or _first_line(path, enc).startswith("{") \
        else "csv"
    return LeadFile(path, kind, zone_, names, encoding=enc)


def _head(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read(HEAD)
    except OSError as e:
        raise InvalidInput(_("cannot read {path}: {reason}", path=path, reason=e.strerror)) from None


def _first_line(path: str, encoding: str) -> str:
    with open(path, encoding=encoding, newline="") as f:
        for line in f:
            if line.strip():
                return line.lstrip("\ufeff \t")
    return ""


def count_rows(path: str) -> int:
    """About how many rows a text file has (its line count), for a progress bar."""
    try:
        with open(path, "rb") as f:
            return sum(buf.count(b"\n") for buf in iter(lambda: f.read(1 << 20), b""))
    except OSError as e:
        raise InvalidInput(_("cannot read {path}: {reason}", path=path, reason=e.strerror)) from None


def sniff_delimiter(line: str) -> str:
    """Comma, semicolon or tab: whichever the header line holds most of (comma on a tie)."""
    counts = {d: line.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=lambda d: (counts[d], d == ","))
    return best if counts[best] else ","


class LeadFile:
    """One import file whose header has been read: iterate it (as often as needed) for its rows.

    `header` is the file's own column names, `ignored_columns` those that name no field."""

    def __init__(self, path: str, kind: str, tz: Any, mapping: dict[str, str], *, encoding: str | None = None):
        self.path, self.kind, self.tz, self.mapping, self.encoding = path, kind, tz, mapping, encoding
        self.delimiter, self.skip_lines, self.header_line = ",", 0, 0
        self.header: list[str] = []
        self.ignored_columns: list[str] = []
        self.columns: list[tuple[int, str]] = []  # (cell index, field)
        self._plan: list[tuple[int, str, bool]] = []  # and whether a text cell is taken as it is
        self._sheet: Any = None
        self._json_keys: dict[str, str] = {}
        if kind == "xlsx":
            self._sheet = open_sheet(path)
            first = next(sheet_rows(self._sheet), None)
            if first is None:
                raise InvalidInput(_("{path}: the first sheet is empty", path=path))
            self.header_line, cells = first
            self._read_header([cell_text(c) for c in cells])
        elif kind == "csv":
            self._csv_header()

    # --- the header --------------------------------------------------------------------

    def _csv_header(self) -> None:
        with self._open() as f:
            first = f.readline()
            hint = first.lstrip("\ufeff").rstrip("\r\n")
            if hint[:4].lower() == "sep=" and len(hint) == 5:  # Excel's "sep=;" line
                self.delimiter, self.skip_lines = hint[4], 1
                f.seek(0)
                f.readline()
            else:
                probe = first
                while probe and not probe.strip():  # blank lines above the header
                    probe = f.readline()
                self.delimiter = sniff_delimiter(probe)
                f.seek(0)
            reader = csv.reader(f, delimiter=self.delimiter)
            try:
                header = next(reader, [])
                while not "".join(header).strip():
                    header = next(reader)
            except StopIteration:
                raise InvalidInput(_("{path} has no header row (it is empty)", path=self.path)) from None
            except csv.Error as e:
                raise InvalidInput(_("{path}: cannot read the CSV header: {reason}", path=self.path, reason=e)) from None
            self.header_line = self.skip_lines + reader.line_num
        self._check_quotes()
        self._read_header(header)

    def _check_quotes(self) -> None:
        """Refuse a file with a quote that is never closed, naming the line of the row it is
        in. The rows are read as they will be, then one line holding a quote: a row that
        takes that line in was still inside quotes at the end of the file."""
        with self._open() as f:
            reader = csv.reader(chain(islice(f, self.skip_lines, None), ['"\n']), delimiter=self.delimiter)
            start = 0
            while True:
                first = reader.line_num + 1
                try:
                    next(reader)
                except StopIteration:
                    break
                except csv.Error:  # e.g. a cell over the size limit: if it runs over lines, its quote is open
                    if reader.line_num > first:
                        start = first
                        break
                    continue
                start = first
        if start < reader.line_num:
            raise InvalidInput(_("{path}: a quote opened in the row on line {line} is never closed, so every row "
                                 "after it would be read as one cell: close it (a quote inside a cell is "
                                 "written twice, \"\") and import again", path=self.path, line=self.skip_lines + start))

    def _read_header(self, names: list[str]) -> None:
        path = self.path
        self.header = [n.replace("\ufeff", "").strip() for n in names]
        keys = [header_key(n) for n in names]
        seen: dict[str, str] = {}
        for name, key in zip(self.header, keys, strict=True):
            if key and key in seen:
                raise InvalidInput(_("{path}: the header names column {column} twice: each column needs its own name",
                                   path=path, column=repr(name)))
            seen[key] = name
        missing = [c for c in self.mapping if c not in seen]
        if missing:
            raise InvalidInput(_("{path}: --map names column {column}, which the file does not have (columns: {columns})",
                                 path=path, column=repr(missing[0]), columns=", ".join(n for n in self.header if n)))
        by_field: dict[str, str] = {}
        chosen = set(self.mapping.values())
        for i, (name, key) in enumerate(zip(self.header, keys, strict=True)):
            field = self.mapping.get(key) or (NAMES.get(key) if NAMES.get(key) not in chosen else None)
            if field is None:
                if key:
                    self.ignored_columns.append(name)
                continue
            if field in by_field:
                raise InvalidInput(_("{path}: columns {first} and {second} both mean {field}: "
                                     "say which one to use with --map {column}={field}", path=path,
                                     first=repr(by_field[field]), second=repr(name), column=name, field=field))
            by_field[field] = name
            self.columns.append((i, field))
        self._plan = [(i, field, field not in TIME_FIELDS and field != "phone") for i, field in self.columns]
        if "id" not in by_field:
            raise InvalidInput(_("{path}: no id column: name one id or 编号 (or use --map COLUMN=id); columns: {columns}",
                                 path=path, columns=", ".join(n for n in self.header if n) or _("(none)")))

    # --- the rows ----------------------------------------------------------------------

    def __iter__(self) -> Iterator[Row]:
        seen = ScratchIds()
        convert = self._json_fields if self.kind == "jsonl" else self._fields
        try:
            for line, cells in self._cells():
                if isinstance(cells, str):
                    yield line, cells
                    continue
                try:
                    yield line, convert(line, cells, seen)
                except RowError as e:
                    yield line, Rejected(str(e), e.code)
        finally:
            seen.close()

    def size_hint(self) -> int:
        """About how many rows, for a progress bar."""
        if self._sheet is not None:
            return max(self._sheet.total_height - self.header_line, 0)
        return count_rows(self.path)

    def _open(self):  # noqa: ANN202
        try:
            return open(self.path, encoding=self.encoding, newline="")  # noqa: SIM115
        except OSError as e:
            raise InvalidInput(_("cannot read {path}: {reason}", path=self.path, reason=e.strerror)) from None

    def _cells(self) -> Iterator[tuple[int, Any]]:
        """(line, cells) of every data row: a list (CSV, sheet), a dict (JSON), or an error."""
        if self.kind == "xlsx":
            return sheet_rows(self._sheet, after=self.header_line)
        if self.kind == "jsonl":
            return self._json_objects()
        return self._csv_cells()

    def _csv_cells(self) -> Iterator[tuple[int, list[str] | str]]:
        with self._open() as f:
            for _skipped in range(self.skip_lines):
                f.readline()
            reader = csv.reader(f, delimiter=self.delimiter)
            before = self.skip_lines
            while reader.line_num + before < self.header_line:
                next(reader)
            while True:
                start = before + reader.line_num + 1
                try:
                    row = next(reader)
                except StopIteration:
                    return
                except csv.Error as e:
                    yield start, Rejected(_("broken CSV: {reason}", reason=e), "malformed_row")
                    continue
                if "".join(row).strip():  # a blank line (or only separators and spaces) is skipped
                    yield start, row

    def _json_objects(self) -> Iterator[tuple[int, dict[str, Any] | str]]:
        with self._open() as f:
            for line_no, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as e:
                    yield line_no, Rejected(_("invalid JSON: {reason}", reason=e.msg), "malformed_row")
                    continue
                yield line_no, obj if isinstance(obj, dict) else \
                    Rejected(_("each line must be a JSON object"), "malformed_row")

    def _fields(self, line: int, cells: list[Any], seen: ScratchIds) -> dict[str, Any]:
        """A CSV or sheet row's fields; text as it is (the ledger trims it), times parsed."""
        width = len(self.header)
        if len(cells) != width and (len(cells) < width or "".join(map(str, cells[width:])).strip()):
            raise RowError(_("expected {width} fields, found {found}", width=width, found=len(cells)),
                           "malformed_row")
        out: dict[str, Any] = {}
        error = None
        tz = self.tz
        for i, field, plain in self._plan:
            value = cells[i]
            if plain and type(value) is str:
                out[field] = value
                continue
            if type(value) is float and field not in TIME_FIELDS and value.is_integer():
                out[field] = str(int(value))  # an Excel number: its digits (a phone too)
                continue
            try:
                out[field] = moment(field, value, tz) if field in TIME_FIELDS else text(field, value)
            except RowError as e:
                error = error or e
        return _checked(out, error, line, seen)

    def _json_fields(self, line: int, obj: dict[str, Any], seen: ScratchIds) -> dict[str, Any]:
        """A JSON object's fields: its keys read like column names; an unknown key is ignored
        and listed, as an unknown column is."""
        out: dict[str, Any] = {}
        error = None
        for key, value in obj.items():
            field = self._json_keys.get(key)
            if field is None:
                field = self._json_keys[key] = self.mapping.get(header_key(key)) or NAMES.get(header_key(key)) or ""
                if not field:
                    self.ignored_columns.append(key)
            if not field:
                continue
            try:
                if field in out:
                    raise RowError(_("two keys mean {field}", field=field))
                if field in TIME_FIELDS:
                    out[field] = moment(field, value, self.tz)
                elif value is not None:
                    out[field] = text(field, value, json=True)
            except RowError as e:
                error = error or e
        return _checked(out, error, line, seen)

    # --- rejected rows, as the file has them ----------------------------------------------

    def rejects(self, rejected: Collection[dict[str, Any]]) -> tuple[list[str], list[tuple[int, list[Any], str]]]:
        """The columns and (line, cells, error) of rejected rows, read again from the file, for
        `spreadsheets.write_rejects`. Only the rejected lines are held, never the whole file."""
        errors = {r["line"]: r["error"] for r in rejected}
        if self.kind == "jsonl":
            return self._json_rejects(errors)
        items = []
        for line, cells in self._cells():
            if line in errors:
                items.append((line, cells if isinstance(cells, list) else [], errors.pop(line)))
        items.extend((line, [], error) for line, error in errors.items())  # e.g. a broken quote
        return self.header, sorted(items, key=lambda item: item[0])

    def _json_rejects(self, errors: dict[int, str]) -> tuple[list[str], list[tuple[int, list[Any], str]]]:
        objects: list[tuple[int, dict[str, Any], str]] = []
        with self._open() as f:
            for line_no, line in enumerate(islice(f, max(errors, default=0)), 1):
                if line_no in errors:
                    try:
                        obj = json.loads(line)
                    except json.JSONDecodeError:
                        obj = None
                    objects.append((line_no, obj if isinstance(obj, dict) else {"json": line.rstrip("\r\n")},
                                    errors[line_no]))
        columns = list(dict.fromkeys(k for _, obj, _ in objects for k in obj))
        return columns, [(line, [obj.get(c) for c in columns], error) for line, obj, error in objects]


def _checked(fields: dict[str, Any], error: RowError | None, line: int, seen: ScratchIds) -> dict[str, Any]:
    """The row's fields, or its first error. Its id counts as seen even when the row is
    rejected: a later row repeating it is rejected too, naming the earlier line."""
    lead_id = fields.get("id")
    key = lead_id.strip() if isinstance(lead_id, str) else ""
    if key and not (key.isprintable() and len(key) <= MAX_ID and ":" not in key):
        try:  # an id that can never be imported is not kept as seen (a scratch file stores no surrogate)
            check_id(key, N_("lead id"))
        except InvalidInput as e:
            raise RowError(e.message, "invalid_id") from None
    if key:
        earlier = seen.setdefault(key, line)
        if earlier != line:
            raise RowError(_("id {id} repeats line {line}", id=repr(key[:40]), line=earlier), "repeated_id")
    if error is not None:
        raise error
    return fields
