"""The read models' tables in the store's database, and the tracking table beside them that
holds the position each set of tables (the live one, a rebuild's) has reached."""

from __future__ import annotations

from ledger.store import Db, Store, failures
from projections.batch import Table, Written
from projections.model import ReadModel

TRACKING = "leadledger_tracking"
NAME = "read_models"
REBUILD = "__rebuild"


class Tables:
    """The tables of `models`: their names (with a suffix for a rebuild's set), creating them,
    and the tracking positions."""

    def __init__(self, store: Store, models: list[ReadModel]) -> None:
        self.store = store
        self.models = models
        self.specs: dict[str, Table] = {table: spec for model in models for table, spec in model.tables.items()}
        self._ready = False

    def table_names(self) -> list[str]:
        return [table for model in self.models for table in model.tables]

    def names(self, suffix: str = "") -> dict[str, str]:
        names = {"tracking": self.store.table(TRACKING)}
        for table in self.table_names():
            names[table] = self.store.table(table + suffix)
        return names

    def db(self, cur: object, suffix: str = "") -> Db:
        """A transaction on the set of tables named with `suffix`, on cursor `cur`."""
        return Db(cur, self.store, self.names(suffix))

    def index_list(self) -> list[tuple[str, int, str, bool]]:
        """(table, number, columns, whether applying events reads by it) of every index."""
        found = []
        for model in self.models:
            for i, index in enumerate(model.indexes):
                table, columns = index.split(":")
                found.append((table, i, columns, index in model.lookups))
        return found

    def written(self) -> Written:
        """What a run from empty tables remembers writing: for each table, the values of the
        columns applying events looks rows up by (its key, the first of each index it reads by)."""
        columns: dict[str, set[str]] = {table: set() for table in self.specs}
        for table, spec in self.specs.items():
            if len(spec.key) == 1 and not spec.fresh_keys:
                columns[table].add(spec.key[0])
        for table, _, index, lookup in self.index_list():
            if lookup:
                columns[table].add(index.split(",")[0].strip())
        return {table: {column: set() for column in found} for table, found in columns.items() if found}

    def create(self, db: Db, suffix: str = "", *, every_index: bool = True) -> None:
        """Create the tables named with `suffix`, and their indexes (or only those applying
        events reads by)."""
        db.exec("CREATE TABLE IF NOT EXISTS {tracking} (name TEXT PRIMARY KEY, position BIGINT NOT NULL)")
        for model in self.models:
            for table, spec in model.tables.items():
                db.exec(f"CREATE TABLE IF NOT EXISTS {{{table}}} ({spec.columns})")
        self.create_indexes(db, suffix, every_index=every_index)

    def create_indexes(self, db: Db, suffix: str, *, every_index: bool = True) -> None:
        for table, i, columns, lookup in self.index_list():
            if every_index or lookup:
                db.exec(f"CREATE INDEX IF NOT EXISTS {table}{suffix}_i{i} ON {{{table}}} ({columns})")

    def _exists(self) -> bool:
        """Whether the live tables and the tracking row are there (reads: no locks taken; as
        the store's single reads go, so that a query opens no other connection for them)."""
        tables = ", ".join(self.names().values())
        sql = self.db(None).sql
        try:
            self.store.query(sql(f"SELECT 1 FROM {tables} LIMIT 0"), [])
            return bool(self.store.query(sql("SELECT position FROM {tracking} WHERE name = %s"), [NAME]))
        except failures.PersistenceError:
            return False

    def ensure(self) -> None:
        """Create the live tables and the tracking row, unless they are there already."""
        if self._ready:
            return
        if not self._exists():
            try:
                with self.store.writing() as cur:
                    db = self.db(cur)
                    self.create(db)
                    db.exec("INSERT INTO {tracking} (name, position) VALUES (%s, 0) "
                            "ON CONFLICT (name) DO NOTHING", [NAME])
            except failures.PersistenceError:
                if not self._exists():  # not a concurrent creator that got there first
                    raise
        self._ready = True

    def position(self, name: str = NAME) -> int | None:
        """The position a set of tables has reached (None: no such set, e.g. no rebuild pending)."""
        self.ensure()
        rows = self.store.query(self.db(None).sql("SELECT position FROM {tracking} WHERE name = %s"), [name])
        return rows[0][0] if rows else None
