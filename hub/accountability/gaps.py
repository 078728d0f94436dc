"""`accountabilityGaps`: the records and groups an auditor looks for, of one kind at a time.

Record-level kinds (a `ref` per item): SPEND_WITHOUT_SERVICE (expenditures of a delivering
department that no delivery names), SERVICE_WITHOUT_BASIS (deliveries of a service type that
answers requests, naming no request and without their department's basis field),
OVERDUE_UNANSWERED (requests not closed, answered by no delivery, past their deadline).
Group-level kinds (per department, service type and district, or category and district):
SERVICE_WITHOUT_FEEDBACK, LOW_SATISFACTION, DEMAND_WITHOUT_BUDGET. Exact definitions:
docs/lineage.md, "Reports". Every read is an aggregate under the caller's plan; an item built
on a suppressed cell keeps its reference or group and has its figures null.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from hub.accountability.cells import Reading
from hub.accountability.ledger import unanswered_filter
from hub.catalog import EntityInfo
from hub.catalog.demand import Demand
from hub.catalog.manifest import LineageRole
from hub.errors import BadUserInput
from hub.lineage.refs import plain_ref

GAP_KINDS = (
    "SPEND_WITHOUT_SERVICE",
    "SERVICE_WITHOUT_BASIS",
    "OVERDUE_UNANSWERED",
    "SERVICE_WITHOUT_FEEDBACK",
    "LOW_SATISFACTION",
    "DEMAND_WITHOUT_BUDGET",
)


@dataclass(frozen=True)
class GapFilter:
    department: str | None = None
    district: str | None = None
    service_type: str | None = None
    start: datetime | None = None
    end: datetime | None = None


@dataclass
class GapItem:
    kind: str
    ref: str | None
    group: dict[str, str] | None
    figures: list[tuple[str, Any]]
    # The record of a record-level gap: its entity and key.
    entity: EntityInfo | None = None
    key: Any = None


def _period(name: str, chosen: GapFilter) -> dict[str, Any]:
    bounds: dict[str, Any] = {}
    if chosen.start is not None:
        bounds["gte"] = chosen.start
    if chosen.end is not None:
        bounds["lt"] = chosen.end
    return {name: bounds} if bounds else {}


def _record(kind: str, entity: EntityInfo, key: Any, figures: list[tuple[str, Any]]) -> GapItem:
    """A record-level gap: its plain reference (gaps list only keys released plain: they are
    group keys of aggregates, which need it)."""
    return GapItem(kind, plain_ref(entity, key), None, figures, entity, key)


async def gaps(
    reading: Reading, demand: Demand, kind: str, chosen: GapFilter, as_of: datetime, threshold: float, min_requests: int
) -> list[GapItem]:
    if min_requests < 1 or min_requests > 1_000_000:
        raise BadUserInput("minRequests must be between 1 and 1000000")
    if not 0 <= threshold <= 100:
        raise BadUserInput("threshold must be between 0 and 100")
    if kind == "SPEND_WITHOUT_SERVICE":
        return await _spend_without_service(reading, demand, chosen)
    if kind == "SERVICE_WITHOUT_BASIS":
        return await _service_without_basis(reading, demand, chosen)
    if kind == "OVERDUE_UNANSWERED":
        return await _overdue(reading, demand, chosen, as_of)
    if kind in ("SERVICE_WITHOUT_FEEDBACK", "LOW_SATISFACTION"):
        return await _feedback_groups(reading, demand, kind, chosen, threshold)
    return await _demand_without_budget(reading, demand, chosen, min_requests)


def _departments(demand: Demand, chosen: GapFilter) -> dict[str, Any]:
    return {d: e for d, e in demand.deliveries.items() if chosen.department in (None, d)}


async def _spend_without_service(reading: Reading, demand: Demand, chosen: GapFilter) -> list[GapItem]:
    spending = demand.roles[LineageRole.EXPENDITURE]
    departments = _departments(demand, chosen)
    if chosen.district is not None or chosen.service_type is not None or not departments:
        # Spending with no delivery has no district or service type to match.
        return []
    spec = {"department": {"in": sorted(departments)}, **_period("paidAt", chosen)}
    paid = reading.plain(spending, "amount")
    measures = [("sum", "amount")] if paid else []
    # By key, in one statement; counted per line first, so that past the bound on report rows
    # it is refused before the expenditures are read.
    counts = await reading.cells(spending, spec, ("budgetLineId",))
    reading.rows.expect(sum(c.values["count"] for c in counts))
    cells = await reading.cells(spending, spec, ("expenditureId", "budgetLineId", "department"), measures)
    # Every expenditure a delivery names, per department side by side (one statement each).
    named = await asyncio.gather(
        *(reading.cells_in(entity, "expenditureId", None, {}, ("expenditureId",)) for entity in departments.values())
    )
    funded = {c.key["expenditureId"] for cells_of in named for c in cells_of}
    return [
        _record(
            "SPEND_WITHOUT_SERVICE",
            spending,
            c.key["expenditureId"],
            [("amount", c.measure("sum.amount") if paid else None)],
        )
        for c in sorted(cells, key=lambda c: c.key["expenditureId"])
        if c.key["expenditureId"] not in funded
    ]


def _delivery_spec(entity: Any, chosen: GapFilter) -> dict[str, Any]:
    spec: dict[str, Any] = _period("deliveredAt", chosen)
    if chosen.district is not None:
        spec["districtCode"] = {"eq": chosen.district}
    if chosen.service_type is not None:
        spec["serviceType"] = {"eq": chosen.service_type}
    return spec


async def _service_without_basis(reading: Reading, demand: Demand, chosen: GapFilter) -> list[GapItem]:
    async def one(department: str, entity: EntityInfo) -> list[GapItem]:
        spec = {**_delivery_spec(entity, chosen), "requestId": {"isNull": True}}
        spec["serviceType"] = {"in": [t for t in demand.service_types(department) if chosen.service_type in (None, t)]}
        basis = demand.bases.get(department)
        if basis is not None:
            spec[basis] = {"isNull": True}
        plain = reading.plain(entity, "amount")
        cells = await reading.cells(entity, spec, (entity.key,), [("sum", "amount")] if plain else [])
        return [
            _record(
                "SERVICE_WITHOUT_BASIS",
                entity,
                cell.key[entity.key],
                [("amount", cell.measure("sum.amount") if plain else None)],
            )
            for cell in cells
        ]

    found = await asyncio.gather(*(one(d, e) for d, e in sorted(_departments(demand, chosen).items())))
    return [item for items in found for item in items]


def _categories(demand: Demand, chosen: GapFilter) -> list[str] | None:
    """The categories a department or service type answers; None when neither is asked."""
    if chosen.department is None and chosen.service_type is None:
        return None
    return sorted(
        c
        for c, pairs in demand.answers.items()
        if any(chosen.department in (None, d) and chosen.service_type in (None, s) for d, s in pairs)
    )


async def _overdue(reading: Reading, demand: Demand, chosen: GapFilter, as_of: datetime) -> list[GapItem]:
    requests = demand.requests
    spec = {**unanswered_filter(demand, chosen.district), demand.deadline: {"lt": as_of}}
    spec.update(_period(demand.received, chosen))
    categories = _categories(demand, chosen)
    if categories is not None:
        spec[demand.category] = {"in": categories}
    cells = await reading.cells(requests, spec, (requests.key,), [("min", demand.deadline)])
    return [
        _record(
            "OVERDUE_UNANSWERED",
            requests,
            c.key[requests.key],
            [
                (
                    "daysOverdue",
                    None
                    if c.measure(f"min.{demand.deadline}") is None
                    else (as_of - c.measure(f"min.{demand.deadline}")).days,
                )
            ],
        )
        for c in cells
    ]


async def _feedback_groups(
    reading: Reading, demand: Demand, kind: str, chosen: GapFilter, threshold: float
) -> list[GapItem]:
    feedback = demand.roles[LineageRole.FEEDBACK]
    # (department, service type, district) -> {request: deliveries}; None marks a suppressed cell.
    groups: dict[tuple[str, str, str], dict[str, int | None]] = defaultdict(dict)
    chosen_departments = sorted(_departments(demand, chosen).items())
    answering = await asyncio.gather(
        *(
            reading.cells(
                entity,
                {**_delivery_spec(entity, chosen), "requestId": {"isNull": False}},
                ("requestId", "serviceType", "districtCode"),
            )
            for _, entity in chosen_departments
        )
    )
    for (department, _), cells in zip(chosen_departments, answering, strict=True):
        for cell in cells:
            key = (department, cell.key["serviceType"], cell.key["districtCode"])
            groups[key][cell.key["requestId"]] = cell.measure("count")
    asked = {r for requests in groups.values() for r in requests}
    rated: dict[str, tuple[int, float] | None] = {}
    for cell in await reading.cells_in(feedback, "requestId", asked, {}, ("requestId",), [("sum", "satisfaction")]):
        count, total = cell.measure("count"), cell.measure("sum.satisfaction")
        rated[cell.key["requestId"]] = None if count is None or total is None else (count, float(total))
    out: list[GapItem] = []
    for (department, service, district), requests in sorted(groups.items()):
        group = {"department": department, "serviceType": service, "districtCode": district}
        hidden = any(n is None for n in requests.values()) or any(rated.get(r, (0, 0.0)) is None for r in requests)
        if kind == "SERVICE_WITHOUT_FEEDBACK":
            without = sum(n or 0 for r, n in requests.items() if r not in rated)
            if without or hidden:
                deliveries = None if hidden else sum(n or 0 for n in requests.values())
                out.append(
                    GapItem(
                        kind,
                        None,
                        group,
                        [("deliveries", deliveries), ("withoutFeedback", None if hidden else without)],
                    )
                )
            continue
        pairs = [rated[r] for r in requests if r in rated]
        count = sum(p[0] for p in pairs if p is not None)
        total = sum(p[1] for p in pairs if p is not None)
        if hidden:
            out.append(GapItem(kind, None, group, [("feedback", None), ("meanSatisfaction", None)]))
        elif count and total / count < threshold:
            out.append(GapItem(kind, None, group, [("feedback", count), ("meanSatisfaction", total / count)]))
    return out


async def _demand_without_budget(
    reading: Reading, demand: Demand, chosen: GapFilter, min_requests: int
) -> list[GapItem]:
    requests = demand.requests
    spec: dict[str, Any] = _period(demand.received, chosen)
    if chosen.district is not None:
        spec[demand.district] = {"eq": chosen.district}
    categories = _categories(demand, chosen)
    if categories is not None:
        spec[demand.category] = {"in": categories}
    delivering = sorted(demand.deliveries.items())
    where = GapFilter(None, chosen.district, None, chosen.start, chosen.end)
    asked, *found = await asyncio.gather(
        reading.cells(requests, spec or None, (demand.category, demand.district)),
        *(
            reading.cells(
                entity,
                {**_delivery_spec(entity, where), "expenditureId": {"isNull": False}},
                ("serviceType", "districtCode"),
            )
            for _, entity in delivering
        ),
    )
    paid = {
        (department, cell.key["serviceType"], cell.key["districtCode"])
        for (department, _), cells in zip(delivering, found, strict=True)
        for cell in cells
    }
    out: list[GapItem] = []
    for cell in sorted(asked, key=lambda c: (c.key[demand.category], c.key[demand.district])):
        category, district = cell.key[demand.category], cell.key[demand.district]
        count = cell.measure("count")
        answered_by = demand.answers.get(category, ())
        if any((d, s, district) in paid for d, s in answered_by):
            continue
        if cell.suppressed or count is None:
            continue  # too few persons to tell, and so too few requests to count as demand
        if count >= min_requests:
            group = {"category": category, "districtCode": district}
            out.append(GapItem("DEMAND_WITHOUT_BUDGET", None, group, [("requests", count)]))
    return out
