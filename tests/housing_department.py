"""A small housing department made by the onboarding tests on SQLite, PostgreSQL or MariaDB:
tenants with names, resident ID numbers and mobiles in plain text, leases with a foreign key, a
decimal, date-times and an encrypted, blind-indexed column, and a log table without a key."""

from __future__ import annotations

import asyncio
import os
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import create_async_engine

from tests.resident_ids import check_digit
from tests.servers import fresh_database

NAMES = ["王建国", "李秀英", "张伟", "刘丽娟", "陈志强", "欧阳晓燕"]


def resident_id(i: int) -> str:
    first17 = f"33010219{80 + i % 20:02d}0{1 + i % 9}1{i % 10}{i % 1000:03d}"
    return first17 + check_digit(first17)


def stored_value(i: int) -> bytes:
    # Format 1 (docs/stored-format.md): version, key version 1, nonce, ciphertext and tag.
    return b"\x01" + (1).to_bytes(4, "big") + os.urandom(12) + os.urandom(18) + os.urandom(16)


metadata = sa.MetaData()
tenant = sa.Table(
    "hs_tenant",
    metadata,
    sa.Column("tenant_id", sa.String(20), primary_key=True),
    sa.Column("full_name", sa.String(40)),
    # Named for nothing personal: the content gives them away.
    sa.Column("id_value", sa.String(18)),
    sa.Column("contact", sa.String(20)),
    # Named like a mobile, holding none.
    sa.Column("phone_note", sa.String(40)),
)
lease = sa.Table(
    "hs_leases",
    metadata,
    sa.Column("lease_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("tenant_id", sa.String(20), sa.ForeignKey("hs_tenant.tenant_id")),
    sa.Column("monthly_rent", sa.Numeric(10, 2)),
    sa.Column("signed_at", sa.DateTime),
    sa.Column("start_date", sa.Date),
    sa.Column("active", sa.Boolean),
    sa.Column("holder_id_number", sa.LargeBinary(120)),
    sa.Column("holder_id_number_bidx", sa.LargeBinary(32)),
)
log = sa.Table("hs_log", metadata, sa.Column("at", sa.DateTime), sa.Column("message", sa.String(200)))


async def _fill(url: URL) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
            await conn.execute(
                tenant.insert(),
                [
                    {
                        "tenant_id": f"T{i}",
                        "full_name": NAMES[i % len(NAMES)],
                        "id_value": resident_id(i),
                        "contact": f"13{i % 10}{i:08d}",
                        "phone_note": "call after six",
                    }
                    for i in range(30)
                ],
            )
            await conn.execute(
                lease.insert(),
                [
                    {
                        "lease_id": i,
                        "tenant_id": f"T{i % 30}",
                        "monthly_rent": Decimal("1234.50"),
                        "signed_at": datetime(2026, 1, 2, 3, 4, 5),
                        "start_date": date(2026, 2, 1),
                        "active": True,
                        "holder_id_number": stored_value(i),
                        "holder_id_number_bidx": os.urandom(32),
                    }
                    for i in range(40)
                ],
            )
            await conn.execute(log.insert(), [{"at": datetime(2026, 1, 1), "message": "started"}])
    finally:
        await engine.dispose()


def housing_database(backend: str, tmp_path: Path) -> str:
    """The URL of a fresh housing database on `backend` (sqlite, postgresql, mariadb)."""
    if backend == "sqlite":
        url = URL.create("sqlite+aiosqlite", database=str(tmp_path / "housing.db"))
    else:
        url = fresh_database(backend, "onboard_housing")
    asyncio.run(_fill(url))
    return url.render_as_string(hide_password=False)
