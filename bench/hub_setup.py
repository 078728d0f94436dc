"""The hub's side of a run: manifests pointed at the bench database, a fresh SQLite hub
database, and one registered app whose token the benchmark sends.

Everything lives in a temporary folder of the run, so a run never touches `hub.db`,
`demo-data/` or anything another run (or person) uses.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import URL

from hub.apps.service import create_app
from hub.db.engine import hub_engine, sessions
from hub.demo.workspace import retarget_manifests
from hub.migrate import upgrade

URL_ENV = "HUB_BENCH_URL"
APP_NAME = "bench"
# The auditor reads across departments; access control is a seam for now, but the benchmark
# already calls as the kind of app W1 stands for.
APP_DEPARTMENT = "audit"
APP_ROLE = "auditor"


def prepare_hub(folder: Path) -> tuple[Path, URL]:
    """Write the retargeted manifests and migrate a new hub database in `folder`."""
    manifests = retarget_manifests(folder / "manifests", {"url_env": URL_ENV})
    database_url = URL.create("sqlite+aiosqlite", database=str(folder / "hub.db"))
    # alembic's env runs its own event loop, so this must be called outside one.
    upgrade(database_url)
    return manifests, database_url


async def register_app(database_url: URL) -> str:
    """Register the bench app and return its token (shown once, as for any app)."""
    engine = hub_engine(database_url)
    try:
        async with sessions(engine)() as session, session.begin():
            issued = await create_app(session, APP_NAME, APP_DEPARTMENT, (APP_ROLE,), {}, valid_days=1)
    finally:
        await engine.dispose()
    return issued.token
