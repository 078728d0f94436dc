"""One writer order for the trail: several hub processes appending at once, each with many
concurrent requests, on one PostgreSQL database and on one SQLite file. Positions come out
linear (no gap, no duplicate), each process's requests share flushes (group commit), and the
whole log verifies."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

from hub.audit.verify import verify_log
from hub.db.engine import hub_engine, sessions
from hub.migrate import upgrade
from tests.servers import fresh_database

PROCESSES = 3
REQUESTS = 150  # per process, sent as concurrent waves of 50

# One hub process's writes: concurrent appends, as concurrent requests make them.
WRITER = """
import asyncio, json, sys
from sqlalchemy.engine import make_url
from hub.audit.event import Event
from hub.audit.writer import TrailWriter
from hub.db.engine import hub_engine, sessions

async def main(url: str, n: int, name: str) -> None:
    engine = hub_engine(make_url(url))
    writer = TrailWriter(engine)
    def event(i: int) -> Event:
        return Event(i, name, "welfare", None, None, None, None, "served", 200, None, "1",
                     {"fields": [["registry.Person", "name", "PLAIN", 1]], "rows": {"registry.Person": 1}},
                     {f"{hash((name, i)) & (2**64 - 1):064x}": "registry.Person"})
    positions = []
    for wave in range(0, n, 50):
        positions += await asyncio.gather(*(writer.append(event(i)) for i in range(wave, min(n, wave + 50))))
    await writer.close()
    await engine.dispose()
    print(json.dumps({"positions": positions, "flushes": writer.flushes}))

asyncio.run(main(sys.argv[1], int(sys.argv[2]), sys.argv[3]))
"""


@pytest.fixture(params=["sqlite", "postgresql"])
def trail_db(request: pytest.FixtureRequest, tmp_path: Path) -> URL:
    if request.param == "sqlite":
        url = URL.create("sqlite+aiosqlite", database=str(tmp_path / "hub.db"))
    else:
        url = fresh_database("postgresql", "hub_it_audit_order")
    upgrade(url)
    return url


def test_processes_writing_at_once_get_one_linear_log_that_verifies(trail_db: URL) -> None:
    root = Path(__file__).resolve().parents[2]
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, trail_db.render_as_string(hide_password=False), str(REQUESTS), f"app-{n}"],
            cwd=root,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(PROCESSES)
    ]
    results = []
    for writer in writers:
        out, err = writer.communicate(timeout=300)
        assert writer.returncode == 0, err[-2000:]
        results.append(json.loads(out))
    positions = sorted(p for result in results for p in result["positions"])
    assert positions == list(range(PROCESSES * REQUESTS))
    # Group commit: concurrent requests of one process share flushes.
    assert all(result["flushes"] < REQUESTS / 2 for result in results)

    async def verify() -> None:
        engine = hub_engine(trail_db)
        try:
            report = await verify_log(sessions(engine), None)
        finally:
            await engine.dispose()
        assert report.ok, report.findings[:3]
        assert report.events == PROCESSES * REQUESTS

    asyncio.run(verify())
