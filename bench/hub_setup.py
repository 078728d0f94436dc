"""The hub's side of a run: manifests pointed at the bench database, a fresh SQLite hub
database, and the registered apps whose tokens the benchmark sends.

Everything lives in a temporary folder of the run, so a run never touches `hub.db`,
`demo-data/` or anything another run (or person) uses.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from sqlalchemy.engine import URL

from hub.apps.service import create_app
from hub.db.engine import hub_engine, sessions
from hub.demo.workspace import retarget_manifests
from hub.migrate import upgrade

URL_ENV = "HUB_BENCH_URL"
APP_NAME = "bench"
# W1's caller: the auditor reads across departments (see bench/w1.py for what it is released).
APP_DEPARTMENT = "audit"
APP_ROLE = "auditor"


def prepare_hub(folder: Path) -> tuple[Path, URL]:
    """Write the retargeted manifests and migrate a new hub database in `folder`."""
    manifests = retarget_manifests(folder / "manifests", {"url_env": URL_ENV})
    database_url = URL.create("sqlite+aiosqlite", database=str(folder / "hub.db"))
    # alembic's env runs its own event loop, so this must be called outside one.
    upgrade(database_url)
    return manifests, database_url


async def register_app(
    database_url: URL,
    name: str = APP_NAME,
    department: str = APP_DEPARTMENT,
    roles: Sequence[str] = (APP_ROLE,),
) -> str:
    """Register an app (by default W1's auditor) and return its token (shown once, as for
    any app)."""
    engine = hub_engine(database_url)
    try:
        async with sessions(engine)() as session, session.begin():
            issued = await create_app(session, name, department, tuple(roles), {}, valid_days=1)
    finally:
        await engine.dispose()
    return issued.token
