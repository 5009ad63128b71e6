"""Text tables and label/value lines aligned by display width, not by character count.

A Chinese character takes two columns of a terminal (East Asian Width W or F), a Latin letter
one, a combining mark none; `str.ljust` counts them all as one and the columns drift.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from typing import Any

import click

from ledger.i18n import _


def display_width(text: str) -> int:
    """Columns `text` takes in a terminal: 2 for wide and full-width characters, 0 for
    combining marks and zero-width formatting characters, 1 otherwise."""
    if text.isascii():
        return len(text)
    width = 0
    for ch in text:
        if unicodedata.combining(ch) or unicodedata.category(ch) in ("Mn", "Me", "Cf"):
            continue
        width += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return width


def pad(text: str, width: int) -> str:
    """`text` followed by spaces up to `width` columns."""
    return text + " " * max(0, width - display_width(text))


def table_lines(rows: Sequence[dict[str, Any]], columns: Sequence[str],
                headers: Sequence[str] | None = None) -> list[str]:
    """The lines of an aligned table of the given columns (a heading line, then one per row)."""
    headers = list(headers or [c.upper().replace("_", " ") for c in columns])
    cells = [[cell(r.get(c)) for c in columns] for r in rows]
    widths = [max(display_width(h), *(display_width(row[i]) for row in cells))
              for i, h in enumerate(headers)]
    return ["  ".join(pad(v, w) for v, w in zip(line, widths, strict=True)).rstrip()
            for line in [headers, *cells]]


def table(rows: Sequence[dict[str, Any]], columns: Sequence[str], headers: Sequence[str] | None = None,
          empty: str | None = None) -> None:
    """Print an aligned text table, or `empty` (default "(none)") when there are no rows."""
    if not rows:
        click.echo(_("(none)") if empty is None else empty)
        return
    for line in table_lines(rows, columns, headers):
        click.echo(line)


def field_lines(pairs: Iterable[tuple[str, Any]]) -> list[str]:
    """Aligned `label  value` lines, skipping empty values."""
    pairs = [(k, v) for k, v in pairs if v not in (None, "", [], {})]
    if not pairs:
        return []
    width = max(display_width(k) for k, _v in pairs)
    return [f"{pad(k, width)}  {cell(v)}" for k, v in pairs]


def fields(pairs: Iterable[tuple[str, Any]]) -> None:
    """Print aligned `label  value` lines, skipping empty values."""
    for line in field_lines(pairs):
        click.echo(line)


def cell(value: Any) -> str:
    """How one value reads in a table (the same as commands/output.py's cells)."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if isinstance(value, (list, tuple)):
        return ", ".join(cell(v) for v in value) or "-"
    if isinstance(value, dict):
        return ", ".join(f"{k}={cell(v)}" for k, v in value.items())
    return str(value)
