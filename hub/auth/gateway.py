"""Callers who come through a Federation gateway (docs/federation.md).

The gateway authenticates the caller by its own means and sends, with each subgraph request, a
signed assertion naming the caller's app (hub/crypto/assertion.py). The hub checks the
signature against the gateways it trusts, then looks the name up among its own registered
apps: the principal's department, roles and attributes come from this hub's database, never
from the assertion, and an app this hub does not know, or whose tokens are all revoked or
expired, is refused as if its token were. Policies then apply to that app, never to the gateway.

Principals are remembered for HUB_TOKEN_CACHE_SECONDS, as bearer tokens' are.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hub.auth.models import App, AppToken
from hub.auth.principal import Principal
from hub.auth.registry import app_principal
from hub.crypto.assertion import AssertionRefused, AssertionVerifier

HEADER = "x-hub-gateway-assertion"
MAX_ENTRIES = 10_000


class GatewayRefused(Exception):
    """A gateway request the hub does not accept; the message says why."""


class GatewayCallers:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        public_keys: tuple[bytes, ...],
        ttl_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sessions = sessions
        self.verifier = AssertionVerifier(public_keys)
        self.ttl_s = ttl_s
        self.clock = clock
        self._entries: OrderedDict[str, tuple[Principal, float]] = OrderedDict()

    @property
    def configured(self) -> bool:
        return self.verifier.configured

    async def principal(self, assertion: str) -> Principal:
        """The app `assertion` names, as this hub registered it; GatewayRefused otherwise."""
        try:
            name = self.verifier.app(assertion)
        except AssertionRefused as refused:
            raise GatewayRefused(str(refused)) from None
        entry = self._entries.get(name)
        if entry is not None and self.clock() - entry[1] < self.ttl_s:
            return entry[0]
        principal = await self._read(name)
        if principal is None:
            self._entries.pop(name, None)
            raise GatewayRefused("the gateway's caller is not an app registered with a live token on this hub")
        self._entries[name] = (principal, self.clock())
        if len(self._entries) > MAX_ENTRIES:
            self._entries.popitem(last=False)
        return principal

    async def _read(self, name: str) -> Principal | None:
        now = datetime.now(UTC)
        async with self.sessions() as session:
            app = await session.scalar(select(App).where(App.name == name))
            if app is None:
                return None
            # Compared here, not in SQL: SQLite keeps these times without their zone.
            tokens = (
                await session.execute(
                    select(AppToken.expires_at).where(AppToken.app_id == app.id, AppToken.revoked_at.is_(None))
                )
            ).scalars()
            live = any(_aware(expires) > now for expires in tokens)
            return app_principal(app) if live else None


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
