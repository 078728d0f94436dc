"""`hub migrate` on PostgreSQL holds an advisory lock for its whole transaction: several
deployments starting at once migrate the hub database once, and none fails; `hub serve` on an
unmigrated hub database refuses and creates nothing."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import asyncpg

from hub.migrate import head
from tests.servers import fresh_database


def _environ(url: str) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    return {**environ, "HUB_DATABASE_URL": url}


def _tables(dsn: str) -> tuple[list[str], list[str]]:
    async def read() -> tuple[list[str], list[str]]:
        connection = await asyncpg.connect(dsn)
        try:
            tables = [
                r[0] for r in await connection.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
            ]
            revisions = []
            if "alembic_version" in tables:
                revisions = [r[0] for r in await connection.fetch("SELECT version_num FROM alembic_version")]
            return sorted(tables), revisions
        finally:
            await connection.close()

    return asyncio.run(read())


def test_three_concurrent_migrates_on_a_fresh_postgresql_database_migrate_it_once() -> None:
    url = fresh_database("postgresql", "hub_it_migrate_lock")
    hub = str(Path(sys.executable).with_name("hub"))
    rendered = url.render_as_string(hide_password=False)
    runs = [
        subprocess.Popen([hub, "migrate"], env=_environ(rendered), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        for _ in range(3)
    ]
    outputs = [run.communicate(timeout=300)[0].decode() for run in runs]
    assert [run.returncode for run in runs] == [0, 0, 0], outputs
    tables, revisions = _tables(url.set(drivername="postgresql").render_as_string(hide_password=False))
    assert revisions == [head()]
    assert "hub_change" in tables


def test_serving_an_unmigrated_postgresql_hub_database_refuses_and_creates_nothing() -> None:
    url = fresh_database("postgresql", "hub_it_serve_unmigrated")
    hub = str(Path(sys.executable).with_name("hub"))
    manifests = Path(__file__).parent.parent / "fixtures" / "manifests"
    environ = {**_environ(url.render_as_string(hide_password=False)), "HUB_MANIFESTS": str(manifests)}
    done = subprocess.run([hub, "serve", "--port", "1"], env=environ, capture_output=True, timeout=120)
    assert done.returncode != 0
    assert b"hub migrate" in done.stderr + done.stdout
    assert _tables(url.set(drivername="postgresql").render_as_string(hide_password=False)) == ([], [])
