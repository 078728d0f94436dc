"""`budgetLineAccountability`: per budget line, what was allocated, spent and delivered, whom it
answered, how fast, how they rated it, and the gaps behind it.

Every figure comes from aggregates pushed into the departments' SQL (hub/accountability/cells.py),
keyed small (per budget line, per expenditure, per answered request) and joined here:

1. finance: the budget lines in the filter (one group each), then their expenditures grouped by
   (line, expenditure): what each paid;
2. each delivering department: deliveries grouped by (expenditure, service type, district); the
   answered requests grouped by (request, expenditure) with their first delivery's moment; the
   deliveries without basis grouped by expenditure;
3. the hotline: for the answered requests only, their receipt moment and feedback; and the
   unanswered and overdue requests grouped by (category, district, year).

A line's district is that of the deliveries it paid for. Response times pair each answered
request's receipt (hotline) with the first delivery the line paid that answered it (the
department), in hours; median and 90th percentile by linear interpolation (cells.percentile).
Definitions: docs/lineage.md, "Reports".
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from connectors.aggregates import Bucket
from hub.access.aggregate import Cell
from hub.accountability.cells import Reading, percentile
from hub.catalog.demand import Demand
from hub.catalog.manifest import LineageRole

YEAR = Bucket.YEAR


@dataclass(frozen=True)
class LineFilter:
    fiscal_year: int | None = None
    department: str | None = None
    district: str | None = None
    programme: str | None = None
    line_id: str | None = None


@dataclass
class ServiceFigure:
    department: str
    service_type: str
    deliveries: int | None
    amount: Decimal | None


@dataclass
class LineReport:
    line_id: str
    department: str
    fiscal_year: int
    programme: str
    allocated: Decimal | None
    spent: Decimal | None = None
    expenditures: int = 0
    services: list[ServiceFigure] = field(default_factory=list)
    services_delivered: int | None = 0
    districts: list[str] = field(default_factory=list)
    requests_answered: int | None = 0
    requests_unanswered: int | None = 0
    feedback_count: int | None = 0
    mean_satisfaction: float | None = None
    cost_per_answered_request: Decimal | None = None
    median_response_hours: float | None = None
    p90_response_hours: float | None = None
    spend_without_service: int = 0
    service_without_basis: int | None = 0
    overdue_unanswered: int | None = 0
    # Figures left null: a small group of persons behind them, or a field not released plain.
    suppressed: list[str] = field(default_factory=list)
    withheld: list[str] = field(default_factory=list)


def unanswered_filter(demand: Demand, district: str | None) -> dict[str, Any]:
    """Requests not closed that no delivery answers: the filter of `hotlineRequests` (and of
    the aggregate the reports count them with)."""
    spec: dict[str, Any] = {demand.closed: {"isNull": True}}
    for name, relation in demand.requests.relations.items():
        if relation.target in {e.id for e in demand.deliveries.values()}:
            # The related side's key set holds only deliveries that name a request.
            spec[name] = {"none": {"requestId": {"isNull": False}}}
    if district is not None:
        spec[demand.district] = {"eq": district}
    return spec


async def budget_lines(reading: Reading, demand: Demand, chosen: LineFilter, as_of: datetime) -> list[LineReport]:
    budget = demand.roles[LineageRole.BUDGET_LINE]
    spending = demand.roles[LineageRole.EXPENDITURE]
    spec: dict[str, Any] = {}
    for name, value in (
        ("fiscalYear", chosen.fiscal_year),
        ("department", chosen.department),
        ("program", chosen.programme),
        ("lineId", chosen.line_id),
    ):
        if value is not None:
            spec[name] = {"eq": value}
    allocated = reading.plain(budget, "amount")
    found = await reading.cells(
        budget,
        spec or None,
        ("lineId", "department", "fiscalYear", "program"),
        [("sum", "amount")] if allocated else [],
    )
    reports = {
        c.key["lineId"]: LineReport(
            c.key["lineId"],
            c.key["department"],
            c.key["fiscalYear"],
            c.key["program"],
            c.measure("sum.amount") if allocated else None,
        )
        for c in found
    }
    if not allocated:
        _mark_all(reports.values(), "allocated", withheld=True)
    paid = reading.plain(spending, "amount")
    # Per (line, expenditure), in one statement: counted per line first, so that a report past
    # the bound on its rows is refused before the expenditures are read.
    counts = await reading.cells_in(spending, "budgetLineId", reports, {}, ("budgetLineId",))
    reading.rows.expect(sum(c.values["count"] for c in counts))
    measures = [("sum", "amount")] if paid else []
    expenditures = await reading.cells_in(
        spending, "budgetLineId", reports, {}, ("budgetLineId", "expenditureId"), measures
    )
    line_of = {c.key["expenditureId"]: c.key["budgetLineId"] for c in expenditures}
    # Every line in scope: the deliveries need no list of expenditures, so each department
    # answers each question in one statement over its table (lists of expenditures, in chunks
    # of MAX_IN, would scan it once per chunk: work growing with the square of the data).
    ledger = _Ledger(reports, line_of, demand, everything=not spec)
    # The departments' reads run side by side: each is one statement on its own database.
    await asyncio.gather(
        *(
            ledger.deliveries(reading, department, entity, chosen.district)
            for department, entity in demand.deliveries.items()
        )
    )
    # With a district, a line's spending is that of the expenditures paying deliveries there.
    in_scope = [c for c in expenditures if chosen.district is None or c.key["expenditureId"] in ledger.funded]
    # Built once: a union per expenditure made the report quadratic in its expenditures.
    covered = ledger.funded | ledger.hidden
    for cell in in_scope:
        report = reports[cell.key["budgetLineId"]]
        report.expenditures += 1
        delivering = report.department in demand.deliveries
        if delivering and cell.key["expenditureId"] not in covered:
            report.spend_without_service += 1
        if paid:
            report.spent = (report.spent or Decimal(0)) + (cell.measure("sum.amount") or Decimal(0))
    if not paid:
        _mark_all(reports.values(), "spent", withheld=True)
    await ledger.requests(reading, chosen.district, as_of)
    kept = [r for r in reports.values() if chosen.district is None or r.districts]
    for report in kept:
        ledger.finish(report)
    return kept


def _mark_all(reports: Any, name: str, *, withheld: bool) -> None:
    for report in reports:
        (report.withheld if withheld else report.suppressed).append(name)


class _Ledger:
    """The per-key results of one report, joined by budget line."""

    def __init__(
        self, reports: dict[str, LineReport], line_of: dict[str, str], demand: Demand, *, everything: bool
    ) -> None:
        self.reports, self.line_of, self.demand, self.everything = reports, line_of, demand, everything
        self.funded: set[str] = set()
        # Expenditures whose deliveries sit in suppressed cells: neither shown nor a gap.
        self.hidden: set[str] = set()
        self.services: dict[str, dict[tuple[str, str], list[Cell]]] = defaultdict(lambda: defaultdict(list))
        self.districts: dict[str, set[str]] = defaultdict(set)
        # line -> request -> the first delivery's moment; None when its cell is suppressed.
        # Keyed by line first, so that each line finds its own requests without a scan.
        self.first: dict[str, dict[str, datetime | None]] = defaultdict(dict)
        self.suppressed: dict[str, set[str]] = defaultdict(set)
        self.withheld: dict[str, set[str]] = defaultdict(set)
        self.received: dict[str, datetime | None] = {}
        self.feedback: dict[str, tuple[int, float] | None] = {}
        self.open: dict[tuple[str, str, int], Cell] = {}
        self.overdue: dict[tuple[str, str, int], Cell] = {}

    async def deliveries(self, reading: Reading, department: str, entity: Any, district: str | None) -> None:
        spent = None if self.everything else list(self.line_of)
        rest: dict[str, Any] = {} if district is None else {"districtCode": {"eq": district}}
        plain = reading.plain(entity, "amount")
        basis = self.demand.bases.get(department)
        without = {
            **rest,
            "requestId": {"isNull": True},
            "serviceType": {"in": list(self.demand.service_types(department))},
        }
        if basis is not None:
            without[basis] = {"isNull": True}
        cells, answered, baseless = await asyncio.gather(
            reading.cells_in(
                entity,
                "expenditureId",
                spent,
                rest,
                ("expenditureId", "serviceType", "districtCode"),
                [("sum", "amount")] if plain else [],
            ),
            reading.cells_in(
                entity,
                "expenditureId",
                spent,
                {**rest, "requestId": {"isNull": False}},
                ("requestId", "expenditureId"),
                [("min", "deliveredAt")],
            ),
            reading.cells_in(entity, "expenditureId", spent, without, ("expenditureId",)),
        )
        for cell in cells:
            expenditure = cell.key["expenditureId"]
            line = self.line_of.get(expenditure)
            if line is None:
                continue
            (self.hidden if cell.suppressed else self.funded).add(expenditure)
            self.services[line][(department, cell.key["serviceType"])].append(cell)
            self.districts[line].add(cell.key["districtCode"])
            if not plain:
                self.withheld[line].add("services.amount")
        for cell in answered:
            line = self.line_of.get(cell.key["expenditureId"])
            if line is None:
                continue
            request = cell.key["requestId"]
            firsts = self.first[line]
            moment = cell.measure("min.deliveredAt")
            if cell.suppressed:
                self.suppressed[line].update(("requestsAnswered", "responseHours"))
            elif request not in firsts or (moment is not None and (firsts[request] or moment) >= moment):
                firsts[request] = moment
            firsts.setdefault(request, None)
        for cell in baseless:
            line = self.line_of.get(cell.key["expenditureId"])
            if line is None:
                continue
            report = self.reports[line]
            if cell.suppressed:
                self.suppressed[line].add("serviceWithoutBasis")
            elif report.service_without_basis is not None:
                report.service_without_basis += cell.measure("count")

    async def requests(self, reading: Reading, district: str | None, as_of: datetime) -> None:
        demand = self.demand
        asked = {request for firsts in self.first.values() for request in firsts}
        feedback = demand.roles[LineageRole.FEEDBACK]
        groups = (demand.category, demand.district)
        bucket = (demand.received, YEAR)
        spec = unanswered_filter(demand, district)
        overdue = {**spec, demand.deadline: {"lt": as_of}}
        received, rated, still_open, late = await asyncio.gather(
            reading.cells_in(demand.requests, "requestId", asked, {}, ("requestId",), [("min", demand.received)]),
            reading.cells_in(feedback, "requestId", asked, {}, ("requestId",), [("sum", "satisfaction")]),
            reading.cells(demand.requests, spec, groups, bucket=bucket),
            reading.cells(demand.requests, overdue, groups, bucket=bucket),
        )
        for cell in received:
            self.received[cell.key["requestId"]] = cell.measure(f"min.{demand.received}")
        for cell in rated:
            count, total = cell.measure("count"), cell.measure("sum.satisfaction")
            self.feedback[cell.key["requestId"]] = None if count is None or total is None else (count, float(total))
        for cell in still_open:
            self.open[_group_key(demand, cell)] = cell
        for cell in late:
            self.overdue[_group_key(demand, cell)] = cell

    def finish(self, report: LineReport) -> None:
        line = report.line_id
        suppressed, withheld = self.suppressed[line], self.withheld[line]
        delivered = 0
        for (department, service_type), cells in sorted(self.services[line].items()):
            hidden = any(c.suppressed for c in cells)
            count = None if hidden else sum(c.measure("count") for c in cells)
            amounts = [c.measure("sum.amount") for c in cells]
            amount = None if hidden or any(a is None for a in amounts) else sum(amounts, Decimal(0))
            report.services.append(ServiceFigure(department, service_type, count, amount))
            if hidden:
                suppressed.add("servicesDelivered")
            else:
                delivered += count or 0
        report.services_delivered = None if "servicesDelivered" in suppressed else delivered
        report.districts = sorted(self.districts[line])
        firsts = self.first.get(line, {})
        requests = sorted(firsts)
        report.requests_answered = None if "requestsAnswered" in suppressed else len(requests)
        hours = []
        for request in requests:
            received, delivered_at = self.received.get(request), firsts[request]
            if received is None or delivered_at is None:
                suppressed.add("responseHours")
                continue
            hours.append((delivered_at - received).total_seconds() / 3600)
        if "responseHours" not in suppressed:
            hours.sort()
            report.median_response_hours = percentile(hours, 0.5)
            report.p90_response_hours = percentile(hours, 0.9)
        rated = [self.feedback[r] for r in requests if r in self.feedback]
        if any(f is None for f in rated):
            suppressed.add("meanSatisfaction")
            report.feedback_count = None
        else:
            pairs = [f for f in rated if f is not None]
            count = sum(c for c, _ in pairs)
            report.feedback_count = count
            report.mean_satisfaction = sum(t for _, t in pairs) / count if count else None
        if report.spent is not None and report.requests_answered:
            report.cost_per_answered_request = (report.spent / report.requests_answered).quantize(Decimal("0.01"))
        categories = {
            c for department, service in self.services[line] for c in self.demand.categories_of(department, service)
        }
        report.requests_unanswered = self._count(self.open, categories, report, "requestsUnanswered", suppressed)
        report.overdue_unanswered = self._count(self.overdue, categories, report, "overdueUnanswered", suppressed)
        if "serviceWithoutBasis" in suppressed:
            report.service_without_basis = None
        report.suppressed = sorted(set(report.suppressed) | suppressed)
        report.withheld = sorted(set(report.withheld) | withheld)

    def _count(
        self,
        cells: dict[tuple[str, str, int], Cell],
        categories: set[str],
        report: LineReport,
        name: str,
        suppressed: set[str],
    ) -> int | None:
        total = 0
        for category in categories:
            for district in report.districts:
                cell = cells.get((category, district, report.fiscal_year))
                if cell is None:
                    continue
                if cell.suppressed:
                    suppressed.add(name)
                    return None
                total += cell.measure("count")
        return total


def _group_key(demand: Demand, cell: Cell) -> tuple[str, str, int]:
    return (cell.key[demand.category], cell.key[demand.district], cell.key["bucket"].year)
