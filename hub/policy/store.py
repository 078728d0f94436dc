"""The policy in the hub database: the current snapshot, the change workflow and its history.

`propose` runs one change as one transaction: authorise the actor, apply the edits, validate
the result against the catalog, insert the next version, record the change. A refused change is
recorded too (its own transaction), so escalation attempts leave a trace; at most
REFUSALS_PER_MINUTE per caller are stored whole, further ones are counted on the last stored
one, so a caller cannot flood the record (or the disk) with refused attempts.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hub.audit.admin import AdminAction, record_admin
from hub.auth.models import App
from hub.auth.principal import Principal
from hub.auth.registry import app_principal
from hub.catalog import Catalog
from hub.errors import BadUserInput, Forbidden
from hub.policy import mask_strength
from hub.policy.changes import Edit, Exposure, apply, authorize, concerned, preview, stamp
from hub.policy.decisions import SnapshotPolicy
from hub.policy.idempotency import RequestKey, earlier, request_key
from hub.policy.mask_strength import WeakMask, caller_kinds
from hub.policy.models import PolicyChangeRow, PolicySnapshotRow
from hub.policy.snapshot import Snapshot, SnapshotError, load_seed, prune, validate
from hub.policy.terms import Terms

log = logging.getLogger("hub.policy")

REFUSALS_PER_MINUTE = 10
# What a refused attempt keeps of the caller's text: enough to see what was tried.
KEPT_REASON = 500
KEPT_EDITS = 20_000


def _now() -> datetime:
    return datetime.now(UTC)


async def latest(session: AsyncSession) -> Snapshot | None:
    row = await session.scalar(select(PolicySnapshotRow).order_by(PolicySnapshotRow.version.desc()).limit(1))
    return None if row is None else Snapshot.from_json(row.version, row.content)


async def latest_version(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.coalesce(func.max(PolicySnapshotRow.version), 0))) or 0)


async def seed(session: AsyncSession, catalog: Catalog, terms: Terms) -> Snapshot:
    """Version 1 from `policies/default.yaml`, unless a policy is already stored."""
    current = await latest(session)
    if current is not None:
        return current
    snapshot, dropped = prune(load_seed().model_copy(update={"version": 1}), catalog, terms)
    for entry in dropped:
        log.warning("policy seed: left out %s", entry)
    session.add(PolicySnapshotRow(version=1, created_at=_now(), content=snapshot.to_json()))
    session.add(
        PolicyChangeRow(
            at=_now(),
            actor="hub",
            actor_department="platform",
            reason="seeded from policies/default.yaml",
            edits=[],
            outcome="applied",
            detail="",
            version=1,
        )
    )
    return snapshot


async def principals(session: AsyncSession) -> list[Principal]:
    """Every registered app as a principal: the callers a preview compares."""
    return [app_principal(a) for a in await session.scalars(select(App).order_by(App.name))]


@dataclass
class Outcome:
    snapshot: Snapshot
    exposures: list[Exposure]
    applied: bool
    # A retry of a change applied before under the same idempotency key: nothing was applied
    # now; `snapshot` is the version that change made, and no exposures are recomputed.
    replayed: bool = False


@dataclass
class PolicyStore:
    sessions: async_sessionmaker[AsyncSession]
    catalog: Catalog
    terms: Terms
    # Write each change, import and refusal as an admin event of the access trail (HUB_AUDIT).
    audit: bool = False

    async def propose(
        self,
        actor: Principal,
        edits: Sequence[Edit],
        reason: str,
        current: SnapshotPolicy,
        dry_run: bool = False,
        idempotency_key: str | None = None,
    ) -> Outcome:
        retry = request_key(idempotency_key, "change", {"edits": _dump(edits), "reason": reason})
        if retry is not None and not dry_run:
            # Before any check: the policy the change made may refuse the same change again
            # (a grant that exists already), and the caller must learn it was applied.
            replay = await self._replay(actor, retry)
            if replay is not None:
                return replay
        edits = stamp(actor, edits)
        try:
            self.check_reason(reason, "a policy change")
            authorize(actor, edits, current, self.catalog, self.terms)
            changed = apply(current.snapshot, edits)
            validate(changed, self.catalog, self.terms)
        except (Forbidden, SnapshotError, BadUserInput) as exc:
            code = "FORBIDDEN" if isinstance(exc, Forbidden) else "BAD_USER_INPUT"
            await self._refused(actor, edits, reason, str(exc), current, code)
            if isinstance(exc, SnapshotError):
                raise BadUserInput(str(exc)) from None
            raise
        after = SnapshotPolicy(changed, self.catalog, current.clock, self.terms)
        async with self.sessions() as session:
            callers = await principals(session)
        try:
            await self.check_masks(after, callers)
        except WeakMask as exc:
            await self._refused(actor, edits, reason, str(exc), current)
            raise BadUserInput(str(exc)) from None
        purposes: list[str | None] = [None, *sorted(self.terms.purposes)]
        exposures = preview(current, after, callers, self.catalog, purposes)
        if dry_run:
            return Outcome(changed, exposures, applied=False)
        try:
            async with self.sessions() as session, session.begin():
                session.add(PolicySnapshotRow(version=changed.version, created_at=_now(), content=changed.to_json()))
                session.add(self.row(actor, _dump(edits), reason, "applied", "", changed.version, retry))
                await self.admin_event(
                    session,
                    AdminAction(
                        "policy.change",
                        actor.subject,
                        actor.department,
                        "applied",
                        reason,
                        target="policy",
                        edits=_dump(edits),
                        concerns=frozenset(concerned(actor, edits, current.snapshot)),
                        policy_version=str(changed.version),
                    ),
                )
        except IntegrityError:
            # The same change retried meanwhile under the same key: that one applied it.
            replay = None if retry is None else await self._replay(actor, retry)
            if replay is not None:
                return replay
            # Another change took this version first; the caller decides again on the new one.
            raise BadUserInput("the policy changed meanwhile; review the current version and try again") from None
        return Outcome(changed, exposures, applied=True)

    async def _refused(
        self,
        actor: Principal,
        edits: Sequence[Edit],
        reason: str,
        detail: str,
        current: SnapshotPolicy,
        code: str = "BAD_USER_INPUT",
    ) -> None:
        """Record a refused change (and its admin event) made against `current`."""
        concerns = concerned(actor, edits, current.snapshot)
        await self.record_refusal(actor, _dump(edits), reason, detail, current.snapshot.version, concerns, code)

    async def _replay(self, actor: Principal, retry: RequestKey) -> Outcome | None:
        """The outcome of the change `actor` applied under `retry`'s key before, if any."""
        async with self.sessions() as session:
            row = await earlier(session, actor.subject, retry)
            if row is None:
                return None
            made = await session.get(PolicySnapshotRow, row.version)
        assert made is not None, "an applied change's snapshot is never deleted"
        return Outcome(Snapshot.from_json(made.version, made.content), [], applied=True, replayed=True)

    async def replace(self, actor: Principal, snapshot: Snapshot, reason: str) -> Snapshot:
        """Make `snapshot` the whole policy, as one new version (an import)."""
        self.check_reason(reason, "a policy import")
        try:
            validate(snapshot, self.catalog, self.terms)
            async with self.sessions() as session:
                callers = await principals(session)
            await self.check_masks(SnapshotPolicy(snapshot, self.catalog, terms=self.terms), callers)
        except (SnapshotError, WeakMask) as exc:
            raise BadUserInput(str(exc)) from None
        try:
            async with self.sessions() as session, session.begin():
                version = await latest_version(session) + 1
                imported = snapshot.model_copy(update={"version": version})
                session.add(PolicySnapshotRow(version=version, created_at=_now(), content=imported.to_json()))
                session.add(self.row(actor, [{"op": "import"}], reason, "applied", "", version))
                await self.admin_event(
                    session,
                    AdminAction(
                        "policy.import",
                        actor.subject,
                        actor.department,
                        "applied",
                        reason,
                        target="policy",
                        edits=[{"op": "import"}],
                        concerns=frozenset({"*"}),
                        policy_version=str(version),
                    ),
                )
        except IntegrityError:
            raise BadUserInput("the policy changed meanwhile; run the import again") from None
        return imported

    async def history(self, limit: int = 50, department: str | None = None) -> list[PolicyChangeRow]:
        query = select(PolicyChangeRow).order_by(PolicyChangeRow.id.desc()).limit(limit)
        if department is not None:
            query = query.where(PolicyChangeRow.actor_department == department)
        async with self.sessions() as session:
            return list(await session.scalars(query))

    async def check_masks(self, policy: SnapshotPolicy, apps: Sequence[Principal]) -> None:
        """Raise WeakMask if the policy leaves a masked identifier too few values for some
        kind of caller (every known department with each role, and every registered app)."""
        kinds = caller_kinds(self.terms.departments, policy.snapshot.role_names(), apps)
        # A second or two of policy decisions: off the event loop, so requests go on.
        await asyncio.to_thread(mask_strength.check, policy, self.catalog, kinds, self.terms.min_mask_candidates)

    def check_reason(self, reason: str, what: str) -> None:
        if not reason.strip():
            raise BadUserInput(f"say why: {what} needs a reason")
        if len(reason) > self.terms.max_reason:
            raise BadUserInput(f"a reason has at most {self.terms.max_reason} characters")

    async def admin_event(self, session: AsyncSession, action: AdminAction) -> None:
        """The trail's event of an admin action, in the transaction that makes it."""
        await record_admin(session, action, self.audit)

    async def record_refusal(
        self,
        actor: Principal,
        edits: list[dict[str, Any]],
        reason: str,
        detail: str,
        version: int = 0,
        concerns: set[str] | None = None,
        code: str = "BAD_USER_INPUT",
        action: str = "policy.change",
    ) -> None:
        """Keep a refused change on record, in its own transaction: whole for the caller's
        first REFUSALS_PER_MINUTE in a minute, then as a count on the last one kept. The trail
        gets an admin event for each one kept whole (so it cannot be flooded either)."""
        since = _now() - timedelta(minutes=1)
        async with self.sessions() as session, session.begin():
            recent = select(PolicyChangeRow.id).where(
                PolicyChangeRow.actor == actor.subject,
                PolicyChangeRow.outcome == "refused",
                PolicyChangeRow.at >= since,
            )
            kept = list(await session.scalars(recent.order_by(PolicyChangeRow.id.desc()).limit(REFUSALS_PER_MINUTE)))
            if len(kept) >= REFUSALS_PER_MINUTE:
                await session.execute(
                    update(PolicyChangeRow)
                    .where(PolicyChangeRow.id == kept[0])
                    .values(repeats=PolicyChangeRow.repeats + 1)
                )
                log.warning(
                    "refused policy change by %s counted, not stored: over %s a minute",
                    actor.subject,
                    REFUSALS_PER_MINUTE,
                )
                return
            session.add(
                self.row(actor, _bounded(edits), reason[:KEPT_REASON], "refused", detail[:KEPT_REASON], version)
            )
            await self.admin_event(
                session,
                AdminAction(
                    action,
                    actor.subject,
                    actor.department,
                    "refused",
                    reason,
                    target="policy" if action.startswith("policy.") else None,
                    detail=detail,
                    edits=edits,
                    concerns=frozenset(concerns or {actor.department}),
                    code=code,
                    policy_version=str(version),
                ),
            )

    @staticmethod
    def row(
        actor: Principal,
        edits: list[dict[str, Any]],
        reason: str,
        outcome: str,
        detail: str,
        version: int,
        retry: RequestKey | None = None,
    ) -> PolicyChangeRow:
        return PolicyChangeRow(
            idempotency_key=None if retry is None else retry.key,
            request_digest=None if retry is None else retry.digest,
            at=_now(),
            actor=actor.subject,
            actor_department=actor.department,
            reason=reason,
            edits=edits,
            outcome=outcome,
            detail=detail,
            version=version,
        )


def _bounded(edits: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The edits of a refused change as kept: whole when small, else their kinds only."""
    if len(json.dumps(edits, default=str)) <= KEPT_EDITS:
        return edits
    return [{"op": str(e.get("op", "?")), "omitted": "too large to keep"} for e in edits[:100]]


def _dump(edits: Sequence[Edit]) -> list[dict[str, Any]]:
    return [e.model_dump(mode="json", exclude_none=True) for e in edits]
