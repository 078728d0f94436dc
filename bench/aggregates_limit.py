"""The limit of the aggregate workloads: a bare Starlette route running the hub's own GROUP BY
statement raw through asyncpg and serialising the groups with orjson.

The statement is the one the hub's SQL connector builds for the workload (connectors/sql/
aggregate.py, compiled here for PostgreSQL with the connector's binary collation and its page of
10,001 groups), so both sides ask PostgreSQL the same question; the limit then only shapes the
rows as the hub's answer and encodes them. No parsing, validation, authentication, access
planning or suppression. Run with `uvicorn --factory bench.aggregates_limit:create_app`; the
database URL comes from BENCH_LIMIT_URL (`postgresql+asyncpg://...`).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import orjson
from sqlalchemy.dialects.postgresql import asyncpg as pg_asyncpg
from sqlalchemy.engine import make_url
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from connectors.aggregates import AggregateQuery, Bucket, GroupKey, Measure, Measured
from connectors.sql.aggregate import AggregateBuilder
from connectors.sql.dialects.postgresql import PostgresDialect
from connectors.sql.shape import QueryShapes
from connectors.values import load_zone
from hub.demo.catalog import demo_catalog

URL_ENV = "BENCH_LIMIT_URL"
# The hub reads every group (up to its largest page) to decide suppression.
GROUPS = 10_000


@dataclass(frozen=True)
class Workload:
    name: str
    field: str  # the hub's root field
    query: str  # what the hub is asked
    aggregate: AggregateQuery  # the connector read the hub makes of it
    shape: Callable[[Sequence[Any]], dict[str, Any]]  # one statement row as the hub's group


def _deliveries() -> Workload:
    entity = demo_catalog().entity("civil_affairs.ServiceDelivery")
    read = AggregateQuery(
        entity.table,
        (Measured("count", Measure.COUNT), Measured("sum.amount", Measure.SUM, "amount")),
        (GroupKey("districtCode", "district_code"), GroupKey("bucket", "delivered_at", Bucket.MONTH)),
        None,
        (),
        GROUPS,
    )

    def shape(r: Sequence[Any]) -> dict[str, Any]:
        amount = None if r[3] is None else str(r[3])
        key = {"districtCode": r[0], "bucket": r[1]}
        return {"key": key, "count": r[2], "sum": {"amount": amount}, "suppressed": False}

    query = (
        "{ civilAffairsServiceDeliveriesAggregate(groupBy: [DISTRICT_CODE], bucket: {field: DELIVERED_AT, "
        "period: MONTH}, first: 10000) { groups { key { districtCode bucket } count sum { amount } suppressed } } }"
    )
    return Workload("deliveries by district and month", "civilAffairsServiceDeliveriesAggregate", query, read, shape)


def _expenditures() -> Workload:
    entity = demo_catalog().entity("finance.Expenditure")
    read = AggregateQuery(
        entity.table,
        (Measured("count", Measure.COUNT), Measured("sum.amount", Measure.SUM, "amount")),
        (GroupKey("budgetLineId", "budget_line_id"),),
        None,
        (),
        GROUPS,
    )

    def shape(r: Sequence[Any]) -> dict[str, Any]:
        amount = None if r[2] is None else str(r[2])
        return {"key": {"budgetLineId": r[0]}, "count": r[1], "sum": {"amount": amount}, "suppressed": False}

    query = (
        "{ financeExpendituresAggregate(groupBy: [BUDGET_LINE_ID], first: 10000) "
        "{ groups { key { budgetLineId } count sum { amount } suppressed } } }"
    )
    return Workload("expenditures by budget line", "financeExpendituresAggregate", query, read, shape)


WORKLOADS = {"deliveries": _deliveries(), "expenditures": _expenditures()}


def statement(workload: Workload) -> str:
    """The hub's statement for `workload`, as PostgreSQL text with its values written in: the
    page's bound is the only value, one more than the groups read, as the connector binds it."""
    shape, values = QueryShapes(PostgresDialect(), load_zone("Asia/Shanghai")).aggregate(workload.aggregate)
    built = AggregateBuilder(PostgresDialect(), "C", workload.aggregate.table).build(shape)
    bound = built.params(values)
    return str(bound.compile(dialect=pg_asyncpg.dialect(), compile_kwargs={"literal_binds": True}))


def create_app() -> Starlette:
    url = make_url(os.environ[URL_ENV])
    dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
    texts = {name: statement(workload) for name, workload in WORKLOADS.items()}
    state: dict[str, Any] = {}

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        # The hub's connections carry the connector's session settings; the statement's answer
        # depends on the time zone (date_trunc of naive timestamps does not, but be exact).
        state["pool"] = await asyncpg.create_pool(
            dsn, min_size=1, max_size=5, server_settings={"TimeZone": "Asia/Shanghai"}
        )
        try:
            yield
        finally:
            await state["pool"].close()

    async def ready(_: Request) -> Response:
        await state["pool"].fetchval("SELECT 1")
        return Response(b'{"status":"ok"}', media_type="application/json")

    def route(name: str) -> Callable[[Request], Any]:
        workload, text = WORKLOADS[name], texts[name]

        async def answer(_: Request) -> Response:
            rows = await state["pool"].fetch(text)
            groups = [workload.shape(r) for r in rows]
            return Response(orjson.dumps({"data": {workload.field: {"groups": groups}}}), media_type="application/json")

        return answer

    routes = [Route("/ready", ready, methods=["GET"])]
    routes += [Route(f"/agg/{name}", route(name), methods=["GET"]) for name in WORKLOADS]
    return Starlette(routes=routes, lifespan=lifespan)
