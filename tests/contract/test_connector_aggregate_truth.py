"""Every aggregate measure, over the demo generator's civil affairs deliveries, against a plain
Python computation: random filters, group keys and buckets (hypothesis, seeded), on the memory
and SQLite connectors. The other databases are held to the same answers by the contract suite
and by tests/integration/test_demo_across_databases.py.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterator
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.aggregates import AggregateQuery, Bucket, GroupKey, Measure, Measured, bucket_of
from connectors.base import ColumnSpec, Compare, Connector, Filter, In, IsNull, Kind, Like, Match, Op, Row, TableSpec
from connectors.memory import MemoryConnector
from connectors.sql import SqlConnector
from hub.demo.generate import generate

settings.register_profile(
    "aggregate-truth-ci",
    max_examples=60,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
CI = settings.get_profile("aggregate-truth-ci")
ZONE = ZoneInfo("Asia/Shanghai")

KINDS = {
    "delivery_id": Kind.STRING,
    "service_type": Kind.STRING,
    "district_code": Kind.STRING,
    "status": Kind.STRING,
    "request_id": Kind.STRING,
    "delivered_at": Kind.DATETIME,
    "amount": Kind.DECIMAL,
}
TABLE = TableSpec("deliveries", "delivery_id", {c: ColumnSpec(c, k) for c, k in KINDS.items()})
ROWS: list[Row] = [{c: row[c] for c in KINDS} for row in generate()["civil_affairs"]["ca_service_delivery"]]
DISTRICTS = sorted({row["district_code"] for row in ROWS})
SERVICES = sorted({row["service_type"] for row in ROWS})


@pytest.fixture(scope="module")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = Path(tmp_path_factory.mktemp("truth")) / "deliveries.db"
    engine = sa.create_engine(f"sqlite:///{path}")
    types = {Kind.STRING: sa.String(), Kind.DATETIME: sa.DateTime(), Kind.DECIMAL: sa.Numeric(18, 2)}
    table = sa.Table("deliveries", sa.MetaData(), *(sa.Column(c, types[k]) for c, k in KINDS.items()))
    with engine.begin() as conn:
        table.create(conn)
        conn.execute(table.insert(), ROWS)
    engine.dispose()
    return f"sqlite+aiosqlite:///{path}"


MEMORY = MemoryConnector({"deliveries": ROWS})


@pytest.fixture(params=["memory", "sqlite"])
def connect(request: pytest.FixtureRequest, sqlite_url: str) -> Iterator[Callable[[], Connector]]:
    if request.param == "memory":
        yield lambda: MEMORY
    else:
        yield lambda: SqlConnector(sqlite_url)


# --- random queries ---------------------------------------------------------------------------

FILTERS: st.SearchStrategy[tuple[Filter | None, Callable[[Row], bool]]] = st.one_of(
    st.just((None, lambda row: True)),
    st.sampled_from(["100.00", "800.00", "2500.00"]).map(
        lambda v: (Compare("amount", Op.GT, Decimal(v)), lambda row, v=Decimal(v): row["amount"] > v)
    ),
    st.lists(st.sampled_from(DISTRICTS), min_size=1, max_size=3, unique=True).map(
        lambda ds: (In("district_code", tuple(ds)), lambda row, ds=ds: row["district_code"] in ds)
    ),
    st.booleans().map(
        lambda null: (IsNull("request_id", null), lambda row, null=null: (row["request_id"] is None) == null)
    ),
    st.sampled_from(["救助", "金", "医疗"]).map(
        lambda t: (Like("service_type", Match.CONTAINS, t), lambda row, t=t: t in row["service_type"])
    ),
)
GROUPS = st.lists(st.sampled_from(["service_type", "district_code", "status", "request_id"]), max_size=2, unique=True)
BUCKETS = st.one_of(st.none(), st.sampled_from(list(Bucket)))


def expected(rows: list[Row], groups: list[str], bucket: Bucket | None) -> dict[tuple[Any, ...], dict[str, Any]]:
    """Every measure per group, computed plainly."""
    members: dict[tuple[Any, ...], list[Row]] = defaultdict(list)
    for row in rows:
        key = tuple(row[g] for g in groups)
        if bucket is not None:
            key += (bucket_of(bucket, row["delivered_at"]),)
        members[key].append(row)
    if not groups and bucket is None:
        members[()] = rows
    out: dict[tuple[Any, ...], dict[str, Any]] = {}
    for key, found in members.items():
        amounts = [r["amount"] for r in found if r["amount"] is not None]
        total = sum(amounts, Decimal(0)) if amounts else None
        moments = [r["delivered_at"].replace(tzinfo=ZONE) for r in found]
        out[key] = {
            "count": len(found),
            "sum": total,
            "avg": None if total is None else (total / len(amounts)).quantize(Decimal("0.01"), ROUND_HALF_EVEN),
            "min": min(amounts, default=None),
            "max": max(amounts, default=None),
            "districts": len({r["district_code"] for r in found}),
            "requests": len({r["request_id"] for r in found if r["request_id"] is not None}),
            "first": min(moments, default=None),
            "last_service": max(r["service_type"] for r in found) if found else None,
        }
    return out


MEASURES = (
    Measured("count", Measure.COUNT),
    Measured("sum", Measure.SUM, "amount"),
    Measured("avg", Measure.AVG, "amount"),
    Measured("min", Measure.MIN, "amount"),
    Measured("max", Measure.MAX, "amount"),
    Measured("districts", Measure.COUNT_DISTINCT, "district_code"),
    Measured("requests", Measure.COUNT_DISTINCT, "request_id"),
    Measured("first", Measure.MIN, "delivered_at"),
    Measured("last_service", Measure.MAX, "service_type"),
)


@CI
@given(FILTERS, GROUPS, BUCKETS)
def test_every_measure_matches_a_plain_computation(
    connect: Callable[[], Connector],
    where: tuple[Filter | None, Callable[[Row], bool]],
    groups: list[str],
    bucket: Bucket | None,
) -> None:
    condition, keep = where
    keys = tuple(GroupKey(g, g) for g in groups)
    if bucket is not None:
        keys += (GroupKey("period", "delivered_at", bucket),)
    query = AggregateQuery(TABLE, MEASURES, keys, condition)

    async def run() -> list[Row]:
        connector = connect()
        try:
            return (await connector.aggregate(query)).rows
        finally:
            if connector is not MEMORY:
                await connector.close()

    answer = asyncio.run(run())
    got = {tuple(row[k.label] for k in keys): {m.label: row[m.label] for m in MEASURES} for row in answer}
    want = expected([row for row in ROWS if keep(row)], groups, bucket)
    assert got == want
    # Groups come in key order (NULLs last) when no order is given.
    listed = [tuple(row[k.label] for k in keys) for row in answer]
    assert listed == sorted(listed, key=lambda key: tuple((v is None, v if v is not None else "") for v in key))


def test_bucket_of_a_datetime_is_its_local_date() -> None:
    assert bucket_of(Bucket.WEEK, dt.datetime(2024, 3, 31, 23, 59)) == dt.date(2024, 3, 25)
