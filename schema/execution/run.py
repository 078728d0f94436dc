"""Running one operation, on whichever executor fits it, into the answer the app sends.

The one entry point between HTTP and GraphQL: `run(built, operation, context)` picks the direct
plan for a document made only of lookups by key or only of aggregates (schema/execution/direct.py,
direct_aggregates.py) or else the normal
path (strawberry over graphql-core, with the fast path for wide lists), and assembles the
answer: errors, data and `extensions.access`. hub/app.py keeps HTTP (body, token, document id,
status codes) and sends what comes back.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from graphql import GraphQLError
from strawberry.exceptions import MissingQueryError
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types.graphql import OperationType

from hub.access.memory import LARGE_REQUEST_VALUES
from hub.auth.principal import Principal
from hub.errors import LimitExceeded
from hub.health.share import new_owner
from hub.services import Services
from schema.compiled import Compiled
from schema.context import RequestContext
from schema.errors import code_of, format_error
from schema.execution.hints import purposes_that_release
from schema.execution.operation import Answer, Operation

if TYPE_CHECKING:
    from schema.builder import BuiltSchema


@dataclass(frozen=True)
class Caller:
    """Who runs an operation, for what purpose (already checked), on which services."""

    services: Services
    principal: Principal
    purpose: str | None


def _context(built: BuiltSchema, caller: Caller, document: Compiled) -> RequestContext:
    services = caller.services
    context = RequestContext(
        caller.principal,
        caller.purpose,
        services.reader,
        services.planner,
        built.entity_types,
        built.root_fields,
        services.admin,
        services.audit,
        services.history,
        services.reload,
        services.lineage,
    )
    context.document = document
    return context


async def run(built: BuiltSchema, operation: Operation, caller: Caller) -> Answer:
    """Runs `operation` for `caller` and assembles its answer."""
    # Its reads, in every task it starts, share the departments' connections as one request.
    new_owner()
    document = operation.document
    plan = None
    if built.direct is not None:
        plan = built.direct.plan(document)
        name = operation.name
        if plan is not None and name is not None and (plan.operation.name is None or plan.operation.name.value != name):
            plan = None
    if plan is not None:
        assert built.direct is not None
        context = _context(built, caller, document)
        outcome = await built.direct.run(plan, context, operation.variables)
        if outcome is not None:
            data, raised = outcome
            built.schema.process_errors(raised)
            done = answer(context, data, raised, ran=True, purposes=caller.services.purposes)
            context.release()
            return done
        context.release()
    # A fresh context where the direct plan gave way (a value it cannot take as it is), as if
    # the request had come to the normal path first.
    context = _context(built, caller, document)
    try:
        result = await built.schema.execute(
            operation.text,
            variable_values=operation.variables,
            context_value=context,
            operation_name=operation.name,
            allowed_operation_types={OperationType.QUERY} if operation.read_only else None,
        )
        # Work left running under a nulled position still reports what it read (withheld,
        # masked, unreadable values); waiting for it makes that part of every answer alike.
        await context.settled()
    except (InvalidOperationTypeError, CannotGetOperationTypeError, MissingQueryError):
        # hub/app.py refuses these before running; strawberry raising them would be a 500.
        error = {
            "message": "the request names no operation that can run here",
            "extensions": {"code": "BAD_USER_INPUT"},
        }
        return Answer(400, {"errors": [error]})
    # 400 only for a document that never ran (syntax, validation, limits); errors while
    # resolving leave the rest of the data standing.
    ran = result.data is not None or any(e.path or code_of(e) == "INTERNAL" for e in result.errors or [])
    done = answer(context, result.data, result.errors or [], ran, caller.services.purposes)
    # Only once the answer is made, all the request's work settled: a request cancelled on
    # the way is left to the collector, rather than its work running on without its loaders.
    context.release()
    return done


def answer(
    context: RequestContext,
    data: dict[str, Any] | None,
    raised: list[GraphQLError],
    ran: bool,
    purposes: Iterable[str] = (),
) -> Answer:
    """The answer: errors (the resolvers', withheld and unreadable fields, rows left out) in
    the canonical order, data, and the access decision. A request past its value budget answers no data and
    one error."""
    budget = None if context.request is None else context.request.budget
    # Large: its answer is sent in slices, and its memory given back once sent; so is that of
    # a request whose reads failed after the department had been asked for many values.
    large = budget is not None and (
        budget.spent + budget.abandoned >= LARGE_REQUEST_VALUES or budget.exceeded is not None
    )
    if budget is not None and budget.exceeded is not None:
        return _refused(context, budget.exceeded)
    errors = [format_error(e) for e in raised]
    for withheld in context.withheld.values():
        errors.append(
            {
                "message": f"{withheld.path[-1]} is withheld: {withheld.reason}",
                "path": list(withheld.path),
                "extensions": {"code": "FORBIDDEN", "reason": withheld.reason, "count": withheld.count},
            }
        )
    for path, failed in context.failed_relations.items():
        error = failed.error
        extensions = {**error.extensions, "code": error.code, "count": failed.count}
        errors.append({"message": error.message, "path": list(path), "extensions": extensions})
    for path, count in context.unreadable.items():
        errors.append(
            {
                "message": f"{path[-1]}: {count} value(s) failed their integrity check and are null",
                "path": list(path),
                "extensions": {"code": "DATA_INTEGRITY", "count": count},
            }
        )
    for path, count in context.left_out.items():
        errors.append(
            {
                "message": f"{'/'.join(map(str, path))}: {count} row(s) left out: their key is missing or failed its "
                "integrity check",
                "path": list(path),
                "extensions": {"code": "DATA_INTEGRITY", "count": count},
            }
        )
    body: dict[str, Any] = {}
    if errors:
        body["errors"] = sorted(errors, key=_canonical)
    body["data"] = data
    if context.request is not None:
        body["extensions"] = {
            "access": {
                "policyVersion": context.request.plan.policy_version,
                "masked": sorted("/".join(map(str, path)) for path in context.masked),
                "withheld": sorted("/".join(map(str, w.path)) for w in context.withheld.values()),
                "truncated": [list(path) for path in context.truncated.paths],
                "truncatedCount": context.truncated.count,
            }
        }
        if context.aggregated or context.suppressed_groups:
            # Only where an aggregate ran: every other answer keeps its shape.
            body["extensions"]["access"]["aggregated"] = sorted(context.aggregated)
            body["extensions"]["access"]["suppressedGroups"] = context.suppressed_groups
        hint = purposes_that_release(context, purposes)
        if hint:
            body["extensions"]["access"]["purposesThatRelease"] = hint
    record = None if context.request is None else context.request.record
    return Answer(200 if ran else 400, body, large, record=record)


def _canonical(error: dict[str, Any]) -> tuple[Any, ...]:
    """Errors in every answer are ordered by path, then message, whichever executor ran and
    whenever each error was reported (the GraphQL specification leaves the order open). Path
    steps compare as list indices before field names, so mixed steps never fail to compare."""
    steps = tuple((0, step, "") if isinstance(step, int) else (1, 0, str(step)) for step in error.get("path") or ())
    return (steps, str(error.get("message", "")))


def _refused(context: RequestContext, exceeded: LimitExceeded) -> Answer:
    """The answer of a request past its value budget: whatever was read stays in the hub."""
    assert context.request is not None
    error = {"message": exceeded.message, "extensions": {**exceeded.extensions, "code": exceeded.code}}
    access: dict[str, Any] = {"policyVersion": context.request.plan.policy_version, "masked": [], "withheld": []}
    access.update(truncated=[], truncatedCount=0)
    return Answer(200, {"errors": [error], "data": None, "extensions": {"access": access}}, True)
