"""Excel workbooks and the CSV files people open in Excel.

Reading uses python-calamine (Rust; reads a 100,000-row sheet about as fast as Python reads
the same rows as CSV, and gives date cells as dates). Writing uses XlsxWriter in its
constant-memory mode: rows go to disk as they come, so an export of any size stays small.
A CSV file's text encoding is found here too: Excel on a Chinese Windows machine writes GB18030.
"""

from __future__ import annotations

import codecs
import csv
import json
import sys
import traceback
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from datetime import date, datetime, time
from itertools import chain, islice
from typing import IO, Any

from ledger.errors import InvalidInput
from ledger.feeds import EVENT_COLUMNS, event_row, write_rows
from ledger.i18n import _
from ledger.values import format_time

ZIP_MAGIC = b"PK\x03\x04"
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # .xls, or an .xlsx saved with a password
MAX_ROWS = 1_048_576  # one Excel sheet, header row included
MAX_TEXT = 32_767  # characters in one Excel cell
BOM = "\ufeff"


def workbook_kind(path: str, head: bytes) -> str | None:
    """'xlsx' when the file is an Excel workbook by its content (whatever its name), else None;
    a zip or Office file that is not one raises InvalidInput."""
    if head.startswith(OLE_MAGIC):
        raise InvalidInput(_("{path} is an old Excel .xls workbook or one with a password: "
                             "save it as .xlsx (without a password) or as CSV", path=path))
    if not head.startswith(ZIP_MAGIC):
        return None
    try:
        with zipfile.ZipFile(path) as z:
            names = set(z.namelist())
    except (zipfile.BadZipFile, OSError) as e:
        raise InvalidInput(_("{path} is a damaged zip file, not a readable workbook ({reason})", path=path, reason=e)) from None
    if "xl/workbook.xml" in names:
        return "xlsx"
    if "xl/workbook.bin" in names:
        raise InvalidInput(_("{path} is an Excel binary workbook (.xlsb): save it as .xlsx or CSV", path=path))
    raise InvalidInput(_("{path} is a zip archive, not an Excel workbook", path=path))


def text_encoding(path: str, head: bytes, forced: str | None) -> str:
    """The encoding to read the file in: `forced`, else UTF-8 (BOM or not), else GB18030 (which
    covers GBK and GB2312). The whole file must decode, else the file is refused."""
    if forced:
        try:
            b"x".decode(forced, "ignore")  # a text encoding, not e.g. base64
            name = codecs.lookup(forced).name
        except LookupError:
            raise InvalidInput(_("unknown text encoding {encoding} (e.g. utf-8, gb18030, big5)", encoding=repr(forced))) from None
        name = "utf-8-sig" if name == "utf-8" else name
        if (near := _undecodable(path, name)) is not None:
            raise InvalidInput(_("{path} is not {encoding} text (near line {line})", path=path, encoding=forced, line=near))
        return name
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) and _undecodable(path, "utf-16") is None:
        return "utf-16"  # Excel's "Unicode text"
    if b"\x00" in head:
        raise InvalidInput(_("{path} is neither a text file (CSV, JSON Lines) nor an Excel workbook", path=path))
    for name in ("utf-8-sig", "gb18030"):
        if (near := _undecodable(path, name)) is None:
            return name
        if name == "utf-8-sig":
            first_bad = near
    raise InvalidInput(_("{path} is neither UTF-8 nor GB18030 text (not UTF-8 near line {line}): "
                         "name its encoding with --encoding", path=path, line=first_bad))


def _undecodable(path: str, encoding: str) -> int | None:
    """None when the whole file decodes, else the line near the first bad byte."""
    decoder = codecs.getincrementaldecoder(encoding)()
    line = 1
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                try:
                    decoder.decode(block)
                except UnicodeDecodeError as e:
                    return line + block[:max(e.start, 0)].count(b"\n")
                line += block.count(b"\n")
            decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return line
    except OSError as e:
        raise InvalidInput(_("cannot read {path}: {reason}", path=path, reason=e.strerror)) from None
    return None


def open_sheet(path: str) -> Any:
    """The first sheet of a workbook, or InvalidInput."""
    import python_calamine as pc  # only an Excel import needs it loaded

    try:
        book = pc.CalamineWorkbook.from_path(path)
        if not book.sheet_names:
            raise InvalidInput(_("{path}: the workbook has no sheet", path=path))
        return book.get_sheet_by_index(0)
    except pc.PasswordError:
        raise InvalidInput(_("{path}: the workbook has a password", path=path)) from None
    except (pc.CalamineError, ValueError, OSError) as e:
        raise InvalidInput(_("{path}: cannot read the workbook ({reason})", path=path,
                                     reason=str(e).splitlines()[0] if str(e) else e)) from None


def sheet_rows(sheet: Any, after: int = 0) -> Iterator[tuple[int, list[Any]]]:
    """(sheet row number, cells) of the non-blank rows below row `after`. calamine gives rows
    from the sheet's row 1 (the leading empty ones too), so the count is the row number."""
    for number, cells in islice(enumerate(sheet.iter_rows(), 1), after, None):
        if cells.count("") != len(cells):
            yield number, cells


def cell_text(value: Any) -> str:
    """A cell as it reads back from CSV: numbers as their digits, dates as local times."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, (date, time)):
        return value.isoformat()
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def write_rejects(path: str, header: Sequence[str], items: Iterable[tuple[int, Sequence[Any], str]]) -> int:
    """The rejected rows as CSV for Excel (UTF-8 with a BOM): the file's own columns, then `line`
    and `error`, so they can be fixed and imported again. Returns how many rows. An OSError is
    the caller's to report: it may write under a temporary name, and knows the file it meant."""
    count = 0
    with open(path, "w", encoding="utf-8-sig", newline="", errors="backslashreplace") as f:  # a lone surrogate
        out = csv.writer(f, lineterminator="\r\n")
        out.writerow([*header, "line", "error"])
        for line, cells, error in items:
            row = [cell_text(c) for c in cells[:len(header)]]
            out.writerow([*row, *[""] * (len(header) - len(row)), line, error])
            count += 1
    return count


def _excel_value(value: Any) -> Any:
    """Times as text (the ledger's UTC form), big integers as text (Excel keeps 15 digits)."""
    if isinstance(value, datetime):
        return format_time(value)
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return value if abs(value) < 10**15 else str(value)
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    if isinstance(value, (float, str)):
        return value
    return str(value)


def write_xlsx(path: str, columns: Sequence[str], rows: Iterable[Sequence[Any] | dict[str, Any]],
               sheet: str = "export") -> int:
    """Rows (tuples in `columns` order, or dicts by column) as a one-sheet workbook with a
    header row; times as text. Returns how many rows."""
    import xlsxwriter  # only an Excel export needs it loaded
    import xlsxwriter.exceptions

    book = xlsxwriter.Workbook(path, {"constant_memory": True, "strings_to_numbers": False,
                                      "strings_to_formulas": False, "strings_to_urls": False})
    ws = book.add_worksheet(sheet[:31])
    bold = book.add_format({"bold": True})
    ws.write_row(0, 0, list(columns), bold)
    ws.freeze_panes(1, 0)
    count = 0
    for row in rows:
        if count + 1 >= MAX_ROWS:
            raise InvalidInput(_("more than {rows} rows do not fit one Excel sheet: export as csv or jsonl", rows=MAX_ROWS - 1))
        cells = [row.get(c) for c in columns] if isinstance(row, dict) else row
        count += 1
        for col, value in enumerate(cells):
            value = _excel_value(value)
            if isinstance(value, str):
                ws.write_string(count, col, value[:MAX_TEXT])
            elif value is not None:
                ws.write(count, col, value)
    try:
        book.close()
    except xlsxwriter.exceptions.FileCreateError as e:  # an OSError inside: the caller names the file it meant
        error = e.args[0] if e.args and isinstance(e.args[0], OSError) else OSError(str(e))
        _drop_quietly(error)
        raise error from None
    return count


def _drop_quietly(error: BaseException) -> None:
    """Free what a failed workbook write left open: its half-written zip file, whose own clean-up
    fails again (the disk is still full) and would print "Exception ignored" and a traceback."""
    hook = sys.unraisablehook
    sys.unraisablehook = lambda unraisable: None
    try:
        traceback.clear_frames(error.__traceback__)
    finally:
        sys.unraisablehook = hook


def check_export(fmt: str, path: str | None, bom: bool) -> None:
    """Export options that do not go together are bad input."""
    if bom and fmt != "csv":
        raise InvalidInput(_("--bom applies to --format csv only"))
    if fmt == "xlsx" and not path:
        raise InvalidInput(_("--format xlsx needs --out FILE (a workbook is not written to a terminal)"))


def write_export(rows: Iterator[dict[str, Any]], fmt: str, out: IO[str] | None, *, path: str | None = None,
                 events: bool = False, columns: list[str] | None = None, bom: bool = False) -> int:
    """An export in `fmt`: xlsx to `path`; csv (with a BOM when asked) or jsonl to `out`."""
    check_export(fmt, path if fmt == "xlsx" else "-", bom)
    if fmt == "xlsx":
        if events:
            return write_xlsx(path, [*EVENT_COLUMNS, "data"], map(event_row, rows))
        if columns is None:
            first = next(rows, None)
            columns = list(first) if first else []
            rows = chain([first], rows) if first else iter(())
        return write_xlsx(path, columns, rows)
    if bom and out is not None:
        out.write(BOM)
    return write_rows(rows, fmt, out, events=events, columns=columns)
