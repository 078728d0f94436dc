"""The hub's side of a run: manifests pointed at the bench database, a fresh SQLite hub
database holding the keys the bench data is encrypted under, and the registered apps whose
tokens the benchmark sends.

Everything lives in a temporary folder of the run, so a run never touches `hub.db`,
`demo-data/` or anything another run (or person) uses, except the bench's keys: the bench
database outlives a run, and so must the keys its data is encrypted under. They live in
`~/.cache/hub-bench/` (an owner-only `master.key` and `hub.db` holding the wrapped keys); each
run's hub database gets a copy of the wrapped keys. Delete the folder and the next run loads the
data again under new keys.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy.engine import URL

from hub.auth import registry
from hub.crypto.keyring import Keyring
from hub.db.engine import hub_engine, sessions
from hub.demo.workspace import Workspace, open_workspace_keyring, retarget_manifests, share_keys
from hub.migrate import upgrade

URL_ENV = "HUB_BENCH_URL"
# Only its master key and hub database are used: the data itself is in the bench database.
KEYS = Workspace(Path.home() / ".cache" / "hub-bench")
APP_NAME = "bench"
# W1's caller: the auditor reads across departments (see bench/w1.py for what it is released).
APP_DEPARTMENT = "audit"
APP_ROLE = "auditor"


def bench_keyring(keys: Workspace = KEYS) -> Keyring:
    """The keyring of the bench data: made on the first run (master key file, hub database and
    keys), loaded afterwards."""
    keyring, _ = asyncio.run(open_workspace_keyring(keys))
    return keyring


def hub_env(keys: Workspace = KEYS) -> dict[str, str]:
    """What a hub served over the bench data needs besides its database and manifests. The
    load generators send thousands of requests a second from one caller, with dozens in flight:
    rate and concurrency limits stay on (their cost is part of what is measured) but far above
    the load."""
    return {
        "HUB_MASTER_KEY_FILE": str(keys.master_key_file),
        "HUB_RATE_LIMIT_DEFAULT": "100000000/minute",
        "HUB_DEPARTMENT_RATE_LIMIT": "100000000/minute",
        "HUB_CONCURRENCY_LIMIT_DEFAULT": "100000",
        # No per-role limits: department apps' 16 would hold W6-quota's 32 clients back.
        "HUB_CONCURRENCY_LIMITS": "",
    }


def prepare_hub(folder: Path, keys: Workspace = KEYS, database_url: URL | None = None) -> tuple[Path, URL]:
    """Write the retargeted manifests and migrate a new hub database (SQLite in `folder`, or the
    empty database `database_url`), with a copy of the keys the bench data is under (serve it
    with `hub_env()`)."""
    manifests = retarget_manifests(folder / "manifests", {"url_env": URL_ENV})
    if database_url is None:
        database_url = URL.create("sqlite+aiosqlite", database=str(folder / "hub.db"))
    # alembic's env runs its own event loop, so this must be called outside one.
    upgrade(database_url)
    asyncio.run(share_keys(keys, database_url))
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
            issued = await registry.register_app(session, name, department, tuple(roles), {}, valid_days=1)
    finally:
        await engine.dispose()
    return issued.token
