"""Rebuilding every read model from position 0 beside the live tables, then swapping it in.

A rebuild fills fresh `*__rebuild` tables, with a tracking row of their own (and only the
indexes applying events needs: the others are built at the end, at once), and swaps them in
at the end in one transaction, so readers never see a half-built model. Killed at any
moment, it leaves the live tables as they were and its own progress committed; `finish`
(which `leadledger project` calls) goes on from there.
"""

from __future__ import annotations

from collections.abc import Callable

from ledger.store import Conflict
from projections.tables import NAME, REBUILD, Tables

Progress = Callable[[int], None] | None
# applies events to one set of tables: (tracking name, suffix, batch size, up to, progress)
# -> the position reached, or None when its tracking row went away
Run = Callable[[str, str, int, int | None, Progress], int | None]


class Rebuild:
    """A rebuild of `tables`, whose events `run` applies."""

    def __init__(self, tables: Tables, run: Run) -> None:
        self.tables = tables
        self.store = tables.store
        self.run = run

    def start(self) -> None:
        """Fresh, empty `*__rebuild` tables at position 0 (dropping an unfinished rebuild's),
        with only the indexes applying events reads by: the others are built at the end."""
        self.tables.ensure()
        with self.store.writing() as cur:
            db = self.tables.db(cur, REBUILD)
            # Lock order: the live tracking row first (it always exists, so a second rebuild
            # starting now waits here rather than creating the same tables beside this one).
            db.exec("UPDATE {tracking} SET position = position WHERE name = %s", [NAME])
            db.exec("DELETE FROM {tracking} WHERE name = %s", [NAME + REBUILD])
            for table in self.tables.table_names():
                db.exec(f"DROP TABLE IF EXISTS {{{table}}}")
            self.tables.create(db, REBUILD, every_index=False)
            db.exec("INSERT INTO {tracking} (name, position) VALUES (%s, 0)", [NAME + REBUILD])

    def finish(self, batch: int = 20000, progress: Progress = None) -> int | None:
        """Go on with a pending rebuild and swap it in; return the position swapped in, or None
        when no rebuild is pending (or another runner finished it meanwhile)."""
        while True:
            reached = self.run(NAME + REBUILD, REBUILD, batch, None, progress)
            if reached is None:
                return None
            try:
                self._index(reached)
                self._swap(reached)
            except Conflict:
                continue  # more was applied, or it was restarted or swapped in by another runner
            return reached

    def rebuild(self, batch: int = 20000, progress: Progress = None) -> int:
        """Build every model afresh from position 0 beside the live ones, then swap them in."""
        self.start()
        reached = self.finish(batch, progress)
        return self.tables.position() if reached is None else reached

    def _index(self, position: int) -> None:
        """Build the indexes a rebuild at `position` leaves for the end, beside the live tables
        (where indexes cannot be renamed, the swap builds them)."""
        if not self.store.renames_indexes:
            return
        with self.store.writing() as cur:
            db = self.tables.db(cur, REBUILD)
            db.exec("UPDATE {tracking} SET position = position WHERE name = %s AND position = %s",
                    [NAME + REBUILD, position])
            if cur.rowcount != 1:
                raise Conflict("the rebuild moved on, restarted or was swapped in meanwhile")
            self.tables.create_indexes(db, REBUILD)

    def _swap(self, position: int) -> None:
        """Swap the rebuilt tables in, in one transaction; events after `position` are
        applied to them by the next catch-up."""
        with self.store.writing() as cur:
            db = self.tables.db(cur)
            db.exec("UPDATE {tracking} SET position = %s WHERE name = %s", [position, NAME])
            db.exec("DELETE FROM {tracking} WHERE name = %s AND position = %s", [NAME + REBUILD, position])
            if cur.rowcount != 1:
                raise Conflict("the rebuild moved on, restarted or was swapped in meanwhile")
            for table in self.tables.table_names():
                live, fresh = self.store.table(table), self.store.table(table + REBUILD)
                self.store.copy_grants(cur, live, fresh)
                db.exec(f"DROP TABLE IF EXISTS {live}")
                db.exec(f"ALTER TABLE {fresh} RENAME TO {table}")
            for table, i, columns, _ in self.tables.index_list():
                self.store.rename_index(cur, f"{table}{REBUILD}_i{i}", f"{table}_i{i}",
                                        self.store.table(table), columns)
