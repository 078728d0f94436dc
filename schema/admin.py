"""The admin part of the schema: read and change the access policy, assign roles, list the
change history, and explain decisions. Resolvers are thin: `hub.policy.admin` decides who may do
what and carries the change out."""

import enum
from datetime import datetime
from typing import Annotated, Any, cast

import strawberry
from strawberry.scalars import JSON

from hub.errors import Forbidden
from hub.policy.admin import Explained, PolicyAdmin
from hub.policy.changes import ADMIN, Exposure, parse_edits
from hub.policy.grants import Grant
from hub.policy.models import PolicyChangeRow
from hub.policy.store import Outcome
from schema.context import RequestContext, available


@strawberry.enum(description="How a field is released.")
class Release(enum.Enum):
    PLAIN = "PLAIN"
    MASKED = "MASKED"
    DENIED = "DENIED"


@strawberry.type(description="A registered app's roles and the attributes row rules may read.")
class RoleAssignment:
    app: str
    department: str
    roles: list[str]
    attributes: JSON


@strawberry.type(description="A policy line: a role may (or may not) act on a tier, entity or field of a department.")
class PolicyRule:
    role: str
    domain: str = strawberry.field(description="A department, `*` (any) or `own` (the caller's own).")
    object: str = strawberry.field(description="A tier (L1-L4), `relation`, an entity id or a field id.")
    action: str = strawberry.field(description="read (plain), mask, follow (a relation) or lookup.")
    effect: str


@strawberry.type(description="A role inheriting another role's lines, in a department or everywhere (`*`).")
class RoleInheritance:
    role: str
    inherits: str
    domain: str


@strawberry.type(description="Rows a role may see of an entity, as a filter; `$principal.<attribute>` is the caller's.")
class RowRuleView:
    role: str
    entity: str
    filter: JSON


@strawberry.type(description="A grant for conditional sharing.")
class GrantView:
    id: strawberry.ID
    department: str
    entity: str
    field: str | None
    purpose: str
    validFrom: datetime
    validUntil: datetime
    grantedBy: str
    reason: str


@strawberry.type(
    description="Aggregates suppress groups of fewer than k persons for a role stating a purpose, on a department's "
    "data (`*`: any); where several lines apply, the largest k; where none, 5."
)
class MinGroupSizeView:
    role: str
    purpose: str
    department: str
    k: int


@strawberry.type(description="The live access policy.")
class AccessPolicyView:
    version: int
    rules: list[PolicyRule]
    hierarchy: list[RoleInheritance]
    rowRules: list[RowRuleView]
    grants: list[GrantView]
    minGroupSizes: list[MinGroupSizeView]


@strawberry.type(description="What a change does to one kind of caller's access to one field.")
class ExposureView:
    department: str
    roles: list[str]
    purpose: str | None
    field: str
    before: Release
    after: Release


@strawberry.type(description="The result of a policy change, or of its preview (dryRun).")
class PolicyChangeResult:
    applied: bool
    version: int
    replayed: bool = strawberry.field(
        description="True when this answers a retry: the change was applied earlier under the same idempotency "
        "key, nothing was applied now, and `version` is the version it made (exposures are not repeated)."
    )
    exposures: list[ExposureView] = strawberry.field(description="Who gains or loses which fields, gains first.")


@strawberry.type(description="One recorded change: who, when, what, why, and whether it was applied.")
class PolicyChange:
    id: strawberry.ID
    at: datetime
    actor: str
    actorDepartment: str
    reason: str
    edits: JSON
    outcome: str
    detail: str
    version: int
    repeats: int = strawberry.field(
        description="Further refused attempts by the same caller within the minute, counted here, not stored"
    )


@strawberry.type(description="Why a principal gets a field, relation or rows as it does.")
class AccessExplanation:
    subject: str
    decision: Release
    reason: str
    rules: list[list[str]] = strawberry.field(description="The policy lines that decided.")
    grants: list[GrantView]
    rowRules: JSON | None


@strawberry.input(description="A policy line.")
class PolicyRuleInput:
    role: str
    domain: str
    object: str
    action: str
    effect: str = "allow"


@strawberry.input(description="A role inheriting another's lines.")
class RoleInheritanceInput:
    role: str
    inherits: str
    domain: str = "*"


@strawberry.input(description="A row rule.")
class RowRuleInput:
    role: str
    entity: str
    filter: JSON


@strawberry.input(description="A grant for conditional sharing.")
class GrantInput:
    id: strawberry.ID
    department: str
    entity: str
    purpose: str
    validFrom: datetime
    validUntil: datetime
    field: str | None = None
    grantedBy: str | None = strawberry.field(default=None, description="Defaults to the caller.")


@strawberry.input(
    description="A group size line of aggregates' suppression: k for SET_MIN_GROUP_SIZE (1-1000; a data steward: "
    "at least 5, on their own department's data), none for REMOVE_MIN_GROUP_SIZE."
)
class MinGroupSizeInput:
    role: str
    purpose: str = "*"
    department: str = "*"
    k: int | None = None


@strawberry.enum
class EditOp(enum.Enum):
    ADD_RULE = "add_rule"
    REMOVE_RULE = "remove_rule"
    ADD_INHERITANCE = "add_inheritance"
    REMOVE_INHERITANCE = "remove_inheritance"
    ADD_ROW_RULE = "add_row_rule"
    REMOVE_ROW_RULE = "remove_row_rule"
    GRANT = "grant"
    REVOKE = "revoke"
    SET_MIN_GROUP_SIZE = "set_min_group_size"
    REMOVE_MIN_GROUP_SIZE = "remove_min_group_size"


@strawberry.input(description="One edit of a change; give the part its op needs.")
class PolicyEditInput:
    op: EditOp
    rule: PolicyRuleInput | None = None
    inheritance: RoleInheritanceInput | None = None
    rowRule: RowRuleInput | None = None
    grant: GrantInput | None = None
    grantId: strawberry.ID | None = None
    minGroupSize: MinGroupSizeInput | None = None


def _admin(info: strawberry.Info) -> tuple[RequestContext, PolicyAdmin]:
    context: RequestContext = info.context
    return context, available(context.admin, "policy administration is not available on this hub")


async def _change(
    info: strawberry.Info, edits: list[PolicyEditInput], reason: str, dry_run: bool, key: str | None
) -> PolicyChangeResult:
    """`edits` applied as one recorded change (or only judged, with `dry_run`): what every
    policy-changing mutation does, whatever edits it takes."""
    context, admin = _admin(info)
    parsed = parse_edits([_edit_dict(e, context.principal.subject, reason) for e in edits])
    return _result(await admin.change(context.principal, parsed, reason, dry_run, key))


def _grant_view(grant: Grant) -> GrantView:
    return GrantView(
        id=strawberry.ID(grant.id),
        department=grant.department,
        entity=grant.entity,
        field=grant.field,
        purpose=grant.purpose,
        validFrom=grant.valid_from,
        validUntil=grant.valid_until,
        grantedBy=grant.granted_by,
        reason=grant.reason,
    )


def _result(outcome: Outcome) -> PolicyChangeResult:
    return PolicyChangeResult(
        applied=outcome.applied,
        version=outcome.snapshot.version,
        replayed=outcome.replayed,
        exposures=[_exposure(e) for e in outcome.exposures],
    )


def _exposure(exposure: Exposure) -> ExposureView:
    return ExposureView(
        department=exposure.department,
        roles=list(exposure.roles),
        purpose=exposure.purpose,
        field=exposure.field,
        before=Release(exposure.before.value),
        after=Release(exposure.after.value),
    )


def _edit_dict(edit: PolicyEditInput, actor: str, reason: str) -> dict[str, Any]:
    out: dict[str, Any] = {"op": edit.op.value}
    if edit.rule is not None:
        out["rule"] = vars(edit.rule)
    if edit.inheritance is not None:
        out["inheritance"] = vars(edit.inheritance)
    if edit.rowRule is not None:
        out["row_rule"] = vars(edit.rowRule)
    if edit.grant is not None:
        g = edit.grant
        out["grant"] = {
            "id": str(g.id),
            "department": g.department,
            "entity": g.entity,
            "field": g.field,
            "purpose": g.purpose,
            "valid_from": g.validFrom,
            "valid_until": g.validUntil,
            "granted_by": g.grantedBy or actor,
            "reason": reason,
        }
    if edit.grantId is not None:
        out["grant_id"] = str(edit.grantId)
    if edit.minGroupSize is not None:
        line = {k: v for k, v in vars(edit.minGroupSize).items() if k != "k"}
        if edit.op is EditOp.SET_MIN_GROUP_SIZE:
            out["min_group"] = {**line, "k": edit.minGroupSize.k}
        else:
            out["min_group_key"] = line
    return out


@strawberry.type
class AdminQuery:
    @strawberry.field(description="The live access policy (admins and data stewards).")
    def accessPolicy(self, info: strawberry.Info) -> AccessPolicyView:
        context, admin = _admin(info)
        snapshot = admin.snapshot(context.principal)
        return AccessPolicyView(
            version=snapshot.version,
            rules=[
                PolicyRule(role=r.role, domain=r.domain, object=r.object, action=r.action, effect=r.effect)
                for r in snapshot.rules
            ],
            hierarchy=[RoleInheritance(role=h.role, inherits=h.inherits, domain=h.domain) for h in snapshot.hierarchy],
            rowRules=[
                RowRuleView(role=r.role, entity=r.entity, filter=cast(JSON, r.filter)) for r in snapshot.row_rules
            ],
            grants=[_grant_view(g) for g in snapshot.grants],
            minGroupSizes=[
                MinGroupSizeView(role=m.role, purpose=m.purpose, department=m.department, k=m.k)
                for m in snapshot.min_group_sizes
            ],
        )

    @strawberry.field(description="Apps and their roles (admins: all; data stewards: their department's).")
    async def roleAssignments(self, info: strawberry.Info) -> list[RoleAssignment]:
        context, admin = _admin(info)
        return [
            RoleAssignment(
                app=p.subject, department=p.department, roles=list(p.roles), attributes=cast(JSON, dict(p.attributes))
            )
            for p in await admin.assignments(context.principal)
        ]

    @strawberry.field(description="Recorded policy changes, newest first, refused ones included.")
    async def policyChanges(self, info: strawberry.Info, first: int = 50) -> list[PolicyChange]:
        context, admin = _admin(info)
        rows: list[PolicyChangeRow] = await admin.history(context.principal, first)
        return [
            PolicyChange(
                id=strawberry.ID(str(r.id)),
                at=r.at,
                actor=r.actor,
                actorDepartment=r.actor_department,
                reason=r.reason,
                edits=cast(JSON, r.edits),
                outcome=r.outcome,
                detail=r.detail,
                version=r.version,
                repeats=r.repeats or 0,
            )
            for r in rows
        ]

    @strawberry.field(
        description="Why a principal (default: you) gets a field, a relation, or rows of an entity "
        "(give `field`, `relation`, or neither). Stewards may ask about their department's apps, admins about anyone."
    )
    async def explain(
        self,
        info: strawberry.Info,
        entity: str,
        field: str | None = None,
        relation: str | None = None,
        subject: str | None = None,
        purpose: str | None = None,
    ) -> AccessExplanation:
        context, admin = _admin(info)
        explained: Explained = await admin.explain(
            context.principal, subject, entity, field, relation, purpose or context.purpose
        )
        return AccessExplanation(
            subject=explained.subject,
            decision=Release(explained.decision.value),
            reason=explained.reason,
            rules=explained.rules,
            grants=[_grant_view(g) for g in explained.grants],
            rowRules=None if explained.row is None else cast(JSON, explained.row.rules),
        )


@strawberry.type(description="What a reload of the manifests did.")
class ManifestReload:
    reloaded: bool = strawberry.field(description="True when the hub now serves the manifests as they are on disk.")
    entities: int = strawberry.field(description="Entities the hub serves after the reload.")
    error: str | None = strawberry.field(
        description="Why the manifests were not taken (file, entity, field); the previous ones still serve."
    )
    invalidDocuments: list[str] = strawberry.field(
        description="Trusted documents the new schema no longer validates, as `name (id)`: they are refused when run."
    )


# A client that lost an answer sends the change again with the same key: it applies once.
IDEMPOTENCY_KEY = strawberry.argument(
    description="Your key for this change (1-100 of A-Z a-z 0-9 . _ : -): sent again with the same key, "
    "the change applies once and the retry answers with replayed: true."
)


@strawberry.type(name="Mutation", description="Policy administration; every change is recorded.")
class AdminMutation:
    @strawberry.mutation(
        description="Apply edits as one change (all or nothing), recorded with your reason; "
        "with dryRun, only report who would gain or lose which fields."
    )
    async def changePolicy(
        self,
        info: strawberry.Info,
        edits: list[PolicyEditInput],
        reason: str,
        dryRun: bool = False,
        idempotencyKey: Annotated[str | None, IDEMPOTENCY_KEY] = None,
    ) -> PolicyChangeResult:
        return await _change(info, edits, reason, dryRun, idempotencyKey)

    @strawberry.mutation(description="Grant a department conditional access (a change of one edit).")
    async def grantAccess(
        self,
        info: strawberry.Info,
        grant: GrantInput,
        reason: str,
        dryRun: bool = False,
        idempotencyKey: Annotated[str | None, IDEMPOTENCY_KEY] = None,
    ) -> PolicyChangeResult:
        return await _change(info, [PolicyEditInput(op=EditOp.GRANT, grant=grant)], reason, dryRun, idempotencyKey)

    @strawberry.mutation(description="Revoke a grant (a change of one edit).")
    async def revokeGrant(
        self,
        info: strawberry.Info,
        id: strawberry.ID,
        reason: str,
        idempotencyKey: Annotated[str | None, IDEMPOTENCY_KEY] = None,
    ) -> PolicyChangeResult:
        return await _change(info, [PolicyEditInput(op=EditOp.REVOKE, grantId=id)], reason, False, idempotencyKey)

    @strawberry.mutation(description="Set an app's roles (admins only); recorded, and it bumps the policy version.")
    async def assignRoles(
        self,
        info: strawberry.Info,
        app: str,
        roles: list[str],
        reason: str,
        idempotencyKey: Annotated[str | None, IDEMPOTENCY_KEY] = None,
    ) -> list[str]:
        context, admin = _admin(info)
        return await admin.assign_roles(context.principal, app, roles, reason, idempotencyKey)

    @strawberry.mutation(
        description="Read the manifests again and serve them without a restart (admins only); a manifest "
        "that does not load or start leaves the previous ones serving, and the answer says why."
    )
    async def reloadManifests(self, info: strawberry.Info) -> ManifestReload:
        context: RequestContext = info.context
        if ADMIN not in context.principal.roles:
            raise Forbidden("only admins reload the manifests")
        if context.reload is None:
            # Only `hub serve` can swap what it serves; an embedded or test hub says so plainly.
            return ManifestReload(
                reloaded=False,
                entities=len(context.reader.catalog.entities),
                error="this hub was not started by `hub serve`, so it cannot reload its manifests; restart it instead",
                invalidDocuments=[],
            )
        report = await context.reload()
        return ManifestReload(
            reloaded=report.reloaded,
            entities=report.entities,
            error=report.error,
            invalidDocuments=list(report.invalid_documents),
        )
