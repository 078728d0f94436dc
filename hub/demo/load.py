"""Loading the demo's rows into department databases through SQLAlchemy Core.

Each department's tables are dropped and created again, then filled in batches of
`executemany` inserts, all in one transaction per department: an interrupted load leaves a
department's tables as they were or complete, never half-filled (except on MariaDB, whose DDL
commits implicitly). Departments may share one database; their table names never clash.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from hub.demo.generate import generate
from hub.demo.tables import METADATA

BATCH = 5_000

Progress = Callable[[str, int, int], None]


async def load_demo(urls: Mapping[str, str], *, seed: int = 2026, progress: Progress | None = None) -> dict[str, int]:
    """Create and fill the demo tables of each department in `urls` (department -> async URL).

    `progress(department, rows done, rows total)` is called after each batch. Returns the
    number of rows written per table."""
    unknown = sorted(set(urls) - set(METADATA))
    if unknown:
        raise ValueError(f"no demo department named {', '.join(unknown)}")
    # Generation is a second or two of pure Python: keep it off the event loop.
    data = await asyncio.to_thread(generate, seed)
    engines: dict[str, AsyncEngine] = {}
    counts: dict[str, int] = {}
    try:
        for department, metadata in METADATA.items():
            if department not in urls:
                continue
            url = urls[department]
            if url not in engines:
                engines[url] = _engine(url)
            tables = data[department]
            total = sum(len(rows) for rows in tables.values())
            done = 0
            async with engines[url].begin() as connection:
                await connection.run_sync(metadata.drop_all)
                await connection.run_sync(metadata.create_all)
                # Parents before children, so foreign keys hold on every backend.
                for table in metadata.sorted_tables:
                    rows = tables[table.name]
                    for start in range(0, len(rows), BATCH):
                        batch = rows[start : start + BATCH]
                        await connection.execute(table.insert(), batch)
                        done += len(batch)
                        if progress is not None:
                            progress(department, done, total)
                    counts[table.name] = len(rows)
            if progress is not None and total == 0:
                progress(department, 0, 0)
    finally:
        for engine in engines.values():
            await engine.dispose()
    return counts


def _engine(url: str) -> AsyncEngine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    return create_async_engine(parsed)
