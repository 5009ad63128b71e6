"""Every command: the module of commands/ that defines it, and its short help as `--help`
lists it (the first sentence of its docstring). Written by `python -m commands.summarise`:
do not edit."""

from ledger.i18n import N_

SUMMARIES: dict[str, tuple[str, str]] = {
    "assign": ("ownership", N_("Assign a pooled lead to a rep (manager).")),
    "claim": ("ownership", N_("Claim a pooled lead.")),
    "convert": ("ownership", N_("Mark your lead converted (won); it is never recycled.")),
    "demo": ("setup", N_("Build a realistic small world in a fresh store and tell its story.")),
    "digest": ("integrity", N_("Print the log's tree head (a digest), to keep outside the database.")),
    "dispute": ("disputes", N_("Open, examine and resolve ownership disputes (撞单).")),
    "explain": ("audit", N_("Why a lead is where it is: the event, the rule version in force, the facts checked.")),
    "export": ("readmodels", N_("Write a read model's rows, or the events (the change feed), as JSON Lines, CSV "
                                "or Excel.")),
    "follow-up": ("ownership", N_("Log a follow-up on your lead (resets its idle deadline).")),
    "history": ("audit", N_("The full audit trail of one lead: events, ownership periods, refused attempts.")),
    "holdings": ("audit", N_("What a rep holds now (or as of a moment), with each recycle deadline.")),
    "init": ("setup", N_("Create the store (idempotent) and its first admin.")),
    "keygen": ("receipts", N_("Make an Ed25519 signing key for tree heads and receipts.")),
    "lead": ("leads", N_("Add, import and show leads.")),
    "move": ("ownership", N_("Move an unowned lead to another pool (manager).")),
    "owner": ("audit", N_("Who owned a lead at a time (default now), since when, by which event.")),
    "person": ("people", N_("Register and deactivate people.")),
    "pool": ("pools", N_("Create pools, change their rules, manage members.")),
    "project": ("readmodels", N_("Bring the read models up to date (tables other apps may query).")),
    "reassign": ("ownership", N_("Move a held lead to another rep (manager).")),
    "receipt": ("receipts", N_("Print the receipt of the event at POSITION: proof it is in the log.")),
    "release": ("ownership", N_("Release your lead back to its pool.")),
    "report": ("audit", N_("What happened in a business-time period [FROM, TO): per rep and per pool.")),
    "sweep": ("ownership", N_("Issue due recycle warnings and recycle overdue leads (admin or manager, e.g. from "
                              "cron).")),
    "verify": ("integrity", N_("Recompute every hash chain and the Merkle tree; report the first bad position "
                               "(exit 6).")),
    "verify-receipt": ("receipts", N_("Check a receipt offline: the event, its place in the log, the signed head.")),
}
