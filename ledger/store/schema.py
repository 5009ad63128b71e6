"""Table names, and the PostgreSQL DDL and grants that make the events table append-only
for every role but its owner."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ledger.errors import InvalidInput
from ledger.i18n import _

EVENTS_TABLE = "leadledger_events"
KEYS_TABLE = "leadledger_lead_keys"
APPEND_ONLY = "leadledger_append_only"


def keys_table_sql(table: str, blob: str) -> list[str]:
    """DDL (idempotent) of the lead-key index, `table` qualified as the backend names it, its
    keyed hashes of type `blob` (raw bytes; a store made before holds them as hex TEXT)."""
    return [
        f"CREATE TABLE IF NOT EXISTS {table} (kind TEXT NOT NULL, value {blob} NOT NULL, lead TEXT NOT NULL)",
        f"CREATE INDEX IF NOT EXISTS {KEYS_TABLE}_idx ON {table} (kind, value)",
    ]


def append_only_sql(schema: str) -> list[Any]:
    """DDL (idempotent) that makes the events table append-only in the database itself.

    A statement trigger refuses every UPDATE, DELETE and TRUNCATE of stored events,
    whoever runs it; only the table's owner can lift it (ALTER TABLE ... DISABLE
    TRIGGER), or a superuser. PUBLIC gets no right to change the table; roles are
    granted INSERT and SELECT only (`role_grants`).
    """
    from psycopg.sql import SQL, Identifier  # noqa: PLC0415 - PostgreSQL's only, not SQLite's

    names = {"schema": Identifier(schema), "table": Identifier(EVENTS_TABLE),
             "function": Identifier(APPEND_ONLY), "trigger": Identifier(APPEND_ONLY)}
    return [
        SQL(
            "CREATE OR REPLACE FUNCTION {schema}.{function}() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN RAISE EXCEPTION 'leadledger: % of stored events is refused: the event store is "
            "append-only', TG_OP USING ERRCODE = 'insufficient_privilege'; END $$"
        ).format(**names),
        SQL(
            "CREATE OR REPLACE TRIGGER {trigger} BEFORE UPDATE OR DELETE OR TRUNCATE "
            "ON {schema}.{table} FOR EACH STATEMENT EXECUTE FUNCTION {schema}.{function}()"
        ).format(**names),
        SQL("REVOKE UPDATE, DELETE, TRUNCATE ON {schema}.{table} FROM PUBLIC").format(**names),
    ]


def sqlite_append_only_sql() -> list[str]:
    """DDL (idempotent) that makes SQLite's events table append-only in the file itself:
    triggers refuse every UPDATE and DELETE of a stored event (SQLite has no TRUNCATE; a
    DELETE of every row meets the same trigger). Only someone who drops them can change
    events, and `verify` still finds what he changed."""
    return [
        f"CREATE TRIGGER IF NOT EXISTS {APPEND_ONLY}_{op.lower()} BEFORE {op} ON {EVENTS_TABLE} "
        f"BEGIN SELECT RAISE(ABORT, 'leadledger: {op} of stored events is refused: the event store "
        "is append-only'); END"
        for op in ("UPDATE", "DELETE")
    ]


def refuse_foreign(tables: Iterable[str], where: str) -> None:
    """`init` makes a store only where nothing else lives: a database (or schema) that holds
    tables but not the ledger's events table belongs to another application."""
    tables = sorted(tables)
    if tables and EVENTS_TABLE not in tables:
        shown = ", ".join(tables[:5]) + (", …" if len(tables) > 5 else "")
        raise InvalidInput(_("{where} holds another application's tables ({tables}); `init` changes "
                             "nothing there: choose a new file, or a PostgreSQL ?schema=NAME of its own",
                             where=where, tables=shown))


def role_grants(schema: str, read_schema: str, app: str, reader: str | None = None) -> list[Any]:
    """The grants the README recommends, run by the owner after `init`.

    `app` may append events and keep the read models current; `reader` may only read
    the read models. Tables the owner creates later in the read schema (a rebuild) get
    the same grants by default.
    """
    from psycopg.sql import SQL, Identifier  # noqa: PLC0415

    names = {"schema": Identifier(schema), "read": Identifier(read_schema),
             "events": Identifier(EVENTS_TABLE), "keys": Identifier(KEYS_TABLE),
             "data_keys": Identifier("leadledger_data_keys"), "secrets": Identifier("leadledger_secrets"),
             "seq": Identifier(f"{EVENTS_TABLE}_notification_id_seq"), "app": Identifier(app)}
    statements = [
        "GRANT USAGE ON SCHEMA {schema} TO {app}",
        "GRANT SELECT, INSERT ON {schema}.{events}, {schema}.{keys} TO {app}",
        # personal data (personal.py): an erasure deletes a lead's key and its hashes
        "GRANT SELECT, INSERT, DELETE ON {schema}.{keys}, {schema}.{data_keys} TO {app}",
        "GRANT SELECT ON {schema}.{secrets} TO {app}",
        "GRANT USAGE ON SEQUENCE {schema}.{seq} TO {app}",
        "GRANT USAGE ON SCHEMA {read} TO {app}",
        "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {read} TO {app}",
        "ALTER DEFAULT PRIVILEGES IN SCHEMA {read} GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {app}",
    ]
    if reader:
        names["reader"] = Identifier(reader)
        statements += [
            "GRANT USAGE ON SCHEMA {read} TO {reader}",
            "GRANT SELECT ON ALL TABLES IN SCHEMA {read} TO {reader}",
            "ALTER DEFAULT PRIVILEGES IN SCHEMA {read} GRANT SELECT ON TABLES TO {reader}",
        ]
    return [SQL(s).format(**names) for s in statements]
