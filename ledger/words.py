"""Values of results that a person reads translated (`gettext(r["role"])`): marked here, where
no call shows them literally, so that extraction finds them and the catalogue test checks them."""

from __future__ import annotations

from ledger.i18n import N_

ROLES = (N_("admin"), N_("manager"), N_("rep"), N_("auditor"))
DISPUTE_STATUSES = (N_("open"), N_("resolved"))
OUTCOMES = (N_("awarded"), N_("upheld"))
RULE_LABELS = (N_("version"),)  # a pool's rules as fields: `version`, then the rules (commands.output.LABELS)
CLICK_WORDS = (N_("required"),)  # click's mark on a required option in --help, which it translates by a variable
