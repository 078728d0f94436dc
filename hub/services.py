"""The hub's running services, assembled once from settings: catalog, connectors, reader,
planner and the hub database. The app factory and the command line share this assembly."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from connectors.base import Connector
from hub.authz.admin import PolicyAdmin
from hub.authz.changes import Limits
from hub.authz.live import LivePolicy
from hub.authz.plan import AccessPolicy, Planner, PolicySource
from hub.authz.release import Releaser
from hub.authz.snapshot import load_purposes
from hub.authz.store import PolicyStore, seed
from hub.catalog import Catalog, load_catalog
from hub.config import Settings
from hub.connections import open_connectors
from hub.cursor import Cursors
from hub.db.engine import hub_engine, sessions
from hub.reader import Reader


@dataclass
class Services:
    settings: Settings
    catalog: Catalog
    connectors: Mapping[str, Connector]
    reader: Reader
    planner: Planner
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    purposes: Mapping[str, str]
    # The live, database-backed policy; None when a fixed policy was given (tests).
    live: LivePolicy | None
    store: PolicyStore
    admin: PolicyAdmin | None

    async def start(self) -> None:
        """Seed the policy on a new hub database and load the newest version."""
        if self.live is None:
            return
        async with self.sessions() as session, session.begin():
            await seed(session, self.catalog, self.purposes)
        await self.live.refresh(self.sessions)

    async def close(self) -> None:
        for connector in self.connectors.values():
            await connector.close()
        await self.engine.dispose()


def build_services(
    settings: Settings,
    catalog: Catalog | None = None,
    connectors: Mapping[str, Connector] | None = None,
    policy: AccessPolicy | None = None,
) -> Services:
    catalog = catalog if catalog is not None else load_catalog(settings.manifests_dir)
    connectors = connectors if connectors is not None else open_connectors(catalog, settings)
    # Until field encryption brings the blind-index keys, persons touched are recorded under a
    # key made per process: records of one process can be compared, never reversed.
    record_key = secrets.token_bytes(32)
    releaser = Releaser(
        person_index=lambda value: hmac.new(record_key, value.encode(), hashlib.sha256).hexdigest(),
        hash_key=secrets.token_bytes(32),
    )
    cursors = Cursors(settings.cursor_key or secrets.token_bytes(32))
    reader = Reader(catalog, connectors, releaser, cursors, settings.default_page_size, settings.max_page_size)
    engine = hub_engine(settings.database_url)
    session_maker = sessions(engine)
    purposes = load_purposes()
    live: LivePolicy | None = None
    source: PolicySource
    store = PolicyStore(session_maker, catalog, purposes, Limits(settings.max_grant_days))
    if policy is not None:
        fixed = policy
        source = lambda: fixed  # noqa: E731
    else:
        live = LivePolicy(catalog)
        source = live.current
    return Services(
        settings=settings,
        catalog=catalog,
        connectors=connectors,
        reader=reader,
        planner=Planner(catalog, source),
        engine=engine,
        sessions=session_maker,
        purposes=purposes,
        live=live,
        store=store,
        admin=None if live is None else PolicyAdmin(store, live, catalog),
    )
