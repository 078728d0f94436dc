"""The accountability reports' part of the schema: `budgetLineAccountability` and
`accountabilityGaps`. Resolvers are thin: hub/accountability computes every figure through the
aggregates' access checks and suppression; here the caller's arguments are read, the report's
entities planned once per request, and the answer ordered and paged."""

import enum
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Optional

import strawberry

from hub.access.plan import Selection
from hub.accountability.bound import ReportRows
from hub.accountability.cells import Reading
from hub.accountability.citizen import CitizenRequest, portal_plan, requests_of, require_portal
from hub.accountability.gaps import GapFilter, GapItem, gaps
from hub.accountability.ledger import LineFilter, LineReport, budget_lines
from hub.catalog import Catalog
from hub.catalog.demand import Demand
from hub.errors import BadUserInput
from hub.lineage.refs import RecordRef
from schema.context import RequestContext, available
from schema.records import fields_by_type, needs_by_entity, records_by_ref
from schema.selection import child_fields

DEFAULT_FIRST = 100
MAX_FIRST = 10_000
# The fields whose work grows with the data in scope: demand control prices each at the
# per-key rows it may join (schema/demand.py), and they share one bound per request.
REPORT_FIELDS = ("budgetLineAccountability", "accountabilityGaps")


@strawberry.type(description="Deliveries of one service type that a budget line paid for.")
class ServiceFigure:
    department: str
    serviceType: str
    deliveries: int | None
    amount: Decimal | None


@strawberry.type(description="The accountability gaps behind one budget line (docs/lineage.md, Reports).")
class LineGaps:
    spendWithoutService: int
    serviceWithoutBasis: int | None
    overdueUnanswered: int | None


@strawberry.type(
    description="One budget line: the money, what it paid for, whom it answered. Definitions: docs/lineage.md."
)
class BudgetLineAccountability:
    lineId: str
    department: str
    fiscalYear: int
    programme: str
    allocated: Decimal | None
    spent: Decimal | None
    expenditures: int
    servicesDelivered: int | None
    services: list[ServiceFigure]
    districts: list[str] = strawberry.field(description="The districts of the deliveries it paid for.")
    requestsAnswered: int | None
    requestsUnanswered: int | None = strawberry.field(
        description="Open requests no delivery answers, in the categories its services answer, "
        "its districts and its year."
    )
    feedbackCount: int | None
    meanSatisfaction: float | None
    costPerAnsweredRequest: Decimal | None
    medianResponseHours: float | None
    p90ResponseHours: float | None
    gaps: LineGaps
    suppressed: list[str] = strawberry.field(
        description="Figures null because a small group of persons is behind them."
    )
    withheld: list[str] = strawberry.field(
        description="Figures null because a field behind them is not released plain to you."
    )


@strawberry.type(description="A page of the report.")
class ReportPageInfo:
    hasNextPage: bool
    endCursor: str | None


@strawberry.type
class BudgetLineAccountabilityConnection:
    nodes: list[BudgetLineAccountability]
    totalCount: int
    pageInfo: ReportPageInfo


@strawberry.input(description="Which budget lines; every condition given must hold.")
class BudgetLineFilter:
    fiscalYear: int | None = None
    department: str | None = None
    district: str | None = strawberry.field(
        default=None, description="Lines that paid for deliveries in this district."
    )
    programme: str | None = None
    lineId: str | None = strawberry.field(default=None, description="One budget line, by its code.")
    asOf: datetime | None = strawberry.field(
        default=None, description="The moment deadlines are judged at (overdue figures); by default now."
    )


@strawberry.enum
class BudgetLineOrderField(enum.Enum):
    LINE_ID = "line_id"
    ALLOCATED = "allocated"
    SPENT = "spent"
    SERVICES_DELIVERED = "services_delivered"
    REQUESTS_ANSWERED = "requests_answered"
    REQUESTS_UNANSWERED = "requests_unanswered"
    COST_PER_ANSWERED_REQUEST = "cost_per_answered_request"
    MEAN_SATISFACTION = "mean_satisfaction"
    MEDIAN_RESPONSE_HOURS = "median_response_hours"


@strawberry.input(description="The lines' order; nulls last, ties by line id.")
class BudgetLineOrder:
    by: BudgetLineOrderField
    descending: bool = False


@strawberry.enum(description="The kinds of accountability gap (docs/lineage.md, Reports).")
class GapKind(enum.Enum):
    SPEND_WITHOUT_SERVICE = "SPEND_WITHOUT_SERVICE"
    SERVICE_WITHOUT_BASIS = "SERVICE_WITHOUT_BASIS"
    OVERDUE_UNANSWERED = "OVERDUE_UNANSWERED"
    SERVICE_WITHOUT_FEEDBACK = "SERVICE_WITHOUT_FEEDBACK"
    LOW_SATISFACTION = "LOW_SATISFACTION"
    DEMAND_WITHOUT_BUDGET = "DEMAND_WITHOUT_BUDGET"


@strawberry.input(description="A period: from (inclusive) to (exclusive).")
class Period:
    start: datetime | None = None
    end: datetime | None = None


@strawberry.input(description="Which gaps; every condition given must hold.")
class GapsFilter:
    department: str | None = None
    district: str | None = None
    serviceType: str | None = None
    period: Period | None = None
    asOf: datetime | None = strawberry.field(
        default=None, description="OVERDUE_UNANSWERED: the moment deadlines are judged at; by default now."
    )
    threshold: float = strawberry.field(default=3.0, description="LOW_SATISFACTION: a mean below this, 0-100.")
    minRequests: int = strawberry.field(default=20, description="DEMAND_WITHOUT_BUDGET: at least this many requests.")


@strawberry.type(description="One figure of a gap.")
class GapFigure:
    name: str
    value: float | None


@strawberry.type(
    description="The group a group-level gap is about "
    "(LOW_SATISFACTION, SERVICE_WITHOUT_FEEDBACK, DEMAND_WITHOUT_BUDGET)."
)
class GapGroup:
    department: str | None
    serviceType: str | None
    category: str | None
    districtCode: str | None


@strawberry.type(description="A service that answered a citizen's request, and the budget line that paid for it.")
class CitizenService:
    department: str
    serviceType: str | None
    deliveredAt: datetime | None
    budgetLineId: str | None
    programme: str | None


@strawberry.type(description="The citizen's feedback on a request.")
class CitizenFeedback:
    satisfaction: int | None
    submittedAt: datetime | None


@strawberry.type(description="One request a citizen made, and what came of it.")
class CitizenRequestOutcome:
    requestId: str
    category: str | None
    receivedAt: datetime | None
    status: str | None
    deadline: datetime | None
    closedAt: datetime | None
    answered: bool = strawberry.field(description="A delivered service answers it.")
    overdue: bool = strawberry.field(description="Not answered, not closed, and past its deadline now.")
    services: list[CitizenService]
    feedback: list[CitizenFeedback]


def _outcome(item: CitizenRequest, now: datetime) -> CitizenRequestOutcome:
    open_ = not item.services and item.closed_at is None
    return CitizenRequestOutcome(
        requestId=item.request_id,
        category=item.category,
        receivedAt=item.received_at,
        status=item.status,
        deadline=item.deadline,
        closedAt=item.closed_at,
        answered=bool(item.services),
        overdue=open_ and item.deadline is not None and item.deadline < now,
        services=[
            CitizenService(
                department=o.department,
                serviceType=o.service_type,
                deliveredAt=o.delivered_at,
                budgetLineId=o.budget_line,
                programme=o.programme,
            )
            for o in item.services
        ],
        feedback=[CitizenFeedback(satisfaction=f.satisfaction, submittedAt=f.submitted_at) for f in item.feedback],
    )


def report_selection(demand: Demand) -> Selection:
    """Everything the reports read, as the planner takes it: built once per schema."""
    entities = [demand.requests, *demand.deliveries.values(), *demand.roles.values()]
    return Selection({e.id: frozenset() for e in entities}, {})


def _reading(context: RequestContext, selection: Selection) -> Reading:
    plan = context.planner.plan(context.principal, context.purpose, selection)
    if context.report_rows is None:
        context.report_rows = ReportRows(context.reader.max_report_rows)
    return Reading(context.reader, context.access(plan), context.report_rows)


def _page(context: RequestContext, tag: str, first: int | None, after: str | None) -> tuple[int, int]:
    limit = DEFAULT_FIRST if first is None else first
    if limit < 0 or limit > MAX_FIRST:
        raise BadUserInput(f"`first` must be between 0 and {MAX_FIRST}")
    offset = 0
    if after is not None:
        (offset,) = context.reader.cursors.decode(f"{context.principal.subject}|{tag}", after)
        if not isinstance(offset, int) or offset < 0:
            raise BadUserInput("`after` is not a cursor of this report")
    return offset, limit


def _info(context: RequestContext, tag: str, offset: int, limit: int, total: int) -> ReportPageInfo:
    more = total > offset + limit
    cursor = context.reader.cursors.encode(f"{context.principal.subject}|{tag}", [offset + limit]) if more else None
    return ReportPageInfo(hasNextPage=more, endCursor=cursor)


def _done(context: RequestContext, reading: Reading) -> None:
    context.count_aggregated(reading.aggregated, reading.groups_suppressed)


def _line(report: LineReport) -> BudgetLineAccountability:
    return BudgetLineAccountability(
        lineId=report.line_id,
        department=report.department,
        fiscalYear=report.fiscal_year,
        programme=report.programme,
        allocated=report.allocated,
        spent=report.spent,
        expenditures=report.expenditures,
        servicesDelivered=report.services_delivered,
        services=[
            ServiceFigure(department=s.department, serviceType=s.service_type, deliveries=s.deliveries, amount=s.amount)
            for s in report.services
        ],
        districts=report.districts,
        requestsAnswered=report.requests_answered,
        requestsUnanswered=report.requests_unanswered,
        feedbackCount=report.feedback_count,
        meanSatisfaction=report.mean_satisfaction,
        costPerAnsweredRequest=report.cost_per_answered_request,
        medianResponseHours=report.median_response_hours,
        p90ResponseHours=report.p90_response_hours,
        gaps=LineGaps(
            spendWithoutService=report.spend_without_service,
            serviceWithoutBasis=report.service_without_basis,
            overdueUnanswered=report.overdue_unanswered,
        ),
        suppressed=report.suppressed,
        withheld=report.withheld,
    )


def _sort(reports: list[LineReport], order: list[BudgetLineOrder]) -> list[LineReport]:
    out = sorted(reports, key=lambda r: r.line_id)
    for step in reversed(order):
        name = step.by.value
        present = [r for r in out if getattr(r, name) is not None]
        absent = [r for r in out if getattr(r, name) is None]
        present.sort(key=lambda r: getattr(r, name), reverse=step.descending)
        out = present + absent
    return out


def _gap(gap_type: Any, item: GapItem, record: Any) -> Any:
    group = None
    if item.group is not None:
        group = GapGroup(
            department=item.group.get("department"),
            serviceType=item.group.get("serviceType"),
            category=item.group.get("category"),
            districtCode=item.group.get("districtCode"),
        )
    return gap_type(
        kind=GapKind(item.kind),
        record=record,
        ref=item.ref,
        group=group,
        figures=[GapFigure(name=n, value=None if v is None else float(v)) for n, v in item.figures],
    )


async def _records(info: strawberry.Info, context: RequestContext, page: list[GapItem]) -> list[Any]:
    """The records of the page's record-level gaps, where `record` is selected: one statement
    per entity, through the request's own access plan (schema/records.py)."""
    raw = info._raw_info
    fragments, variables = raw.fragments, raw.variable_values
    nodes = child_fields(child_fields(raw.field_nodes, fragments, variables).get("nodes", []), fragments, variables)
    if "record" not in nodes:
        return [None] * len(page)
    selected = fields_by_type(nodes["record"], fragments, context.entity_types)
    names, joins = needs_by_entity(context.reader.catalog, selected, context.entity_types)
    wanted = [(i, g) for i, g in enumerate(page) if g.entity is not None]
    refs = [
        RecordRef(g.entity, plain=g.key) if g.entity.fields[g.entity.key].encrypted else RecordRef(g.entity, raw=g.key)
        for _, g in wanted
        if g.entity is not None
    ]
    path = tuple("*" if isinstance(k, int) else k for k in info.path.as_list())
    found = await records_by_ref(context, refs, names, joins, (*path, "nodes", "*", "record"))
    out: list[Any] = [None] * len(page)
    for (index, _), record in zip(wanted, found, strict=True):
        out[index] = record
    return out


# The report's selection per demand mapping (one per schema), so that its plans are cached.
_SELECTIONS: dict[int, tuple[Demand, Selection]] = {}


def _demand(context: RequestContext) -> tuple[Demand, Selection]:
    demand = context.reader.catalog.demand
    if demand is None:
        raise BadUserInput("no department declares a demand mapping: the reports are not available")
    known = _SELECTIONS.get(id(demand))
    if known is None or known[0] is not demand:
        known = _SELECTIONS[id(demand)] = (demand, report_selection(demand))
    return known


def accountability_fields(catalog: Catalog, union: Any) -> type:
    """The report fields, where the catalog declares a demand mapping (else none); a gap's
    `record` is of the record union `union` (schema/records.py)."""
    if catalog.demand is None:
        return type("NoAccountabilityFields", (), {})

    @strawberry.type(
        name="Gap",
        description="One accountability gap: a record (by its global reference) or a group, with its figures.",
    )
    class Gap:
        kind: GapKind
        ref: Optional[str] = strawberry.field(  # noqa: UP045
            description="`department:Entity:key` of the record, for a record-level gap."
        )
        group: Optional[GapGroup]  # noqa: UP045
        figures: list[GapFigure]
        record: Optional[union] = strawberry.field(  # noqa: UP045
            description="The record of a record-level gap, released under your access plan (null for groups, "
            "and where you may not see it)."
        )

    @strawberry.type(name="GapConnection")
    class GapConnection:
        nodes: list[Gap]
        totalCount: int
        pageInfo: ReportPageInfo

    @strawberry.type
    class AccountabilityFields(ReportFields):
        @strawberry.field(description="Accountability gaps of one kind, records or groups, with their figures.")
        async def accountabilityGaps(
            self,
            info: strawberry.Info,
            kind: GapKind,
            filter: GapsFilter | None = None,
            first: int | None = None,
            after: str | None = None,
        ) -> GapConnection:
            context: RequestContext = info.context
            tag = f"accountabilityGaps|{kind.value}"
            offset, limit = _page(context, tag, first, after)
            period = filter.period if filter is not None else None
            chosen = GapFilter(
                None if filter is None else filter.department,
                None if filter is None else filter.district,
                None if filter is None else filter.serviceType,
                None if period is None else period.start,
                None if period is None else period.end,
            )
            demand, selection = _demand(context)
            reading = _reading(context, selection)
            given = filter or GapsFilter()
            as_of = given.asOf or datetime.now(UTC)
            found = await gaps(reading, demand, kind.value, chosen, as_of, given.threshold, given.minRequests)
            _done(context, reading)
            page = found[offset : offset + limit]
            records = await _records(info, context, page)
            return GapConnection(
                nodes=[_gap(Gap, g, r) for g, r in zip(page, records, strict=True)],
                totalCount=len(found),
                pageInfo=_info(context, tag, offset, limit, len(found)),
            )

    return AccountabilityFields


@strawberry.type
class ReportFields:
    @strawberry.field(
        description="Per budget line: allocated, spent, services delivered, requests answered and unanswered, "
        "satisfaction, cost per answered request, response times and gaps. Small groups of persons are suppressed."
    )
    async def budgetLineAccountability(
        self,
        info: strawberry.Info,
        filter: BudgetLineFilter | None = None,
        orderBy: list[BudgetLineOrder] | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> BudgetLineAccountabilityConnection:
        context: RequestContext = info.context
        offset, limit = _page(context, "budgetLineAccountability", first, after)
        if orderBy is not None and len(orderBy) > 5:
            raise BadUserInput("orderBy takes at most 5 steps")
        demand, selection = _demand(context)
        reading = _reading(context, selection)
        chosen = (
            LineFilter()
            if filter is None
            else LineFilter(filter.fiscalYear, filter.department, filter.district, filter.programme, filter.lineId)
        )
        as_of = (filter.asOf if filter is not None else None) or datetime.now(UTC)
        reports = _sort(await budget_lines(reading, demand, chosen, as_of), orderBy or [])
        _done(context, reading)
        return BudgetLineAccountabilityConnection(
            nodes=[_line(r) for r in reports[offset : offset + limit]],
            totalCount=len(reports),
            pageInfo=_info(context, "budgetLineAccountability", offset, limit, len(reports)),
        )

    @strawberry.field(
        description="One person's requests, newest first (at most 200), and what came of each: the services "
        "delivered, when, by which department, the budget line that paid, the feedback; unanswered ones with "
        "their deadline. Only for role citizen_portal stating purpose citizen_service; each call counts the "
        "person against the lookup quota and is recorded in the access trail."
    )
    async def citizenRequests(self, info: strawberry.Info, idNumber: str) -> list[CitizenRequestOutcome]:
        context: RequestContext = info.context
        require_portal(context.principal, context.purpose)
        demand, _ = _demand(context)
        audit = available(context.audit, "the lookup quota is not available on this hub")
        # Validates the number and counts it against the caller's lookup quota before any SQL.
        await audit.person(context.principal, idNumber)
        plan = portal_plan(demand, context.principal, context.purpose, context.planner.policy.version)
        found = await requests_of(context.reader, context.access(plan), demand, idNumber)
        now = datetime.now(UTC)
        return [_outcome(item, now) for item in found]
