"""Policy administration as the GraphQL admin API and the command line use it: read the live
policy, change it (or preview a change), assign roles, list the history, explain a decision.

Every entry point checks who is asking; changes go through `PolicyStore.propose`, one
transaction each, and the new snapshot is live on this instance as soon as it is committed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from hub.access.plan import Decision
from hub.audit.admin import AdminAction
from hub.auth.models import App
from hub.auth.principal import Principal
from hub.auth.registry import app_principal
from hub.catalog import Catalog
from hub.errors import BadUserInput, Forbidden
from hub.policy.changes import ADMIN, STEWARD, Edit, Exposure
from hub.policy.decisions import Explanation, SnapshotPolicy
from hub.policy.grants import Grant
from hub.policy.idempotency import RequestKey, earlier, request_key
from hub.policy.live import LivePolicy
from hub.policy.models import PolicyChangeRow, PolicySnapshotRow
from hub.policy.snapshot import Snapshot
from hub.policy.store import Outcome, PolicyStore, latest

MAX_ROLES = 20


@dataclass
class RowExplanation:
    rules: list[dict[str, object]]
    applies: bool


@dataclass
class Explained:
    subject: str
    decision: Decision
    reason: str
    rules: list[list[str]] = field(default_factory=list)
    grants: list[Grant] = field(default_factory=list)
    row: RowExplanation | None = None


@dataclass
class PolicyAdmin:
    store: PolicyStore
    live: LivePolicy
    catalog: Catalog

    def snapshot(self, actor: Principal) -> Snapshot:
        _require(actor, ADMIN, STEWARD)
        return self.live.current().snapshot

    async def change(
        self, actor: Principal, edits: Sequence[Edit], reason: str, dry_run: bool, idempotency_key: str | None = None
    ) -> Outcome:
        current = self.live.current()
        outcome = await self.store.propose(actor, edits, reason, current, dry_run, idempotency_key)
        if outcome.applied and not outcome.replayed:
            self.live.install(outcome.snapshot)
        return outcome

    async def assign_roles(
        self, actor: Principal, app_name: str, roles: Sequence[str], reason: str, idempotency_key: str | None = None
    ) -> list[str]:
        """Set an app's roles: admins only, recorded, and it bumps the policy version. Sent
        again under the same idempotency key, it answers as the first time and changes nothing."""
        wanted = sorted(set(roles))
        edits = _role_edit(app_name, wanted)
        retry = request_key(idempotency_key, "assign_roles", {"edits": edits, "reason": reason})
        if retry is not None and await self._applied(actor, retry):
            return wanted
        if ADMIN not in actor.roles:
            version = self.live.current().snapshot.version
            await self.store.record_refusal(
                actor, edits, reason, "only admins assign roles", version, code="FORBIDDEN", action="roles.assign"
            )
            raise Forbidden("only admins assign roles")
        self.store.check_reason(reason, "a role change")
        known = self.live.current().snapshot.role_names()
        unknown = sorted(set(wanted) - known)
        if unknown or len(wanted) > MAX_ROLES:
            detail = f"unknown role {unknown[0][:60]!r}" if unknown else f"at most {MAX_ROLES} roles"
            await self.store.record_refusal(
                actor, edits, reason, detail, self.live.current().snapshot.version, action="roles.assign"
            )
            raise BadUserInput(f"{detail}; known roles: {', '.join(sorted(known))}")
        try:
            async with self.store.sessions() as session, session.begin():
                app = await session.scalar(select(App).where(App.name == app_name))
                if app is None:
                    raise BadUserInput(f"no app named {app_name!r} is registered")
                # The newest stored policy, not this instance's copy, which may lag behind.
                current = await latest(session) or self.live.current().snapshot
                bumped = current.model_copy(update={"version": current.version + 1})
                app.roles = wanted
                session.add(
                    PolicySnapshotRow(version=bumped.version, created_at=datetime.now(UTC), content=bumped.to_json())
                )
                session.add(self.store.row(actor, edits, reason, "applied", "", bumped.version, retry))
                await self.store.admin_event(
                    session,
                    AdminAction(
                        "roles.assign",
                        actor.subject,
                        actor.department,
                        "applied",
                        reason,
                        target=app_name,
                        edits=edits,
                        concerns=frozenset({actor.department, app.department}),
                        policy_version=str(bumped.version),
                    ),
                )
        except IntegrityError:
            if retry is not None and await self._applied(actor, retry):
                return wanted
            raise BadUserInput("the policy changed meanwhile; review the current version and try again") from None
        self.live.install(bumped)
        return wanted

    async def _applied(self, actor: Principal, retry: RequestKey) -> bool:
        async with self.store.sessions() as session:
            return await earlier(session, actor.subject, retry) is not None

    async def assignments(self, actor: Principal) -> list[Principal]:
        """Registered apps with their roles: admins see all, stewards their department's."""
        _require(actor, ADMIN, STEWARD)
        async with self.store.sessions() as session:
            apps = await session.scalars(select(App).order_by(App.name))
            return [app_principal(a) for a in apps if ADMIN in actor.roles or a.department == actor.department]

    async def history(self, actor: Principal, limit: int) -> list[PolicyChangeRow]:
        """Admins see every change; stewards those made in their own department."""
        _require(actor, ADMIN, STEWARD)
        department = None if ADMIN in actor.roles else actor.department
        return await self.store.history(min(max(limit, 1), 500), department)

    async def preview_exposures(self, actor: Principal, edits: Sequence[Edit]) -> list[Exposure]:
        return (await self.change(actor, edits, "preview", dry_run=True)).exposures

    async def explain(
        self,
        actor: Principal,
        subject: str | None,
        entity_id: str,
        field_name: str | None,
        relation_name: str | None,
        purpose: str | None,
    ) -> Explained:
        """Why `subject` (default: the caller) gets a field, a relation or rows of an entity.
        Callers may ask about themselves, stewards about their department's apps, admins about
        anyone."""
        target = await self._principal(actor, subject)
        entity = self.catalog.entities.get(entity_id)
        if entity is None:
            raise BadUserInput(f"{entity_id} is not an entity (write department.Entity)")
        policy: SnapshotPolicy = self.live.current()
        if field_name is not None:
            item = entity.fields.get(field_name)
            if item is None:
                raise BadUserInput(f"{entity_id} has no field {field_name}")
            explained: Explanation = policy.explain_field(target, purpose, entity, item)
        elif relation_name is not None:
            relation = entity.relations.get(relation_name)
            if relation is None:
                raise BadUserInput(f"{entity_id} has no relation {relation_name}")
            explained = policy.explain_relation(target, relation)
        else:
            roles = policy.roles(target)
            rules = [r for r in policy.snapshot.row_rules if r.entity == entity.id and r.role in roles]
            row = RowExplanation([r.model_dump(mode="json") for r in rules], bool(rules))
            # Compiling proves the rule is usable for this principal (its attributes exist).
            policy.row_rule(target, purpose, entity)
            reason = "rows are limited by row rules" if rules else "no row rule: every row"
            return Explained(target.subject, Decision.PLAIN, reason, row=row)
        return Explained(target.subject, explained.decision, explained.reason, explained.rules, explained.grants)

    async def _principal(self, actor: Principal, subject: str | None) -> Principal:
        if subject is None or subject == actor.subject:
            return actor
        # Permission first, and the same answer for unknown and forbidden apps: explain must not
        # tell a caller which app names exist.
        refused = Forbidden("you may explain decisions about yourself; stewards about their department's apps")
        if ADMIN not in actor.roles and STEWARD not in actor.roles:
            raise refused
        async with self.store.sessions() as session:
            app = await session.scalar(select(App).where(App.name == subject))
        if app is None:
            if ADMIN in actor.roles:
                raise BadUserInput(f"no app named {subject!r} is registered")
            raise refused
        if ADMIN not in actor.roles and app.department != actor.department:
            raise refused
        return app_principal(app)


def _require(actor: Principal, *roles: str) -> None:
    if not any(role in actor.roles for role in roles):
        raise Forbidden("only admins and data stewards may read the access policy")


def _role_edit(app_name: str, roles: list[str]) -> list[dict[str, object]]:
    return [{"op": "assign_roles", "app": app_name, "roles": roles}]
