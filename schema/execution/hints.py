"""The purpose hint: which stated purposes would release plain what an answer masked or
withheld, for a caller that stated none (`extensions.access.purposesThatRelease`).

Only a purpose under which this caller's own decisions turn PLAIN is named, so the hint tells
a caller nothing it could not learn by retrying with each purpose: grants held by other
departments never show. Decisions come from the planner's cache (one entry per purpose), so
the hint costs dictionary lookups once the caller's decisions are warm, and nothing at all for
a caller that stated a purpose or whose answer hid nothing."""

from __future__ import annotations

from collections.abc import Iterable

from hub.access.plan import Decision
from schema.context import RequestContext


def purposes_that_release(context: RequestContext, purposes: Iterable[str]) -> list[str]:
    request = context.request
    if request is None or context.purpose is not None or not (context.masked or context.withheld):
        return []
    selection = context.document.planned if context.document is not None else None
    if selection is None:
        return []
    plan = request.plan
    hidden = [
        (entity_id, name)
        for entity_id, names in selection.fields.items()
        for name in names
        if (entity_id, name) in plan.fields and plan.fields[(entity_id, name)].decision is not Decision.PLAIN
    ]
    if not hidden:
        return []
    catalog = context.planner.catalog
    found = []
    for purpose in sorted(purposes):
        for entity_id, name in hidden:
            entity = catalog.entity(entity_id)
            verdict = context.planner.field(context.principal, purpose, entity, entity.fields[name])
            if verdict.decision is Decision.PLAIN:
                found.append(purpose)
                break
    return found
