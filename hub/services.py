"""The hub's running services, assembled once from settings: catalog, connectors, reader,
planner and the hub database. The app factory and the command line share this assembly."""

from __future__ import annotations

import logging
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
from hub.cells import key_scopes
from hub.config import Settings
from hub.connections import open_connectors
from hub.crypto.live import LiveKeyring
from hub.crypto.master import master_key_from_settings
from hub.cursor import Cursors
from hub.db.engine import hub_engine, sessions
from hub.reader import Reader

log = logging.getLogger("hub.services")


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
    keys: LiveKeyring

    async def start(self) -> None:
        """Load the keyring (making the keys the catalog lacks), seed the policy on a new hub
        database and load its newest version."""
        made = await self.keys.start(*key_scopes(list(self.catalog)))
        for name in made:
            log.info("made the %s", name)
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
    engine = hub_engine(settings.database_url)
    session_maker = sessions(engine)
    # The master key is read now, so a missing or exposed key file stops the start at once;
    # the keys it wraps are loaded (and made where missing) by `start`.
    keys = LiveKeyring(session_maker, [master_key_from_settings(settings)])
    cursors = Cursors(settings.cursor_key or secrets.token_bytes(32))
    releaser = Releaser(lambda: keys.keyring)
    reader = Reader(
        catalog,
        connectors,
        releaser,
        keys,
        cursors,
        settings.default_page_size,
        settings.max_page_size,
        relation_page=settings.relation_page_size,
        max_values=settings.max_values,
    )
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
        keys=keys,
    )
