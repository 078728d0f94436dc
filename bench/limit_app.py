"""The physical limit of W1: a bare Starlette app doing only what the answer needs.

Each route runs the hub's own statement for W1 (the same 12 columns, the same code-point
order, 10,000 rows), turns each row into the node the hub would send (date-times aware in
Asia/Shanghai, money as a decimal string) and serialises the GraphQL-shaped body with orjson.
No parsing, validation, authentication or access planning: what is left is the floor any
implementation on this driver, server and machine pays.

Two driver paths, so that the limit is the faster honest one rather than an assumption:
`/w1/asyncpg` uses a raw asyncpg pool, `/w1/sqlalchemy` SQLAlchemy async over asyncpg (as the
hub does). Run with `uvicorn --factory bench.limit_app:create_app`; the database URL comes
from BENCH_LIMIT_URL (a SQLAlchemy URL, `postgresql+asyncpg://...`).

W6's limit is `/w6/asyncpg?key=...`: one service delivery by its id, the same 12 columns and
decryption, as `{"data": {"civilAffairsServiceDelivery": {...}}}`. W2's generator check is
`/static?bytes=N`: a ready-made body of N bytes, no work at all (bench/w2.py).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import orjson
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

URL_ENV = "BENCH_LIMIT_URL"
ROWS = 10_000
# The manifest's connection timezone: naive timestamps are wall-clock times there.
ZONE = ZoneInfo("Asia/Shanghai")
# The statement the hub's SQL connector sends for W1 (captured from its engine), with the
# page size bound the same way. The hub asks for one row more to learn whether a next page
# exists; that row is part of the hub's cost, not of the answer's.
SQL = (
    "SELECT delivery_id, case_id, recipient_name, recipient_id_number, recipient_mobile, service_type, "
    "delivered_at, amount, district_code, status, request_id, expenditure_id "
    'FROM ca_service_delivery ORDER BY delivery_id COLLATE "C" ASC NULLS LAST LIMIT $1::INTEGER'
)
# SQLAlchemy's text() names its parameters; with the bind typed, its asyncpg dialect renders
# the same `$1::INTEGER` the hub's statement carries.
SA_STATEMENT = sa.text(SQL.replace("$1::INTEGER", ":limit")).bindparams(sa.bindparam("limit", type_=sa.Integer))


def _money(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _moment(value: datetime | None) -> datetime | None:
    return None if value is None else value.replace(tzinfo=ZONE)


# The three encrypted columns of W1 (positions in the statement) and their manifest field names.
ENCRYPTED = ((2, "recipientName"), (3, "recipientIdNumber"), (4, "recipientMobile"))


def decrypted(ciphers: Sequence[Any], rows: Sequence[Sequence[Any]]) -> list[list[Any]]:
    """The three encrypted columns decrypted, column by column, as the hub's release does (the
    same cached AES-GCM objects); the row key is the delivery id."""
    keys = [str(r[0]) for r in rows]
    return [
        cipher.decrypt_column([r[i] for r in rows], keys) for cipher, (i, _) in zip(ciphers, ENCRYPTED, strict=True)
    ]


def nodes(rows: Sequence[Sequence[Any]], ciphers: Sequence[Any]) -> list[dict[str, Any]]:
    """The GraphQL nodes of W1's rows. Positional access: both drivers' rows are tuples in
    the statement's column order, and indexing is the cheapest way to read them."""
    names, numbers, mobiles = decrypted(ciphers, rows)
    return [
        {
            "deliveryId": r[0],
            "caseId": r[1],
            "recipientName": names[n],
            "recipientIdNumber": numbers[n],
            "recipientMobile": mobiles[n],
            "serviceType": r[5],
            "deliveredAt": _moment(r[6]),
            "amount": _money(r[7]),
            "districtCode": r[8],
            "status": r[9],
            "requestId": r[10],
            "expenditureId": r[11],
        }
        for n, r in enumerate(rows)
    ]


def body(rows: Sequence[Sequence[Any]], ciphers: Sequence[Any]) -> Response:
    # orjson writes aware date-times as ISO-8601 with their offset, as strawberry does.
    payload = {"data": {"civilAffairsServiceDeliveries": {"nodes": nodes(rows, ciphers)}}}
    return Response(orjson.dumps(payload), media_type="application/json")


# W6: one row by its key, the plainest statement that finds it (the hub's adds a code-point
# comparison beside the equality and LIMIT 2, to tell one row from several; on a primary key
# both find the same single row through the same index).
BY_KEY_SQL = (
    "SELECT delivery_id, case_id, recipient_name, recipient_id_number, recipient_mobile, service_type, "
    "delivered_at, amount, district_code, status, request_id, expenditure_id "
    "FROM ca_service_delivery WHERE delivery_id = $1"
)
STATIC_MAX_BYTES = 10_000_000


def by_key_body(row: Sequence[Any] | None, ciphers: Sequence[Any]) -> Response:
    node = nodes([row], ciphers)[0] if row is not None else None
    return Response(orjson.dumps({"data": {"civilAffairsServiceDelivery": node}}), media_type="application/json")


def static_body(size: int) -> bytes:
    """A JSON object of exactly `size` bytes (at least 12)."""
    return b'{"data":"' + b"x" * (size - 11) + b'"}'


def create_app() -> Starlette:
    url = make_url(os.environ[URL_ENV])
    # asyncpg takes a libpq-style DSN, without SQLAlchemy's "+asyncpg" driver suffix.
    dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
    state: dict[str, Any] = {}

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        pool = await asyncpg.create_pool(dsn, min_size=1, max_size=5)
        # AUTOCOMMIT as in the hub's connector: no BEGIN/ROLLBACK travels with a read.
        engine = create_async_engine(url, isolation_level="AUTOCOMMIT", pool_size=5)
        state["pool"], state["engine"] = pool, engine
        # The keys the bench data is encrypted under (bench/hub_setup.py keeps them).
        from bench.hub_setup import KEYS
        from hub.demo.workspace import open_workspace_keyring

        keyring, _ = await open_workspace_keyring(KEYS)
        state["ciphers"] = [keyring.cipher("civil_affairs", "ServiceDelivery", name) for _, name in ENCRYPTED]
        try:
            yield
        finally:
            await pool.close()
            await engine.dispose()

    async def ready(_: Request) -> Response:
        # Both paths answer a trivial statement before the benchmark starts timing.
        await state["pool"].fetchval("SELECT 1")
        engine: AsyncEngine = state["engine"]
        async with engine.connect() as connection:
            await connection.execute(sa.text("SELECT 1"))
        return Response(b'{"status":"ok"}', media_type="application/json")

    async def w1_asyncpg(_: Request) -> Response:
        rows = await state["pool"].fetch(SQL, ROWS)
        return body(rows, state["ciphers"])

    async def w1_sqlalchemy(_: Request) -> Response:
        engine: AsyncEngine = state["engine"]
        async with engine.connect() as connection:
            result = await connection.execute(SA_STATEMENT, {"limit": ROWS})
            rows = result.all()
        return body(rows, state["ciphers"])

    async def w6_asyncpg(request: Request) -> Response:
        row = await state["pool"].fetchrow(BY_KEY_SQL, request.query_params["key"])
        return by_key_body(row, state["ciphers"])

    statics: dict[int, bytes] = {}

    async def static(request: Request) -> Response:
        size = min(max(int(request.query_params.get("bytes", "12")), 12), STATIC_MAX_BYTES)
        if size not in statics:
            statics[size] = static_body(size)
        return Response(statics[size], media_type="application/json")

    routes = [
        Route("/ready", ready, methods=["GET"]),
        Route("/w1/asyncpg", w1_asyncpg, methods=["GET"]),
        Route("/w1/sqlalchemy", w1_sqlalchemy, methods=["GET"]),
        Route("/w6/asyncpg", w6_asyncpg, methods=["GET"]),
        Route("/static", static, methods=["GET", "POST"]),
    ]
    return Starlette(routes=routes, lifespan=lifespan)
