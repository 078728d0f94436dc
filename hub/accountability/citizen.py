"""Closing the loop for citizens: for one person, found by resident ID number, the requests they
made and what came of each (the service delivered, when, by which department, the budget line
that paid for it, the feedback given), and the requests with no answer yet, with their deadline.

Only a caller with role `citizen_portal` stating purpose `citizen_service` may ask (FORBIDDEN for
every other caller, whatever its grants: no other caller can walk persons through it). The ID
number counts against the caller's lookup quota before any SQL (as `personAccessHistory` does),
and is matched by its blind index, never decrypted. What is released is fixed here, not by the
caller's selection of policy: the request's number, category, moments, status and deadline; the
delivery's department, service type and moment; the budget line's code and programme; the
feedback's score and moment. Never an identifier, a name, a text or an amount. Every row read
goes into the request's access record, so the person's own access history shows the lookup.

One statement per entity: the person's requests (at most MAX_REQUESTS, newest first), the
deliveries answering them per department, their expenditures, their budget lines, the feedback.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from hub.access.plan import PLAIN, AccessPlan, Decision, Verdict
from hub.access.read import ListRead, PageArgs, Reader, RequestAccess
from hub.auth.principal import Principal
from hub.catalog import EntityInfo
from hub.catalog.demand import Demand
from hub.catalog.manifest import LineageRole
from hub.errors import Forbidden

CITIZEN_PORTAL = "citizen_portal"
CITIZEN_SERVICE = "citizen_service"
MAX_REQUESTS = 200
_HIDDEN = Verdict(Decision.DENIED, "not released by the citizen's request history")


@dataclass
class Outcome:
    department: str
    service_type: str | None
    delivered_at: datetime | None
    budget_line: str | None = None
    programme: str | None = None


@dataclass
class Rated:
    satisfaction: int | None
    submitted_at: datetime | None


@dataclass
class CitizenRequest:
    request_id: str
    category: str | None
    received_at: datetime | None
    status: str | None
    deadline: datetime | None
    closed_at: datetime | None
    services: list[Outcome] = field(default_factory=list)
    feedback: list[Rated] = field(default_factory=list)


def require_portal(principal: Principal, purpose: str | None) -> None:
    if CITIZEN_PORTAL not in principal.roles or purpose != CITIZEN_SERVICE:
        raise Forbidden(
            f"a citizen's requests are for citizen-facing apps (role {CITIZEN_PORTAL}) "
            f"stating purpose {CITIZEN_SERVICE}"
        )


def _released(demand: Demand) -> dict[str, tuple[str, ...]]:
    """The fields released per entity id: fixed, and no identifier, name, text or amount."""
    requests = demand.requests
    wanted = [requests.key, demand.category, demand.received, demand.deadline, demand.closed]
    if "status" in requests.fields:
        wanted.append("status")
    out = {requests.id: tuple(dict.fromkeys(wanted))}
    for entity in demand.deliveries.values():
        out[entity.id] = (entity.key, "requestId", "serviceType", "deliveredAt", "expenditureId")
    out[demand.roles[LineageRole.EXPENDITURE].id] = ("expenditureId", "budgetLineId")
    out[demand.roles[LineageRole.BUDGET_LINE].id] = ("lineId", "program")
    feedback = demand.roles[LineageRole.FEEDBACK]
    out[feedback.id] = tuple(dict.fromkeys((feedback.key, "requestId", "satisfaction", "submittedAt")))
    return out


def portal_plan(demand: Demand, principal: Principal, purpose: str | None, version: str) -> AccessPlan:
    """The plan of this capability: the fixed fields plain, every other field withheld, the
    requests' person field searchable by one `eq` (its blind index)."""
    plan = AccessPlan(principal, purpose, version)
    released = _released(demand)
    entities: Sequence[EntityInfo] = [demand.requests, *demand.deliveries.values(), *demand.roles.values()]
    for entity in entities:
        plan.row_rules[entity.id] = None
        for name, item in entity.fields.items():
            plain = name in released.get(entity.id, ())
            verdict = PLAIN if plain else _HIDDEN
            if entity is demand.requests and item.person:
                verdict = Verdict(Decision.DENIED, _HIDDEN.reason, lookup=True)
            plan.fields[(entity.id, name)] = verdict
    return plan


async def _rows(
    reader: Reader, request: RequestAccess, entity: EntityInfo, names: Sequence[str], spec: dict[str, Any], first: int
) -> list[dict[str, Any]]:
    # Newest first where keys follow time (the hotline's numbers do); stable either way.
    order = [(entity.key, True)]
    read = ListRead(entity, list(names), (), spec, order, PageArgs(first))
    return (await reader.page(request, read)).released.rows


async def requests_of(reader: Reader, request: RequestAccess, demand: Demand, id_number: str) -> list[CitizenRequest]:
    """The person's requests, newest first, with what came of each."""
    released = _released(demand)
    entity = demand.requests
    person = next(item for item in entity.fields.values() if item.person)
    rows = await _rows(reader, request, entity, released[entity.id], {person.name: {"eq": id_number}}, MAX_REQUESTS)
    found = {
        row[entity.key]: CitizenRequest(
            row[entity.key],
            row.get(demand.category),
            row.get(demand.received),
            row.get("status"),
            row.get(demand.deadline),
            row.get(demand.closed),
        )
        for row in rows
    }
    if not found:
        return []
    ids = sorted(found)
    paid: dict[str, list[Outcome]] = {}
    for department, delivering in sorted(demand.deliveries.items()):
        names = released[delivering.id]
        for row in await _rows(reader, request, delivering, names, {"requestId": {"in": ids}}, reader.max_page):
            outcome = Outcome(department, row.get("serviceType"), row.get("deliveredAt"))
            found[row["requestId"]].services.append(outcome)
            if row.get("expenditureId") is not None:
                paid.setdefault(row["expenditureId"], []).append(outcome)
    spending, budget = demand.roles[LineageRole.EXPENDITURE], demand.roles[LineageRole.BUDGET_LINE]
    lines: dict[str, list[Outcome]] = {}
    if paid:
        spec = {"expenditureId": {"in": sorted(paid)}}
        for row in await _rows(reader, request, spending, released[spending.id], spec, reader.max_page):
            for outcome in paid[row["expenditureId"]]:
                outcome.budget_line = row.get("budgetLineId")
                if outcome.budget_line is not None:
                    lines.setdefault(outcome.budget_line, []).append(outcome)
    if lines:
        spec = {"lineId": {"in": sorted(lines)}}
        for row in await _rows(reader, request, budget, released[budget.id], spec, reader.max_page):
            for outcome in lines[row["lineId"]]:
                outcome.programme = row.get("program")
    feedback = demand.roles[LineageRole.FEEDBACK]
    for row in await _rows(
        reader, request, feedback, released[feedback.id], {"requestId": {"in": ids}}, reader.max_page
    ):
        found[row["requestId"]].feedback.append(Rated(row.get("satisfaction"), row.get("submittedAt")))
    for item in found.values():
        item.services.sort(key=lambda o: (o.delivered_at is None, o.delivered_at, o.department))
    return [found[key] for key in sorted(found, reverse=True)]
