"""Reading the trail: `auditEvents` as auditors, stewards and department apps query it.

Who reads what is decided once per request, as a condition on the events, before any row is
read: auditors and admins read every event; a data steward reads the events that released (or
withheld) its department's data and the admin events that concern its department (a change to
its policy, its apps, its keys; hub/audit/admin.py); a department app reads its own events;
anyone else is refused.

A person is looked up by resident ID number through its blind index (hub_audit_person, indexed
by person and time); the number itself is neither stored nor echoed. It is a guess at an
identifier the caller never reads plain, so it counts against the caller's lookup quota, as a
by-key argument on a masked ID number does: the filter cannot become an oracle of who exists.

Filters on entity, field and decision match the stored `released` list (docs/audit.md) by its
canonical JSON, with LIKE patterns escaped by SQLAlchemy; the names are checked against the
catalog first, so a pattern only ever holds known identifiers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hub.access.cursor import Cursors
from hub.access.plan import Decision
from hub.audit.admin import ACTIONS, ALL
from hub.audit.backlog import backlog_positions
from hub.audit.event import EventFacts
from hub.audit.models import KINDS, OUTCOMES, AuditEvent, AuditPerson
from hub.auth.principal import Principal
from hub.catalog import Catalog
from hub.crypto.blind_index import BlindIndex
from hub.crypto.cells import PERSON_DOMAIN
from hub.errors import BadUserInput, Forbidden, LimitExceeded
from hub.policy.changes import ADMIN, STEWARD
from hub.quota import LOOKUP_QUOTA, LookupCounter

AUDITOR = "auditor"
# Roles of apps acting for a department (a district office is one, below its department).
APP_ROLES = frozenset({"department_app", "district_office"})
DEFAULT_PAGE = 100
MAX_PAGE = 1_000
# The cursor's order tag: events page by position, newest first, per caller.
ORDER = "audit-events"


@dataclass(frozen=True)
class EventFilter:
    principal: str | None = None
    department: str | None = None
    purpose: str | None = None
    entity: str | None = None
    field: str | None = None
    decision: str | None = None
    person: str | None = None
    operation: str | None = None
    outcome: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    kind: str | None = None
    # An admin event's action name (hub/audit/admin.py ACTIONS).
    action: str | None = None


@dataclass(frozen=True)
class FieldRelease:
    entity: str
    field: str
    level: str
    count: int


@dataclass(frozen=True)
class EventView(EventFacts):
    position: int
    fields: list[FieldRelease]
    rows: dict[str, int]
    persons: int
    kind: str = "request"
    # An admin event's action (name, target, reason, detail, edits); None for a request.
    action: dict[str, Any] | None = None
    # The limit that refused a request (lookup_quota, rate_caller, rate_department, concurrency).
    limit: str | None = None

    @property
    def at(self) -> datetime:
        return datetime.fromtimestamp(self.at_us / 1_000_000, UTC)


@dataclass(frozen=True)
class EventPage:
    events: list[EventView]
    has_next: bool
    end_cursor: str | None


def micros(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise BadUserInput("give times with an offset (for example 2026-12-01T00:00:00Z)")
    return int(moment.timestamp() * 1_000_000)


class AuditQuery:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        catalog: Catalog,
        cursors: Cursors,
        quota: LookupCounter,
        person_index: Callable[[], BlindIndex],
    ) -> None:
        self.sessions = sessions
        self.catalog = catalog
        self.cursors = cursors
        self.quota = quota
        self.person_index = person_index

    def scope(self, actor: Principal) -> ColumnElement[bool] | None:
        """The events `actor` may read, as a condition (None: all); FORBIDDEN for others."""
        roles = set(actor.roles)
        if roles & {ADMIN, AUDITOR}:
            return None
        own = AuditEvent.principal == actor.subject
        if STEWARD in roles:
            # A steward is its department's app too: its own events as well. Department names
            # are identifiers (hub/policy/terms.py), so the delimited pattern matches one name.
            concerns = AuditEvent.concerns.contains(f",{actor.department},", autoescape=True) | (
                AuditEvent.concerns == f",{ALL},"
            )
            return or_(_releases(f'["{actor.department}.'), (AuditEvent.kind == "admin") & concerns, own)
        if roles & APP_ROLES:
            return own
        raise Forbidden("the access trail is read by auditors, admins, data stewards and department apps")

    async def person(self, actor: Principal, id_number: str) -> bytes:
        """The blind index of a resident ID number (its 32 bytes, as `hub_audit_person` stores
        it), counted against `actor`'s quota."""
        index = self.person_index()
        normalised = index.normalise(id_number)
        if not normalised or len(normalised) > 64:
            raise BadUserInput("`idNumber` is not a resident ID number")
        refusal = await self.quota.admit(actor, [(PERSON_DOMAIN, normalised)])
        if refusal is not None:
            raise LimitExceeded(
                f"lookup quota exceeded: {refusal.used} of {refusal.limit} identifier values used this hour; "
                f"try again in {refusal.retry_after} s",
                {"scope": LOOKUP_QUOTA},
            )
        return index.digest(normalised)

    async def events(self, actor: Principal, wanted: EventFilter, first: int | None, after: str | None) -> EventPage:
        size = DEFAULT_PAGE if first is None else first
        if not 1 <= size <= MAX_PAGE:
            raise BadUserInput(f"`first` must be between 1 and {MAX_PAGE}")
        conditions = [c for c in (self.scope(actor),) if c is not None]
        conditions.extend(self._conditions(wanted))
        tag = f"{ORDER}:{actor.subject}"
        if after is not None:
            (before,) = self.cursors.decode(tag, after)
            conditions.append(AuditEvent.position < int(before))
        person = None if wanted.person is None else await self.person(actor, wanted.person)
        async with self.sessions() as session:
            if person is not None:
                # The index's not-yet-indexed tail first (hub/audit/backlog.py), then the index,
                # in the statement after: a row moved between the two is found either way.
                tail = list(await backlog_positions(session, person, None, None))
                indexed = AuditEvent.position.in_(select(AuditPerson.position).where(AuditPerson.person == person))
                conditions.append(or_(indexed, AuditEvent.position.in_(tail)) if tail else indexed)
            statement = select(AuditEvent).where(*conditions).order_by(AuditEvent.position.desc()).limit(size + 1)
            rows = list(await session.scalars(statement))
        more = len(rows) > size
        rows = rows[:size]
        end = self.cursors.encode(tag, [rows[-1].position]) if rows else None
        return EventPage([view(r) for r in rows], more, end)

    def _conditions(self, wanted: EventFilter) -> list[ColumnElement[bool]]:
        out: list[ColumnElement[bool]] = []
        for column, value in (
            (AuditEvent.principal, wanted.principal),
            (AuditEvent.department, wanted.department),
            (AuditEvent.purpose, wanted.purpose),
        ):
            if value is not None:
                out.append(column == value)
        if wanted.operation is not None:
            out.append(
                (AuditEvent.operation_hash == wanted.operation) | (AuditEvent.operation_name == wanted.operation)
            )
        if wanted.kind is not None:
            if wanted.kind not in KINDS:
                raise BadUserInput(f"`kind` is one of {', '.join(KINDS)}")
            out.append(AuditEvent.kind == wanted.kind)
        if wanted.action is not None:
            if wanted.action not in ACTIONS:
                raise BadUserInput(f"`action` is one of {', '.join(sorted(ACTIONS))}")
            # An admin event's operation is its action (hub/audit/admin.py).
            out.append((AuditEvent.kind == "admin") & (AuditEvent.operation_name == wanted.action))
        if wanted.outcome is not None:
            if wanted.outcome not in OUTCOMES:
                raise BadUserInput(f"`outcome` is one of {', '.join(OUTCOMES)}")
            out.append(AuditEvent.outcome == wanted.outcome)
        if wanted.since is not None:
            out.append(AuditEvent.at_us >= micros(wanted.since))
        if wanted.until is not None:
            out.append(AuditEvent.at_us < micros(wanted.until))
        released = self._release_condition(wanted)
        if released is not None:
            out.append(released)
        return out

    def _release_condition(self, wanted: EventFilter) -> ColumnElement[bool] | None:
        """Events with one `released` entry `["entity","field","DECISION",count]` matching the
        entity, field and decision given (any of them)."""
        entity, name, decision = wanted.entity, wanted.field, wanted.decision
        if decision is not None and decision not in {d.value for d in Decision}:
            raise BadUserInput(f"`decision` is one of {', '.join(d.value for d in Decision)}")
        if entity is None:
            if name is not None and not name.isidentifier():
                raise BadUserInput("`field` is a field's name")
            if name is None:
                return None if decision is None else _releases(f'","{decision}",')
            return _releases(f'","{name}","' if decision is None else f'","{name}","{decision}",')
        try:
            info = self.catalog.entity(entity)
        except KeyError:
            raise BadUserInput(f"no entity {entity[:80]!r}; give its id, `department.Entity`") from None
        if name is not None and name not in info.fields:
            raise BadUserInput(f"{entity} has no field {name[:80]!r}")
        if decision is None:
            return _releases(f'["{entity}","' if name is None else f'["{entity}","{name}","')
        names = [name] if name is not None else sorted(info.fields)
        # One entry must hold both: one pattern per field of the entity (a few dozen at most).
        return or_(*(_releases(f'["{entity}","{n}","{decision}",') for n in names))


def _releases(piece: str) -> ColumnElement[bool]:
    return AuditEvent.released.contains(piece, autoescape=True)


def view(row: AuditEvent) -> EventView:
    released: dict[str, Any] = orjson.loads(row.released)
    return EventView(
        position=row.position,
        at_us=row.at_us,
        principal=row.principal,
        department=row.department,
        purpose=row.purpose,
        operation_hash=row.operation_hash,
        operation_name=row.operation_name,
        document_id=row.document_id,
        outcome=row.outcome,
        status=row.status,
        code=row.code,
        policy_version=row.policy_version,
        fields=[FieldRelease(e, f, level, n) for e, f, level, n in released.get("fields", [])],
        rows=dict(released.get("rows", {})),
        persons=row.persons,
        kind=row.kind,
        action=None if row.action is None else orjson.loads(row.action),
        limit=released.get("limit"),
    )
