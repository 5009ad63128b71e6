"""The Ledger: one object over a store, with a method for every CLI command.

Other apps may call these methods directly. Write methods take the acting person's id first
and an optional `at` (business time); they return plain dicts, or raise a `LedgerError`.
Each method hands the work to the object for its concern: people, pools, leads, ownership,
disputes (writes); queries and evidence (reads); integrity; feeds (read models, change feed).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ledger.acting import When
from ledger.arguments import checked_methods
from ledger.context import Concern, Context
from ledger.errors import InvalidInput, LedgerError
from ledger.i18n import _
from ledger.repository import Holdings, Repository
from ledger.shapes import event_dict
from ledger.state import CONVERTED, HELD, POOLED
from ledger.store import Store, open_store
from ledger.values import parse_count, parse_position

if TYPE_CHECKING:  # each loaded when first used: a query loads only what it asks
    from ledger.asof import AsOf
    from ledger.disputes import Disputes
    from ledger.erasure import Erasure
    from ledger.evidence import Evidence
    from ledger.feeds import Feeds, Progress
    from ledger.heads import Heads
    from ledger.integrity import Integrity
    from ledger.leads import Leads
    from ledger.ownership import Ownership
    from ledger.people import People
    from ledger.period import Period
    from ledger.pools import Pools
    from ledger.queries import Queries

Result = dict[str, Any]


@checked_methods
class Ledger(Concern):
    """An ownership ledger over one store (a SQLite file or a PostgreSQL database); `views` is
    the read models' runner (on a store it may not write: a replay of the events)."""

    def __init__(self, store: Store | str | None = None, *, clock: Callable[[], datetime] | None = None):
        self.store = store if isinstance(store, Store) else open_store(store)
        self.clock = clock or (lambda: datetime.now(UTC))
        super().__init__(Context(self.store, self.clock, type(self)._commit))

    # Each concern's object is made on first use, its module imported then: `owner` loads
    # neither the writers nor the read models, `--help` none of the ledger.

    @functools.cached_property
    def people(self) -> People:
        from ledger.people import People  # noqa: PLC0415

        return People(self.context)

    @functools.cached_property
    def pools(self) -> Pools:
        from ledger.pools import Pools  # noqa: PLC0415

        return Pools(self.context)

    @functools.cached_property
    def leads(self) -> Leads:
        from ledger.leads import Leads  # noqa: PLC0415

        return Leads(self.context)

    @functools.cached_property
    def ownership(self) -> Ownership:
        from ledger.ownership import Ownership  # noqa: PLC0415

        return Ownership(self.context)

    @functools.cached_property
    def disputes(self) -> Disputes:
        from ledger.disputes import Disputes  # noqa: PLC0415

        return Disputes(self.context)

    @functools.cached_property
    def queries(self) -> Queries:
        from ledger.queries import Queries  # noqa: PLC0415

        return Queries(self.context)

    @functools.cached_property
    def evidence(self) -> Evidence:
        from ledger.evidence import Evidence  # noqa: PLC0415

        return Evidence(self.repo, self.views, self.models)

    @functools.cached_property
    def feeds(self) -> Feeds:
        from ledger.feeds import Feeds  # noqa: PLC0415

        return Feeds(self.store, self.views, self.models)

    @functools.cached_property
    def asof(self) -> AsOf:
        from ledger.asof import AsOf  # noqa: PLC0415

        return AsOf(self.context)

    @functools.cached_property
    def period(self) -> Period:
        from ledger.period import Period  # noqa: PLC0415

        return Period(self.store, self.repo)

    @functools.cached_property
    def erasure(self) -> Erasure:
        from ledger.erasure import Erasure  # noqa: PLC0415

        return Erasure(self.context)

    def close(self) -> None:
        self.context.close()
        self.store.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def check_reader(self, actor_id: str | None) -> None:
        """Read commands need no actor; when one is named he must be known and active."""
        self.acting.reader(actor_id)

    # --- set-up and people --------------------------------------------------------------

    def init(self, admin: str, name: str, at: When = None) -> Result:
        """Create the store (idempotent) and register its first admin."""
        return self.people.init(admin, name, at)

    def add_person(self, actor: str, person_id: str, name: str, role: str, team: str | None = None,
                   at: When = None) -> Result:
        return self.people.add(actor, person_id, name, role, team, at)

    def deactivate_person(self, actor: str, person_id: str, reassign_to: str | None = None,
                          at: When = None) -> Result:
        """Deactivate a person; each lead he holds goes back to its pool (or to `reassign_to`)."""
        return self.people.deactivate(actor, person_id, reassign_to, at)

    def person_list(self) -> Result:
        return self.people.listing()

    # --- pools --------------------------------------------------------------------------

    def create_pool(self, actor: str, pool_id: str, name: str, at: When = None, **rules: Any) -> Result:
        return self.pools.create(actor, pool_id, name, at, **rules)

    def change_rules(self, actor: str, pool_id: str, at: When = None, **rules: Any) -> Result:
        return self.pools.change_rules(actor, pool_id, at, **rules)

    def grant(self, actor: str, pool_id: str, people: list[str], at: When = None) -> Result:
        return self.pools.membership(actor, pool_id, people, at, grant=True)

    def revoke(self, actor: str, pool_id: str, people: list[str], at: When = None) -> Result:
        return self.pools.membership(actor, pool_id, people, at, grant=False)

    def pool_list(self) -> Result:
        return self.pools.listing()

    def pool_show(self, pool_id: str, at: When = None, upto: int | str | None = None) -> Result:
        """A pool now, or as of `at` (business time) or `upto` (a log position)."""
        return self.asof.pool_show(pool_id, at, upto)

    # --- leads --------------------------------------------------------------------------

    def add_lead(self, actor: str, lead_id: str, pool_id: str, *, allow_duplicate: bool = False,
                 claim: bool = False, at: When = None, **fields: Any) -> Result:
        if claim:  # one who may not claim is refused before the lead is added
            self.acting.actor(actor, "claim")
        added = self.leads.add(actor, lead_id, pool_id, allow_duplicate=allow_duplicate, at=at, **fields)
        if claim:
            added["claim"] = self.ownership.claim(actor, lead_id, at=at)
        return added

    def import_leads(self, actor: str, pool_id: str, rows: Iterable[tuple[int, dict[str, Any] | str]],
                     *, allow_duplicate: bool = False, at: When = None, batch: int | None = None,
                     progress: Callable[[int], None] | None = None, dry_run: bool = False) -> Result:
        """Import (line, fields) rows; a row given as a string is a parse error for that line.

        Rows are appended in batches, each all or nothing; a re-run skips leads that already exist.
        A row with an `owner` is a lead he holds already. With `dry_run`, every
        check is made and nothing written. Ctrl-C raises `ImportInterrupted` (a KeyboardInterrupt)
        whose `report` counts what was committed.
        """
        from ledger.importer import IMPORT_BATCH, Importer  # noqa: PLC0415

        rows = _pairs(rows)
        return Importer(self.repo, self.acting).run(actor, pool_id, rows, allow_duplicate=allow_duplicate, at=at,
                                                    batch=IMPORT_BATCH if batch is None else batch, progress=progress, dry_run=dry_run)

    def lead_show(self, lead_id: str, at: When = None, upto: int | str | None = None) -> Result:
        """A lead now, or as of `at` (business time) or `upto` (a log position); its personal
        fields opened, or null once erased."""
        if at is None and upto is None:
            return self.leads.show(lead_id)
        return self.asof.lead_show(lead_id, at, upto)

    def erase_lead(self, actor: str, lead_id: str, reason: str, at: When = None) -> Result:
        """Erase a lead's personal data for good: admins only."""
        return self.erasure.erase(actor, lead_id, reason, at)

    # --- ownership ----------------------------------------------------------------------

    def claim(self, actor: str, lead_id: str, at: When = None) -> Result:
        return self.ownership.claim(actor, lead_id, at)

    def release(self, actor: str, lead_id: str, reason: str | None = None, at: When = None) -> Result:
        return self.ownership.release(actor, lead_id, reason, at)

    def follow_up(self, actor: str, lead_id: str, note: str, channel: str = "other", at: When = None) -> Result:
        return self.ownership.follow_up(actor, lead_id, note, channel, at)

    def convert(self, actor: str, lead_id: str, deal: str | None = None, at: When = None) -> Result:
        return self.ownership.convert(actor, lead_id, deal, at)

    def assign(self, actor: str, lead_id: str, to: str, reason: str | None = None, at: When = None) -> Result:
        return self.ownership.assign(actor, lead_id, to, reason, at)

    def reassign(self, actor: str, lead_id: str, to: str, reason: str, at: When = None) -> Result:
        return self.ownership.reassign(actor, lead_id, to, reason, at)

    def move(self, actor: str, lead_id: str, to_pool: str, reason: str | None = None, at: When = None) -> Result:
        return self.ownership.move(actor, lead_id, to_pool, reason, at)

    def sweep(self, actor: str, now: When = None, dry_run: bool = False) -> Result:
        """Issue due recycle warnings and recycle overdue leads, each lead on its own."""
        return self.ownership.sweep(actor, now, dry_run)

    # --- disputes -----------------------------------------------------------------------

    def open_dispute(self, actor: str, lead_id: str, reason: str, at: When = None) -> Result:
        return self.disputes.open(actor, lead_id, reason, at)

    def resolve_dispute(self, actor: str, dispute_id: str, *, award: str | None = None, uphold: bool = False,
                        rationale: str, at: When = None) -> Result:
        """Rule on a dispute: award the lead to a rep (a reassignment naming the dispute) or uphold."""
        return self.disputes.resolve(actor, dispute_id, award=award, uphold=uphold, rationale=rationale, at=at)

    def dispute_show(self, dispute_id: str) -> Result:
        """A dispute with the evidence to settle it."""
        return self.evidence.show(dispute_id)

    def dispute_list(self, open_only: bool = False) -> Result:
        return self.evidence.listing(open_only)

    # --- queries ------------------------------------------------------------------------

    def owner(self, lead_id: str, at: When = None, upto: int | str | None = None) -> Result:
        """Who owned the lead at `at` (default now), or when the log ended at `upto`."""
        return self.queries.owner(lead_id, at, upto)

    def history(self, lead_id: str) -> Result:
        return self.queries.history(lead_id)

    def holdings(self, rep: str, at: When = None, upto: int | str | None = None) -> Result:
        """What a rep holds now, or as of `at` (business time) or `upto` (a log position)."""
        return self.queries.holdings(rep, at, upto)

    def report(self, start: When, end: When, pool: str | None = None, rep: str | None = None) -> Result:
        """What happened in the business-time period [start, end)."""
        return self.period.report(start, end, pool, rep)

    def explain(self, lead_id: str, at: When = None) -> Result:
        """Why the lead is where it is: the event that put it there, the rules and facts checked."""
        return self.queries.explain(lead_id, at)

    # --- integrity, read models and the change feed -------------------------------------

    def verify(self, digest: str | None = None, progress: Callable[[int], None] | None = None) -> Result:
        """Recompute every chain (and, given a digest, prove the log extends it)."""
        return self.integrity.verify(digest, progress)

    @functools.cached_property
    def integrity(self) -> Integrity:
        """Verify: loaded when first asked for, like `heads`."""
        from ledger.integrity import Integrity  # noqa: PLC0415

        return Integrity(self.store)

    @functools.cached_property
    def heads(self) -> Heads:
        """Tree heads and receipts: loaded when first asked for (they need the crypto library,
        which no other command does)."""
        from ledger.heads import Heads  # noqa: PLC0415

        return Heads(self.store)

    def digest(self, upto: int | None = None, signing_key: str | None = None) -> Result:
        """The log's tree head (at position `upto`), signed with the key in `signing_key`."""
        return self.heads.digest(None if upto is None else parse_position(upto, "--upto"), signing_key)

    def receipt(self, position: int, digest: str | None = None, signing_key: str | None = None) -> Result:
        """The receipt of the event at `position`: its inclusion in the log's tree head."""
        return self.heads.receipt(parse_position(position), digest, signing_key)

    def project(self, rebuild: bool = False, progress: Progress | None = None) -> Result:
        """Bring the read models up to date (with `rebuild`, rebuilt from position 0)."""
        return self.feeds.project(rebuild, progress)

    def follow(self, stop: threading.Event | None = None, on_batch: Callable[[int], None] | None = None,
               on_error: Callable[[Exception, float], None] | None = None, poll: float = 0.5) -> None:
        """Keep the read models current as events arrive, until `stop` is set or interrupted."""
        self.feeds.follow(stop, on_batch, on_error, poll)

    def export(self, model: str, since: int = 0, at: When = None,
               upto: int | str | None = None) -> tuple[list[str], Iterator[Result]]:
        """The columns and rows of a read model (as of `at` or `upto`, if given), or of the
        events after position `since`."""
        return self.feeds.export(model, parse_position(since, "--since"), at, upto, self.clock)

    def iter_events(self, since: int = 0, batch: int = 5000) -> Iterator[Result]:
        """The change feed: every event after position `since`, in position order."""
        return self.feeds.iter_events(parse_position(since, "--since"), parse_count(batch, "batch", minimum=1))

    # --- old names, kept for callers that used them -----------------------------------

    # The step every command's append takes, a Repository function (called with the
    # repository); looked up when a Ledger is made, so that wrapping `Ledger._commit` first
    # holds or counts every append of the ledgers made after.
    _commit = Repository.append

    def _desk(self, rep: str, pool: str) -> Holdings:
        """A rep's holdings in a pool."""
        return self.repo.holdings(rep, pool)


def _pairs(rows: Any) -> Iterable[tuple[int, dict[str, Any] | str]]:
    """An import's rows as (line, fields or a parse error): anything else given for one is that
    row's error, not a TypeError halfway through the file. A file's rows (`read_rows`) are
    pairs already, and say as they are read which columns they ignored: they go as they are."""
    if isinstance(rows, (str, bytes, dict)) or not isinstance(rows, Iterable):
        raise InvalidInput(_("rows must be (line, fields) pairs, not {value}", value=repr(rows)[:40]))
    return rows if hasattr(rows, "ignored_columns") else _checked_pairs(rows)


def _checked_pairs(rows: Iterable[Any]) -> Iterator[tuple[int, dict[str, Any] | str]]:
    for number, row in enumerate(rows, 1):
        if isinstance(row, tuple) and len(row) == 2 and type(row[0]) is int and isinstance(row[1], (dict, str)):
            yield row
        else:
            line = row[0] if isinstance(row, tuple) and row and type(row[0]) is int else number
            yield line, _("not a (line, fields) pair: {value}", value=repr(row)[:40])


__all__ = ["CONVERTED", "HELD", "POOLED", "Ledger", "LedgerError", "event_dict"]
