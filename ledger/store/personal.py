"""The tables beside the event log that personal data needs: each lead's
data key, and the secret of the duplicate check's keyed hashes. A key can be deleted (an
erasure); an event cannot.

A deleted key leaves a row with no key behind (a tombstone), and key rows are only ever
inserted, never upserted: an erased lead can never get a key again, whatever path appends.

Data keys and the key index's hashes are raw bytes (BLOB, BYTEA), half the size of the hex
text a store made by an earlier version holds: each table is read and written in the form
its column has.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any

from ledger import events as ev
from ledger import sealing
from ledger.store.many import insert_many
from ledger.store.records import LeadKey, NewEvent

DATA_KEYS_TABLE = "leadledger_data_keys"
SECRETS_TABLE = "leadledger_secrets"
SECRET = "lead_keys"  # the row of the duplicate check's secret
ERASED = b""  # what `keys_of` gives for a lead whose key was deleted
UPGRADE_ATTEMPTS = 3
HASHES_KEPT = 100_000  # keys whose hashes are remembered (an import's batch, looked up then indexed)
Hash = bytes | str  # a keyed hash or a data key as its table holds it: raw, or hex in an older store


class PersonalData:
    """One store's key table and secret; `store` is the Store, `keys`, `secrets` and `index`
    its tables named as queries need them (the key index: the duplicate check's hashes)."""

    blob = "BLOB"  # the backend's type of raw bytes
    clustered = ""  # what makes a table keyed by its primary key alone

    def __init__(self, store: Any, keys: str, secrets: str, index: str, param: str) -> None:
        self.store = store
        self.keys, self.secrets, self.index, self.p = keys, secrets, index, param
        self._secret: bytes | None = None
        self._keyed: sealing.KeyHasher | None = None
        self._tables = False
        self._hashes: dict[tuple[str, str], Hash] = {}
        # whether the index holds raw hashes and the key table raw keys (else hex text): read
        # with the secret
        self.raw_hashes = self._raw_keys = True

    def ddl(self) -> list[str]:
        return [
            f"CREATE TABLE IF NOT EXISTS {self.keys} (lead TEXT PRIMARY KEY, key {self.blob}){self.clustered}",
            f"CREATE TABLE IF NOT EXISTS {self.secrets} (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
        ]

    table_sql: str  # a row if the table named exists, none if not

    def _select(self, sql: str, params: Sequence[Any], cur: Any = None) -> list[tuple]:
        """Rows read on `cur` (a transaction's), else as the store's single reads are (on
        PostgreSQL the thread's own connection, the one a lead's events were read on)."""
        if cur is None:
            return self.store.query(sql, params)
        cur.execute(sql, params)
        return cur.fetchall()

    def table_exists(self, table: str, cur: Any = None) -> bool:
        return bool(self._select(self.table_sql, [table], cur))

    column_sql: str  # the declared types of the index's `value` and the key table's `key`

    def _read_forms(self, cur: Any = None) -> None:
        types = dict(self._select(self.column_sql, [self.index, self.keys], cur))  # none for a table not made yet
        self.raw_hashes = types.get("value", self.blob).upper() == self.blob
        self._raw_keys = types.get("key", self.blob).upper() == self.blob

    # --- the duplicate check's secret ------------------------------------------------------

    def create(self, cur: Any) -> None:
        """At `init`, in its transaction: the tables and the secret (if not there yet); keys
        indexed in the clear by an earlier version are hashed then."""
        for statement in self.ddl():
            cur.execute(statement)
        p = self.p
        cur.execute(f"INSERT INTO {self.secrets} (name, value) VALUES ({p}, {p}) ON CONFLICT (name) DO NOTHING",
                    [SECRET, sealing.new_secret()])
        if cur.rowcount == 1:  # the store had no secret: its index holds plaintext keys
            self._read_forms(cur)
            self._hash_index(cur, self._secret_in(cur))

    def _secret_in(self, cur: Any) -> bytes:
        cur.execute(f"SELECT value FROM {self.secrets} WHERE name = {self.p}", [SECRET])
        return bytes.fromhex(cur.fetchone()[0])

    def _hash_index(self, cur: Any, secret: bytes) -> None:
        """Rewrite the key index with keyed hashes (the index is not the log: it may change)."""
        cur.execute(f"SELECT kind, value, lead FROM {self.index}")
        hasher = sealing.KeyHasher(secret, raw=self.raw_hashes)
        rows = [(kind, hasher(kind, value), lead) for kind, value, lead in cur.fetchall()]
        cur.execute(f"DELETE FROM {self.index}")
        if rows:
            p = self.p
            cur.executemany(f"INSERT INTO {self.index} (kind, value, lead) VALUES ({p}, {p}, {p})", rows)

    def secret(self) -> bytes:
        """The secret (read once per store object); a store made by an earlier version gets
        its tables and secret here, its key index hashed, all in one transaction."""
        if self._secret is None:
            self._secret = self._read_secret()
        if self._secret is None:
            for attempt in range(UPGRADE_ATTEMPTS):
                try:
                    with self.store.writing() as cur:
                        self.create(cur)
                        self._secret = self._secret_in(cur)
                        self._read_forms(cur)
                    break
                except Exception:  # a writer upgrading at the same moment: read what it made
                    if attempt == UPGRADE_ATTEMPTS - 1:
                        raise
            self._tables = True
        return self._secret

    def _read_secret(self) -> bytes | None:
        """The secret if the store has one (a read: an application role may not create tables)."""
        if not self.table_exists(self.secrets):
            return None
        rows = self.store.query(f"SELECT value FROM {self.secrets} WHERE name = {self.p}", [SECRET])
        if rows:
            self._read_forms()
        self._tables = bool(rows)
        return bytes.fromhex(rows[0][0]) if rows else None

    def _hash(self, kind: str, value: str) -> Hash:
        """A key's hash, remembered: an import hashes each key to look it up, then to index it."""
        found = self._hashes.get((kind, value))
        if found is None:
            if len(self._hashes) >= HASHES_KEPT:
                self._hashes.clear()
            found = self._hashes[(kind, value)] = self._hasher()(kind, value)
        return found

    def _hasher(self) -> sealing.KeyHasher:
        if self._keyed is None:
            secret = self.secret()  # and the index's form with it
            self._keyed = sealing.KeyHasher(secret, raw=self.raw_hashes)
        return self._keyed

    def hashed(self, keys: Sequence[LeadKey]) -> list[LeadKey]:
        return [LeadKey(k.kind, self._hash(k.kind, k.value), k.lead) for k in keys]

    def hashed_rows(self, keys: Sequence[tuple[str, str, str]]) -> list[tuple[str, Hash, str]]:
        known, get = self._hashes.get, self._hash
        return [(kind, known((kind, value)) or get(kind, value), lead) for kind, value, lead in keys]

    def hashed_pairs(self, pairs: Sequence[tuple[str, str]]) -> dict[tuple[str, Hash], tuple[str, str]]:
        """Each (kind, hash) to look up, mapped back to the (kind, value) it stands for."""
        if len(self._hashes) + len(pairs) > HASHES_KEPT:  # forget before a batch, not midway through it
            self._hashes.clear()
        hashes, keyed = self._hashes, self._hasher()
        inner, outer = keyed.pads()  # `keyed(kind, value)` inlined: a call costs as much as the hash
        raw = keyed.raw
        found = {}
        for pair in pairs:
            digest = hashes.get(pair)
            if digest is None:
                h = inner()
                h.update(f"{pair[0]}\n{pair[1]}".encode())
                o = outer()
                o.update(h.digest())
                digest = hashes[pair] = o.digest() if raw else o.hexdigest()
            found[(pair[0], digest)] = pair
        return found

    # --- data keys -------------------------------------------------------------------------

    def keys_of(self, leads: Sequence[str]) -> dict[str, bytes]:
        """The data keys of these leads (ERASED for an erased one; absent: none was made)."""
        leads = list(dict.fromkeys(leads))
        if not leads:
            return {}
        if not self._tables:
            if not self.table_exists(self.keys):
                return {}  # a store no version with sealing has written to
            self._tables = True
        return {lead: (bytes.fromhex(key) if isinstance(key, str) else bytes(key)) if key else ERASED
                for lead, key in self._key_rows(leads)}

    def _key_rows(self, leads: list[str]) -> list[tuple[str, Hash | None]]:
        """On the connection the lead's events were read on (`Store.query`): no other to open."""
        rows = []
        for i in range(0, len(leads), 500):
            chunk = leads[i:i + 500]
            rows += self.store.query(
                f"SELECT lead, key FROM {self.keys} WHERE lead IN ({', '.join([self.p] * len(chunk))})", chunk)
        return rows

    def seal(self, events: Sequence[NewEvent]) -> tuple[list[NewEvent], list[tuple[str, Hash]]]:
        """The events as they are stored (personal fields sealed), and the key rows to insert
        with them: a new key for each lead added, and for a lead added before sealing (it has
        no key row) at its first sealed follow-up. An erased lead (a tombstone) gets none: its
        notes are not stored."""
        if not any(isinstance(e.event, sealing.SEALED_TYPES) for e in events):
            return list(events), []
        wanted = [e.event.lead for e in events
                  if isinstance(e.event, ev.FollowUpLogged) and e.event.note is not None]
        known = self.keys_of(wanted) if wanted else {}
        new: dict[str, bytes] = {}
        sealed = []
        # a key and a nonce for each event at most, each kind drawn from the OS in one call
        count = len(events)
        for e, fresh, nonce in zip(events, sealing.random_pieces(count, sealing.KEY_BYTES),
                                   sealing.random_pieces(count, sealing.NONCE_BYTES), strict=True):
            event = e.event
            if isinstance(event, ev.LeadAdded):
                key = new[event.lead] = fresh
            elif isinstance(event, ev.FollowUpLogged) and event.note is not None:
                key = new.get(event.lead) or known.get(event.lead)  # ERASED (b"") for a tombstone: no key again
                if key is None:
                    key = new[event.lead] = fresh
            else:
                sealed.append(e)
                continue
            sealed.append(NewEvent(e.stream, e.version, e.prev,
                                   sealing.seal(event, key or None, e.stream, e.version, nonce)))
        self.secret()  # the tables exist before a key row goes in, and their form is known
        return sealed, list(new.items()) if self._raw_keys else [(lead, key.hex()) for lead, key in new.items()]

    def insert_keys(self, cur: Any, rows: Sequence[tuple[str, Hash]]) -> None:
        """Inside an append: insert new key rows (a lead with a row already fails the append)."""
        if rows:
            cur.executemany(f"INSERT INTO {self.keys} (lead, key) VALUES ({self.p}, {self.p})", list(rows))

    def erase(self, cur: Any, lead: str) -> None:
        """Inside an append: delete the lead's key (leaving a tombstone) and its hashes (the
        tables are made first: `secret()`, outside the append)."""
        p = self.p
        cur.execute(f"DELETE FROM {self.keys} WHERE lead = {p}", [lead])
        cur.execute(f"INSERT INTO {self.keys} (lead, key) VALUES ({p}, NULL)", [lead])
        cur.execute(f"DELETE FROM {self.index} WHERE lead = {p}", [lead])


class SQLitePersonal(PersonalData):
    clustered = " WITHOUT ROWID"  # a key row is one B-tree entry, not a row and an index entry
    table_sql = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?"

    def insert_keys(self, cur: Any, rows: Sequence[tuple[str, Hash]]) -> None:
        insert_many(cur, self.keys, "lead, key", 2, sorted(rows))  # in index order, as on PostgreSQL

    column_sql = ("SELECT c.name, c.type FROM sqlite_master AS t, pragma_table_info(t.name) AS c "
                  "WHERE (t.name = ? AND c.name = 'value') OR (t.name = ? AND c.name = 'key')")


COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # COPY's binary format: signature, flags, extension
COPY_TRAILER = b"\xff\xff"
_two_fields = struct.Struct("!hi").pack  # 2 fields; the first's length
_length = struct.Struct("!i").pack


class PostgresPersonal(PersonalData):
    table_sql = "SELECT 1 WHERE to_regclass(%s) IS NOT NULL"
    blob = "BYTEA"

    column_sql = ("SELECT attname, format_type(atttypid, NULL) FROM pg_attribute "
                  "WHERE (attrelid = to_regclass(%s) AND attname = 'value') "
                  "OR (attrelid = to_regclass(%s) AND attname = 'key')")

    def _key_rows(self, leads: list[str]) -> list[tuple[str, Hash | None]]:
        """One array parameter, however many leads (a read-model batch names thousands)."""
        return self.store.query(f"SELECT lead, key FROM {self.keys} WHERE lead = ANY(%s)", [leads])

    def insert_keys(self, cur: Any, rows: Sequence[tuple[str, Hash]]) -> None:
        """Many rows (an import) go by COPY, unless the connection is pipelining (which COPY cannot)."""
        if len(rows) < 100 or cur.connection.pgconn.pipeline_status:
            super().insert_keys(cur, rows)
            return
        parts = [COPY_SIGNATURE]
        for lead, key in sorted(rows):  # in index order
            lead_bytes = lead.encode()
            raw = key if isinstance(key, bytes) else key.encode()  # a BYTEA's binary form is its bytes
            parts += (_two_fields(2, len(lead_bytes)), lead_bytes, _length(len(raw)), raw)
        parts.append(COPY_TRAILER)
        with cur.copy(f"COPY {self.keys} (lead, key) FROM STDIN (FORMAT BINARY)") as copy:
            copy.write(b"".join(parts))
