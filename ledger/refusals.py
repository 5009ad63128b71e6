"""The words of refusals and of returns that events record, beside the errors they become.

An event stores its refusal message or return reason in English (`english(TEMPLATE, ...)`),
as it was recorded, forever. `reword` shows such a text to a person in the reader's language:
the template it was made from is found, its values read back, and the translation filled in.
"""

from __future__ import annotations

from ledger import i18n
from ledger.i18n import N_, gettext

# Refusals recorded as ClaimRefused / AssignmentRefused events.
CONVERTED_BY = N_("lead {lead} is converted by {owner}")
OWNED_SINCE = N_("lead {lead} is owned by {owner} since event #{position} ({since})")
CLAIM_LIMIT = N_("{rep} already holds {held} leads of pool {pool} (claim_limit {claim_limit}, rules v{version})")
NOT_MEMBER = N_("{person} is not a member of pool {pool}")
COOLDOWN = N_("lead {lead} left {rep} at {left_at}; cooldown {cooldown} runs until {until}")
DAILY_LIMIT = N_("{rep} already claimed {claimed} leads of pool {pool} on {day} "
                 "(daily_claim_limit {daily}, rules v{version})")
POOLED = N_("lead {lead} is in pool {pool}, not held")

# Reasons recorded by LeadReturned / LeadAssigned / LeadReassigned events that the ledger, not a
# person, gave: the owner left, or a ruling moved the lead.
OWNER_DEACTIVATED = N_("owner {owner} deactivated")
AWARDED = N_("awarded by dispute {dispute}")

REFUSALS = (CONVERTED_BY, OWNED_SINCE, CLAIM_LIMIT, NOT_MEMBER, COOLDOWN, DAILY_LIMIT, POOLED)
REASONS = (OWNER_DEACTIVATED, AWARDED)

A_ROLE = {"admin": N_("an admin"), "manager": N_("a manager"), "rep": N_("a rep"),
          "auditor": N_("an auditor")}


def a_role(role: str) -> str:
    """The role with its article ("an admin"), in the reader's language."""
    return gettext(A_ROLE[role]) if role in A_ROLE else role


def reword(stored: str | None) -> str | None:
    """A refusal message or a reason stored in English, in the reader's language; text that
    no template made (a reason a person typed) as it was stored."""
    return stored if stored is None else i18n.reword(stored, REFUSALS + REASONS)
