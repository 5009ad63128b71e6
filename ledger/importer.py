"""lead import: the rows of a lead file into the ledger.

Rows go in batches, each appended all or nothing (`Store.append_bulk`); a re-run skips the
leads already in. A plain row is one `LeadAdded`. A row with an `owner` is a lead a rep
already holds: it is also assigned to him, his holdings move on by one and his last
follow-up is recorded. Those events go on the lead's stream and on his holdings stream at
its next versions, so a claim of his that lands meanwhile takes a version the batch wants:
the batch loses the race (Conflict) and is decided again from what is stored then.

A dry run makes every check the import makes and writes nothing; the keys its earlier
batches would have stored are kept in a scratch file, not in memory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, NamedTuple

from ledger import decisions
from ledger import events as ev
from ledger.acting import Acting, When
from ledger.cells import Rejected, Row, parse_row, reason
from ledger.codec import GENESIS
from ledger.scratch import ScratchIds, ScratchKeys
from ledger.errors import LedgerError
from ledger.i18n import _
from ledger.repository import Holdings, Repository, holdings_stream, stream_of
from ledger.state import Head, Person, Pool, lead_stream, person_stream, pool_stream
from ledger.store import Conflict, NewEvent
from ledger.values import check_at
from projections.runner import collector_paused

IMPORT_BATCH = 10_000  # leads per appended (all-or-nothing) batch
HELD_BATCH = 2_000  # held rows per batch at most: a batch that loses a race to a claim is re-done whole
Rows = Iterable[tuple[int, "dict[str, Any] | str"]]


class ImportInterrupted(KeyboardInterrupt):
    """Ctrl-C during an import. `report` counts what was committed before it: whole batches."""

    def __init__(self, report: dict[str, Any]):
        super().__init__("the import was interrupted")
        self.report = report


def new_report(dry_run: bool = False, ignored_columns: Sequence[str] = ()) -> dict[str, Any]:
    return {"imported": 0, "skipped_existing": 0, "duplicates": [], "rejected": [], "assigned": 0,
            "over_limit": [], "ignored_columns": list(ignored_columns), "dry_run": dry_run, "rows": 0}


@dataclass
class Outcome:
    """What one batch does; the report takes it once the batch is in."""

    events: list[NewEvent] = field(default_factory=list)
    keys: list[tuple[str, str, str]] = field(default_factory=list)
    imported: int = 0
    skipped: int = 0
    duplicates: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)
    assigned: int = 0
    held: dict[str, int] = field(default_factory=dict)  # rep -> leads of the pool he holds after it


@dataclass
class Job:
    by: Person
    pool: Pool
    at: datetime
    allow_duplicate: bool
    report: dict[str, Any]
    book: ScratchKeys | None  # a dry run's: the keys of its earlier batches
    floors: list[tuple[str, datetime | None]]  # what no time of a row is before: the pool, the importer
    ignored: Sequence[str]  # the file's columns (JSON keys) that name no field, found as rows are read
    held: dict[str, int] = field(default_factory=dict)  # rep -> held after the batches done
    pending: Outcome | None = None  # the batch being appended
    flight: Flight | None = None  # the batch being appended in the background


class Flight(NamedTuple):
    """A batch appended by the import's writer thread while the next one is decided."""

    chunk: list[Row]
    outcome: Outcome
    done: Future[int]  # the last position it took


Owners = dict[str, "tuple[Person, Holdings] | str"]  # owner -> himself and his holdings, or why not


class Importer:
    def __init__(self, repo: Repository, acting: Acting):
        self.repo = repo
        self.acting = acting

    def run(self, actor: str, pool_id: str, rows: Rows, *, allow_duplicate: bool = False, at: When = None,
            batch: int = IMPORT_BATCH, progress: Callable[[int], None] | None = None,
            dry_run: bool = False) -> dict[str, Any]:
        """Import (line, fields) rows; a row given as a string is a parse error for that line.
        With `dry_run`, check everything and write nothing. Ctrl-C raises ImportInterrupted."""
        by = self.acting.actor(actor, "lead.import")
        when = self.acting.time(at)
        pool = self.repo.pool(pool_id)
        decisions.check_member(by, pool)
        decisions.check_when(when, self.acting.clock(), by, pool)
        floors = [(_("the creation of pool {pool}", pool=pool.id), pool.created_at),
                  (_("the registration of {person}", person=by.id), by.registered_at)]
        ignored = getattr(rows, "ignored_columns", ())
        job = Job(by, pool, when, allow_duplicate, new_report(dry_run, ignored), ScratchKeys() if dry_run else None,
                  floors, ignored)
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="leadledger-import")
        try:
            with collector_paused():  # the rows and batches make no cycles to collect
                self._read(job, rows, batch, progress)
        except KeyboardInterrupt:
            self._settle(job)
            raise ImportInterrupted(summary(job)) from None
        finally:
            self._writer.submit(self.repo.store.close_thread)  # its connection ends with it
            self._writer.shutdown()
            if job.book is not None:
                job.book.close()
        return summary(job)

    def _read(self, job: Job, rows: Rows, batch: int, progress: Callable[[int], None] | None) -> None:
        report = job.report
        seen_ids = ScratchIds()  # marked with the row's number
        chunk: list[Row] = []
        held = 0
        try:
            for line, fields in rows:
                report["rows"] += 1
                row = parse_row(line, fields, job.at, job.floors)
                if isinstance(row, str):
                    report["rejected"].append(rejection(line, row))
                    continue
                if seen_ids.setdefault(row.lead, report["rows"]) != report["rows"]:
                    report["skipped_existing"] += 1
                    continue
                chunk.append(row)
                held += row.held is not None
                if len(chunk) >= batch or held >= HELD_BATCH:
                    self._flush(job, chunk, progress)
                    chunk, held = [], 0
        finally:
            seen_ids.close()
        if chunk:
            self._flush(job, chunk, progress)
        self._land(job, progress)

    def _flush(self, job: Job, chunk: list[Row], progress: Callable[[int], None] | None) -> None:
        """Decide a batch while the one before it is appended by the writer thread, then hand
        it over. Its look-ups could not see the keys of the batch in flight: they are taken
        from it instead, and the append does not look them up again if only that batch was
        stored since (`ours`). If that batch loses a race, both are decided again in turn.
        Held rows and dry runs go one batch at a time (a held row moves its owner's streams)."""
        if job.book is not None or any(row.held for row in chunk):
            self._land(job, progress)
            self._again(job, chunk, progress)
            return
        store = self.repo.store
        checked_at, outcome = self._decide_batch(job, chunk, job.flight.outcome.keys if job.flight else ())
        bulk = store.prepare_bulk(outcome.events, outcome.keys) if outcome.events else None
        ours = self._land(job, progress)
        if ours is False:
            self._again(job, chunk, progress)
        elif bulk is None:
            _take(job, outcome)
            if progress:
                progress(len(chunk))
        else:
            job.flight = Flight(chunk, outcome, self._writer.submit(
                store.append_bulk, outcome.events, keys=outcome.keys, unique_keys=not job.allow_duplicate,
                checked_at=checked_at, prepared=bulk, ours=ours))

    def _land(self, job: Job, progress: Callable[[int], None] | None) -> tuple[int, int] | bool | None:
        """Wait for the batch in flight and take it: the positions (after, last) it took;
        False if it lost a race and was decided and appended again; None if none was in flight."""
        flight = job.flight
        if flight is None:
            return None
        try:
            last = flight.done.result()
        except Conflict:
            job.flight = None
            self._again(job, flight.chunk, progress)
            return False
        job.flight = None
        _take(job, flight.outcome)
        if progress:
            progress(len(flight.chunk))
        return last - len(flight.outcome.events), last

    def _again(self, job: Job, chunk: list[Row], progress: Callable[[int], None] | None) -> None:
        """Decide and append a batch in this thread until it does not lose a race."""
        self.repo.retry(lambda: self._batch(job, chunk))
        if progress:
            progress(len(chunk))

    def _batch(self, job: Job, chunk: list[Row]) -> None:
        """Decide one batch and append it (or none, on a lost race: Conflict, and it is redone)."""
        checked_at, outcome = self._decide_batch(job, chunk, ())
        job.pending = outcome
        if job.book is not None:
            job.book.add(outcome.keys)
        elif outcome.events:
            self.repo.store.append_bulk(outcome.events, keys=outcome.keys, unique_keys=not job.allow_duplicate,
                                        checked_at=checked_at)
        _take(job, outcome)

    def _decide_batch(self, job: Job, chunk: list[Row],
                      flying: Sequence[tuple[str, str, str]]) -> tuple[int, Outcome]:
        """What a batch does, and the log's last position read before its look-ups.

        The key index (which holds the keys of the file's earlier batches too, or those of
        `flying`, the batch being appended) is read once, outside the append lock, to name
        each duplicate; the append then checks under the lock that no lead was stored since
        that read (else it looks at the keys again there), so a lead added meanwhile is never
        duplicated. The report changes once the batch is in.
        """
        store = self.repo.store
        checked_at = store.max_position()  # before the reads below: what they see at least
        existing = store.existing_streams(sorted(lead_stream(row.lead) for row in chunk))  # index order
        rows = [row for row in chunk if lead_stream(row.lead) not in existing]
        wanted = [key for row in rows for key in row.keys]
        indexed = {(k.kind, k.value): k.lead for k in store.find_keys(wanted)}
        if job.book is not None:
            for key, lead in job.book.find(wanted).items():
                indexed.setdefault(key, lead)
        for kind, value, lead in flying:
            indexed.setdefault((kind, value), lead)
        owners = self._owners(job, {row.held.owner for row in rows if row.held})
        outcome = Outcome(skipped=len(chunk) - len(rows))
        batch_keys: dict[tuple[str, str], str] = {}
        for row in rows:
            self._decide(job, row, indexed, batch_keys, owners, outcome)
        return checked_at, outcome

    def _owners(self, job: Job, owners: set[str]) -> Owners:
        """The owners a batch names, with their holdings in the pool, in one round trip (the
        pool too: a member revoked since the import began is seen)."""
        if not owners:
            return {}
        people = {o: person_stream(o) for o in owners}
        desks = {o: holdings_stream(o, job.pool.id) for o in owners}
        remembered = [pool_stream(job.pool.id), *people.values()]
        got = self.repo.store.read_streams(remembered, last=list(desks.values()),
                                           after=self.repo.remembered_versions(*remembered))
        job.pool = self.repo.pool(job.pool.id, got[pool_stream(job.pool.id)])
        found: Owners = {}
        for o in owners:
            rep = self.repo.person(o, got[people[o]])
            if not rep.exists:
                found[o] = Rejected(_("owner {owner} is unknown: no such person", owner=repr(o[:40])),
                                    "unknown_person")
                continue
            try:
                decisions.check_import_owner(rep, job.pool)
            except LedgerError as e:
                found[o] = Rejected(_("owner {problem}", problem=e.message),
                                    _OWNER_REASONS.get(e.code, "invalid_owner"))
                continue
            desk = self.repo.holdings(o, job.pool.id, got[desks[o]])
            if job.book is not None and o in job.held:  # a dry run: what its earlier batches gave him
                desk = replace(desk, held=job.held[o])
            found[o] = (rep, desk)
        return found

    def _decide(self, job: Job, row: Row, indexed: dict[tuple[str, str], str],
                batch_keys: dict[tuple[str, str], str], owners: Owners, outcome: Outcome) -> None:
        owner = owners[row.held.owner] if row.held else None
        if isinstance(owner, str):
            outcome.rejected.append(rejection(row.line, owner))
            return
        if owner is not None and (late := _before_registration(row, owner[0])):
            outcome.rejected.append(rejection(row.line, late))
            return
        matches = [ev.DuplicateMatch(lead=other, field=k[0], value=k[1]) for k in row.keys
                   if (other := indexed.get(k) or batch_keys.get(k))]
        if matches and not job.allow_duplicate:
            outcome.duplicates.append({"line": row.line, "lead": row.lead, "duplicate_of": matches[0].lead,
                                       "field": matches[0].field, "value": matches[0].value})
            return
        stream = lead_stream(row.lead)
        outcome.events.append(NewEvent(stream, 1, GENESIS, ev.LeadAdded(
            occurred_at=row.held.since if row.held else job.at, actor=job.by.id, lead=row.lead,
            pool=job.pool.id, attributes=row.attributes, duplicates=matches)))
        if owner is not None:
            rep, desk = owner
            heads = {stream: Head(stream, 1, GENESIS), desk.head.stream: desk.head}
            for e in decisions.import_held(row.lead, job.pool, desk, rep, job.by, row.held.since,
                                           row.held.follow_up):
                head = heads[stream_of(e)]
                heads[head.stream] = Head(head.stream, head.version + 1, head.hash)
                outcome.events.append(NewEvent(head.stream, head.version + 1, head.hash, e))
            owners[rep.id] = (rep, replace(desk, head=heads[desk.head.stream], held=desk.held + 1))
            outcome.held[rep.id] = desk.held + 1
            outcome.assigned += 1
        outcome.keys.extend([(kind, value, row.lead) for kind, value in row.keys])
        for k in row.keys:
            batch_keys.setdefault(k, row.lead)
        outcome.imported += 1

    def _settle(self, job: Job) -> None:
        """After Ctrl-C: whether the batch being appended got in (the interrupt may come just
        after its commit), so that the report counts it if it did. One in the writer thread is
        waited for: it goes on to its commit or its failure."""
        flight, job.flight = job.flight, None
        if flight is not None and flight.done.exception() is None:
            _take(job, flight.outcome)
        outcome, job.pending = job.pending, None
        if outcome is None:
            return
        if job.book is not None or not outcome.events:
            _take(job, outcome)
            return
        first = outcome.events[0]
        try:
            stored = self.repo.store.read_stream(first.stream)
        except Exception:  # noqa: BLE001 - the store went away with the interrupt: say so
            job.report["unconfirmed"] = outcome.imported
            return
        if stored and stored[0].event == first.event:
            _take(job, outcome)


_OWNER_REASONS = {"actor_inactive": "owner_inactive", "not_pool_member": "not_pool_member"}


def rejection(line: int, message: str) -> dict[str, Any]:
    """An entry of the report's `rejected`: the translated message and its stable code."""
    return {"line": line, "error": str(message), "code": reason(message)}


def _before_registration(row: Row, rep: Person) -> Rejected | None:
    """Why a held row cannot be his: it has him take the lead before he was registered."""
    try:
        check_at(row.held.since, row.held.since, name=row.held.since_from,
                 not_before=[(_("the registration of {person}", person=rep.id), rep.registered_at)])
    except LedgerError as e:
        return Rejected(e.message, "time_out_of_range")
    return None


def _take(job: Job, outcome: Outcome) -> None:
    """The report takes a batch that is in."""
    report = job.report
    report["imported"] += outcome.imported
    report["skipped_existing"] += outcome.skipped
    report["duplicates"].extend(outcome.duplicates)
    report["rejected"].extend(outcome.rejected)
    report["assigned"] += outcome.assigned
    job.held.update(outcome.held)
    job.pending = None


def summary(job: Job) -> dict[str, Any]:
    """The report, its rejections in line order, with the reps this import left over claim_limit."""
    report = dict(job.report)
    report["rejected"] = sorted(report["rejected"], key=lambda r: r["line"])
    report["ignored_columns"] = list(job.ignored)
    limit = job.pool.rules_at(job.at).rules.claim_limit
    report["over_limit"] = [{"rep": rep, "pool": job.pool.id, "held": held, "claim_limit": limit}
                            for rep, held in sorted(job.held.items()) if held > limit]
    return report
