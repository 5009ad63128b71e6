"""`lead erase`: a lead's personal data erased for good.

It deletes the lead's data key (its sealed fields can never be opened again) and its
duplicate-check hashes, blanks its follow-up notes in the read models, and records
`PersonalDataErased` — all in the one transaction of that event's append. On SQLite the
write-ahead log is then checkpointed and truncated, so no copy of a deleted page is left.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ledger import decisions, sealing
from ledger.acting import When
from ledger.context import Concern
from ledger.disclosure import is_erased
from ledger.errors import InvalidInput
from ledger.i18n import _
from ledger.state import Person, lead_stream
from ledger.values import format_time
from projections.tables import NAME, REBUILD, TRACKING

# read-model tables holding personal data, and how each is blanked (the live set and a
# rebuild's set); notes are NOT NULL there, so a blanked note is the empty text
BLANKED = {"follow_ups": "note = ''"}
MAX_REASON = 2000


class Erasure(Concern):
    def erase(self, actor: str, lead_id: str, reason: str, at: When = None) -> dict[str, Any]:
        def attempt(by: Person, when: datetime) -> dict[str, Any]:
            stored = self.repo.store.read_stream(lead_stream(lead_id))
            lead = self.repo.lead(lead_id, stored=stored)
            when = self.acting.when(self.acting.time(at), at, by, lead=lead)  # after the reads, as a retry re-reads
            plaintext = any(sealing.personal_of(s.event) for s in stored)
            event = decisions.erase_personal_data(by, lead, when, reason, erased=is_erased(stored),
                                                  plaintext_in_log=plaintext)
            self.repo.store.personal.secret()  # the key table exists (an older store: made now)
            done = self.repo.commit([lead.head], [event], also=lambda cur: self._blank(cur, lead_id))
            return {"lead": lead_id, "event": "PersonalDataErased", "position": done[0].position,
                    "erased": True, "plaintext_in_log": plaintext, "occurred_at": format_time(when)}

        def check() -> None:
            if not reason.strip() or len(reason) > MAX_REASON:
                raise InvalidInput(_("--reason must be 1 to {most} characters", most=MAX_REASON))

        result = self.acting.run(actor, "lead.erase", at, attempt, check)
        self.repo.store.truncate_log_file()
        return result

    def _blank(self, cur: Any, lead_id: str) -> None:
        """In the erasure's transaction: the key and hashes, then the read models' copies.

        First the tracking rows (live, then a rebuild's: the order every runner takes them
        in), which a batch of events holds until it commits: a batch that opened the lead's
        notes under its key before they were locked has committed them, to be blanked here,
        and one after finds the key gone."""
        store = self.repo.store
        tracking = store.table(TRACKING)
        if store.personal.table_exists(tracking, cur):
            for name in (NAME, NAME + REBUILD):
                cur.execute(f"UPDATE {tracking} SET position = position WHERE name = {store.param}", [name])
        store.personal.erase(cur, lead_id)
        for name, blank in BLANKED.items():
            for table in (store.table(name), store.table(name + REBUILD)):
                if store.personal.table_exists(table, cur):
                    cur.execute(f"UPDATE {table} SET {blank} WHERE lead = {store.param}", [lead_id])
