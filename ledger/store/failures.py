"""The event-sourcing library's persistence errors (`failures.PersistenceError`, ...), loaded
on first use.

Only appends and the library's recorders need the library; a query of a SQLite store never
does. Code that catches these errors names them here, which costs nothing until an exception
is on its way; a SQLite read that fails raises one, and loads the library then.
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    from eventsourcing import persistence  # noqa: PLC0415 - see the module's docstring

    return getattr(persistence, name)
