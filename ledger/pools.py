"""pool create | rules | grant | revoke | list | show."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from ledger import decisions
from ledger import events as ev
from ledger.acting import When
from ledger.context import Concern
from ledger.errors import InvalidInput, Refused
from ledger.shapes import pool_view, rules_dict
from ledger.state import Person
from ledger.values import check_id, format_time, parse_rule
from ledger.i18n import N_, _


class Pools(Concern):
    def create(self, actor: str, pool_id: str, name: str, at: When = None, **rules: Any) -> dict[str, Any]:
        def check() -> None:
            check_id(pool_id, N_("pool id"))
            with_rules(ev.Rules(), rules)

        def attempt(by: Person, when: datetime) -> dict[str, Any]:
            when = self.acting.when(when, at, by)
            chosen = with_rules(ev.Rules(), rules)
            existing = self.repo.fresh_pool(pool_id)
            if existing.exists:
                raise Refused("already_exists", _("pool {pool} already exists", pool=pool_id), pool=pool_id)
            stored = self.repo.commit([existing.head], [ev.PoolCreated(
                occurred_at=when, actor=by.id, pool=pool_id, name=name, rules=chosen)])
            return {"pool": pool_id, "name": name, "rules": rules_dict(chosen), "rules_version": 1,
                    "position": stored[0].position}

        return self.acting.run(actor, "pool.create", at, attempt, check)

    def change_rules(self, actor: str, pool_id: str, at: When = None, **rules: Any) -> dict[str, Any]:
        def check() -> None:
            if all(v is None for v in rules.values()):
                raise InvalidInput(_("name at least one rule to change, e.g. --claim-limit 20"))

        def attempt(by: Person, when: datetime) -> dict[str, Any]:
            pool = self.repo.pool(pool_id)
            when = self.acting.when(when, at, by, pool)
            if when < pool.rule_versions[-1].since:
                raise InvalidInput(_("--at is before the pool's latest rule version ({since})",
                                     since=format_time(pool.rule_versions[-1].since)))
            chosen = with_rules(pool.rules, rules)
            version = pool.rules_version + 1
            stored = self.repo.commit([pool.head], [ev.PoolRulesChanged(
                occurred_at=when, actor=by.id, pool=pool_id, rules=chosen, rules_version=version)])
            return {"pool": pool_id, "rules": rules_dict(chosen), "rules_version": version,
                    "since": format_time(when), "position": stored[0].position}

        return self.acting.run(actor, "pool.rules", at, attempt, check)

    def membership(self, actor: str, pool_id: str, people: list[str], at: When, *, grant: bool) -> dict[str, Any]:
        """Grant or revoke membership of a pool; people already so are left as they are."""
        def check() -> None:
            if not people:
                raise InvalidInput(_("name at least one person"))

        def attempt(by: Person, when: datetime) -> dict[str, Any]:
            pool = self.repo.pool(pool_id)
            named = [self.repo.known_person(person_id) for person_id in people]
            when = self.acting.when(when, at, by, pool)
            for person in named:  # nobody is granted or revoked before he was registered
                when = self.acting.when(when, at, person)
                if grant:
                    decisions.check_holder(person)
            changed = [p for p in dict.fromkeys(people) if (p in pool.members) != grant]
            position = None
            if changed:
                cls = ev.MembersGranted if grant else ev.MembersRevoked
                stored = self.repo.commit([pool.head], [cls(occurred_at=when, actor=by.id, pool=pool_id,
                                                            people=changed)])
                position = stored[0].position
            members = (pool.members | set(changed)) if grant else (pool.members - set(changed))
            return {"pool": pool_id, "members": sorted(members), "changed": changed, "position": position}

        return self.acting.run(actor, "pool.grant" if grant else "pool.revoke", at, attempt, check)

    def listing(self) -> dict[str, Any]:
        self.repo.ready()
        self.views.catch_up()
        return {"pools": self.models.pools()}

    def show(self, pool_id: str) -> dict[str, Any]:
        self.repo.ready()
        pool = self.repo.pool(pool_id)
        self.views.catch_up()
        pooled, held, converted = self.models.pool_leads(pool_id)
        return pool_view(pool, pooled, held, converted)


def with_rules(base: ev.Rules, changes: dict[str, Any]) -> ev.Rules:
    """`base` with the rules named in `changes` (None: unchanged), each within the limits of input."""
    values = {name: parse_rule(name, value) for name, value in changes.items() if value is not None}
    return msgspec.structs.replace(base, **values)
