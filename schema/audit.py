"""The trail's part of the schema: `auditEvents`, for auditors, admins, data stewards and
department apps, and `personAccessHistory`, for citizens' apps. Resolvers are thin:
`hub.audit.query` and `hub.audit.history` decide who reads what, count a person looked up
against the lookup quota, page the answer and make the proofs."""

import base64
from datetime import datetime
from typing import Annotated, Any

import orjson
import strawberry

from hub.audit.heads import TreeHead
from hub.audit.history import Entry, PersonHistory
from hub.audit.query import AuditQuery, EventFilter, EventView, FieldRelease
from schema.context import RequestContext, available

TRAIL_MISSING = "the access trail is not available on this hub"


@strawberry.type(description="Values of one field released (or withheld) at one level.")
class AuditFieldRelease:
    entity: str
    field: str
    level: str = strawberry.field(description="PLAIN, MASKED or DENIED (withheld).")
    count: int


@strawberry.type(description="Rows of one entity a request released.")
class AuditEntityRows:
    entity: str
    count: int


@strawberry.type(description="The operation a request ran.")
class AuditOperation:
    hash: str | None = strawberry.field(description="SHA-256 (hex) of the operation's text.")
    name: str | None
    documentId: str | None = strawberry.field(description="The trusted document's id, if one was run.")


@strawberry.type(description="An admin action recorded in the trail: who did what, to what, and why.")
class AuditAction:
    name: str = strawberry.field(description="policy.change, roles.assign, app.create, keys.rotate, ...")
    target: str | None = strawberry.field(description="What it acted on: an app, a document id, the policy.")
    reason: str = strawberry.field(description="Why, as its author said.")
    detail: str = strawberry.field(description="Why it was refused; empty when applied.")
    edits: str = strawberry.field(description="The edits made or attempted, JSON.")


@strawberry.type(
    description="One request or admin action in the access trail. Persons touched are counted, never named."
)
class AuditEventView:
    position: int = strawberry.field(description="The event's leaf index in the Merkle log (docs/audit.md).")
    at: datetime
    principal: str = strawberry.field(description="The app that asked.")
    department: str
    purpose: str | None
    operation: AuditOperation
    outcome: str = strawberry.field(
        description="served, partly_served, refused or failed (a request); applied or refused (an admin action)."
    )
    status: int
    code: str | None = strawberry.field(description="The first error's code, if any.")
    policyVersion: str | None
    fields: list[AuditFieldRelease]
    rows: list[AuditEntityRows]
    personsTouched: int
    kind: str = strawberry.field(description="request or admin.")
    action: AuditAction | None = strawberry.field(description="An admin event's action; null for a request.")
    limit: str | None = strawberry.field(
        description=(
            "The limit that refused a request (its alert): lookup_quota, rate_caller, rate_department "
            "or concurrency; null otherwise."
        )
    )


@strawberry.type(description="A page of events, newest first.")
class AuditEventPageInfo:
    hasNextPage: bool
    endCursor: str | None


@strawberry.type(description="A page of the access trail, newest first.")
class AuditEventConnection:
    nodes: list[AuditEventView]
    pageInfo: AuditEventPageInfo


@strawberry.input(description="Which events; every condition given must hold.")
class AuditEventFilter:
    principal: str | None = None
    department: str | None = strawberry.field(default=None, description="The asking app's department.")
    purpose: str | None = None
    entity: str | None = strawberry.field(default=None, description="Events that released this entity (its id).")
    field: str | None = strawberry.field(default=None, description="... this field (with `entity`: of it).")
    decision: str | None = strawberry.field(default=None, description="... at this level: PLAIN, MASKED, DENIED.")
    idNumber: str | None = strawberry.field(
        default=None,
        description="Events that touched this person (by the blind index of the resident ID number, "
        "never stored plain); counts against your lookup quota.",
    )
    operation: str | None = strawberry.field(default=None, description="An operation's hash or name.")
    outcome: str | None = None
    since: datetime | None = strawberry.field(default=None, description="At or after (with an offset).")
    until: datetime | None = strawberry.field(default=None, description="Before (with an offset).")
    kind: str | None = strawberry.field(default=None, description="request or admin.")
    action: str | None = strawberry.field(default=None, description="Admin events of this action (its name).")


@strawberry.type(description='A signed tree head of the access trail (docs/audit.md, "Tree heads").')
class AuditTreeHead:
    treeSize: int
    timestamp: str = strawberry.field(description="Microseconds since the Unix epoch, as signed (decimal).")
    rootHash: str = strawberry.field(description="Base64.")
    signature: str = strawberry.field(description="Ed25519, base64, over the bytes docs/audit.md gives.")
    keyId: str


@strawberry.type(description="One release of the person's data, with its proof of inclusion in the log.")
class PersonAccess:
    at: datetime
    department: str = strawberry.field(description="The department that received the data.")
    app: str = strawberry.field(description="Its app.")
    purpose: str | None
    entities: list[str] = strawberry.field(description="The entities of the person's records released.")
    fields: list[AuditFieldRelease] = strawberry.field(
        description="The fields of those entities the request released, per level."
    )
    position: int = strawberry.field(description="The event's leaf index in the log.")
    leaf: str = strawberry.field(description="The event's leaf, base64: hash SHA-256(0x00 || leaf).")
    auditPath: list[str] = strawberry.field(description="RFC 9162 PATH(position, treeSize), base64, in order.")


@strawberry.type(description="Who received one person's data; every entry provable against `treeHead`.")
class PersonAccessHistory:
    treeHead: AuditTreeHead | None = strawberry.field(description="Null when there is no entry.")
    entries: list[PersonAccess] = strawberry.field(description="Newest first, at most 200.")
    truncated: bool = strawberry.field(description="More entries in the range: ask again with `to` earlier.")


def _head(head: TreeHead) -> AuditTreeHead:
    exported = head.exported()
    return AuditTreeHead(
        treeSize=head.size,
        timestamp=str(head.at_us),
        rootHash=exported["rootHash"],
        signature=exported["signature"],
        keyId=head.key_id,
    )


def _entry(entry: Entry) -> PersonAccess:
    event = entry.event
    return PersonAccess(
        at=event.at,
        department=event.department,
        app=event.principal,
        purpose=event.purpose,
        entities=entry.entities,
        fields=_releases(entry.fields),
        position=event.position,
        leaf=base64.b64encode(entry.leaf).decode(),
        auditPath=[base64.b64encode(h).decode() for h in entry.path],
    )


def _view(event: EventView) -> AuditEventView:
    return AuditEventView(
        position=event.position,
        at=event.at,
        principal=event.principal,
        department=event.department,
        purpose=event.purpose,
        operation=AuditOperation(hash=event.operation_hash, name=event.operation_name, documentId=event.document_id),
        outcome=event.outcome,
        status=event.status,
        code=event.code,
        policyVersion=event.policy_version,
        fields=_releases(event.fields),
        rows=[AuditEntityRows(entity=e, count=n) for e, n in sorted(event.rows.items())],
        personsTouched=event.persons,
        kind=event.kind,
        action=None if event.action is None else _action(event.action),
        limit=event.limit,
    )


def _action(action: dict[str, Any]) -> AuditAction:
    return AuditAction(
        name=str(action.get("name", "")),
        target=action.get("target"),
        reason=str(action.get("reason", "")),
        detail=str(action.get("detail", "")),
        edits=orjson.dumps(action.get("edits", [])).decode(),
    )


def _releases(fields: list[FieldRelease]) -> list[AuditFieldRelease]:
    # One event's fields released, per level: as the trail lists them and as a person's
    # history does.
    return [AuditFieldRelease(entity=f.entity, field=f.field, level=f.level, count=f.count) for f in fields]


def _query(info: strawberry.Info) -> tuple[RequestContext, AuditQuery]:
    context: RequestContext = info.context
    return context, available(context.audit, TRAIL_MISSING)


@strawberry.type
class AuditQueryFields:
    @strawberry.field(
        description="The access trail, newest first: auditors and admins read every event, data stewards "
        "those about their department's data, department apps their own. A query of the trail is itself "
        "an event. `first` defaults to 100, at most 1000."
    )
    async def auditEvents(
        self,
        info: strawberry.Info,
        filter: AuditEventFilter | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> AuditEventConnection:
        context, query = _query(info)
        given = filter or AuditEventFilter()
        wanted = EventFilter(
            principal=given.principal,
            department=given.department,
            purpose=given.purpose,
            entity=given.entity,
            field=given.field,
            decision=given.decision,
            person=given.idNumber,
            operation=given.operation,
            outcome=given.outcome,
            since=given.since,
            until=given.until,
            kind=given.kind,
            action=given.action,
        )
        page = await query.events(context.principal, wanted, first, after)
        return AuditEventConnection(
            nodes=[_view(e) for e in page.events],
            pageInfo=AuditEventPageInfo(hasNextPage=page.has_next, endCursor=page.end_cursor),
        )

    @strawberry.field(
        description="Which departments and apps received one person's data, when, which fields, for what "
        "purpose, each entry with its inclusion proof against a signed tree head. Only for role citizen_portal "
        "stating purpose citizen_service; each call counts against the lookup quota and is itself an event."
    )
    async def personAccessHistory(
        self,
        info: strawberry.Info,
        idNumber: str,
        from_: Annotated[datetime | None, strawberry.argument(name="from")] = None,
        to: datetime | None = None,
    ) -> PersonAccessHistory:
        context: RequestContext = info.context
        history: PersonHistory = available(context.history, TRAIL_MISSING)
        found = await history.history(context.principal, context.purpose, idNumber, from_, to)
        return PersonAccessHistory(
            treeHead=None if found.head is None else _head(found.head),
            entries=[_entry(e) for e in found.entries],
            truncated=found.truncated,
        )
