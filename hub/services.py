"""The hub's running services, assembled once from settings: catalog, connectors, reader,
planner and the hub database. The app factory and the command line share this assembly."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from connectors.base import Connector
from hub.access.cursor import Cursors
from hub.access.plan import AccessPolicy, Planner, PolicySource
from hub.access.read import Reader
from hub.audit.heads import HeadSigner
from hub.audit.history import PersonHistory
from hub.audit.query import AuditQuery
from hub.audit.trail import Trail
from hub.audit.writer import TrailWriter
from hub.catalog import Catalog, load_catalog
from hub.catalog.connections import open_connectors
from hub.catalog.manifest import ConnectionDecl
from hub.config import Settings
from hub.crypto.cells import PERSON_DOMAIN, key_scopes
from hub.crypto.keyring import current_data_version
from hub.crypto.live import LiveKeyring
from hub.crypto.master import master_key_from_settings
from hub.crypto.opening import KeysDoNotOpen, check_departments, refuse_unopened
from hub.db.engine import hub_engine, sessions
from hub.health.breaker import Breaker, BreakerSettings
from hub.health.guard import GuardedConnector
from hub.health.schema_gate import SchemaGate
from hub.instances.catalog_hash import catalog_hash, record_if_absent
from hub.instances.feed import ChangeFeed
from hub.instances.unconfirmed import ConfirmedSource
from hub.lineage.links import LinkStore
from hub.lineage.recording import Lineage
from hub.lineage.refs import References
from hub.observe.metrics import pool_usage
from hub.observe.requests import Observability
from hub.observe.settings import ObserveSettings
from hub.observe.tracing import SpanExporter
from hub.onboarding.conformance import check_department
from hub.policy.admin import PolicyAdmin
from hub.policy.live import LivePolicy
from hub.policy.mask_strength import WeakMask
from hub.policy.snapshot import SnapshotError, validate
from hub.policy.store import PolicyStore, principals, seed
from hub.policy.terms import Purpose, Terms, load_terms
from hub.quota import LookupCounter
from hub.quota.concurrency import InFlight
from hub.quota.rates import RateLimits, rate

if TYPE_CHECKING:
    from hub.reload import ReloadReport

log = logging.getLogger("hub.services")

DEFAULT_TIMEOUT_MS: int = ConnectionDecl.model_fields["statement_timeout_ms"].default
DEFAULT_POOL_SIZE: int = ConnectionDecl.model_fields["pool_size"].default


class StartupRefused(Exception):
    """The hub will not serve: its stored configuration breaks a rule; the message says which."""


@dataclass
class Services:
    settings: Settings
    catalog: Catalog
    connectors: Mapping[str, Connector]
    reader: Reader
    planner: Planner
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    terms: Terms
    # The live, database-backed policy; None when a fixed policy was given (tests).
    live: LivePolicy | None
    store: PolicyStore
    admin: PolicyAdmin | None
    keys: LiveKeyring
    # Lookup quotas, counted in the hub database (hub/quota).
    quota: LookupCounter
    # Each department's connector as the reader uses it: behind its deadline and its circuit
    # breaker (hub/health); `connectors` holds the bare ones, for instrumentation.
    departments: Mapping[str, GuardedConnector]
    # Request rate limits (hub/quota/rates.py); None when switched off.
    rates: RateLimits | None = None
    # Requests in flight per caller (hub/quota/concurrency.py); None when switched off.
    in_flight: InFlight | None = None
    # Metrics, tracing and the access log (hub/observe).
    observe: Observability = field(default_factory=lambda: Observability(ObserveSettings()))
    # The access trail (hub/audit): an event per request, and its signed tree heads.
    trail: Trail | None = None
    heads: HeadSigner | None = None
    # Reading the trail (`auditEvents`); None on hubs built without it (tests of the spine).
    audit: AuditQuery | None = None
    # A person's access history with proofs (`personAccessHistory`), for citizens' apps.
    history: PersonHistory | None = None
    # Reads the manifests again and swaps to them (hub/reload.py); None where nothing can
    # reload this hub (tests, and hubs served without `hub serve`).
    reload: Callable[[], Awaitable[ReloadReport]] | None = None
    # Changes other instances make, on a PostgreSQL hub database (hub/instances); None on
    # SQLite, which serves one instance (its policy is polled, hub/policy/live.py).
    changes: ChangeFeed | None = None
    # The hash of this instance's manifests, against the one the hub database records.
    catalog_hash: str = ""
    # Traces and recorded links (hub/lineage).
    lineage: Lineage | None = None

    @property
    def breakers(self) -> Mapping[str, Breaker]:
        return {name: department.breaker for name, department in self.departments.items()}

    @property
    def gates(self) -> Mapping[str, SchemaGate]:
        return {name: d.gate for name, d in self.departments.items() if d.gate is not None}

    @property
    def purposes(self) -> Mapping[str, Purpose]:
        return self.terms.purposes

    async def start(self) -> None:
        """Load the keyring (making the keys the catalog lacks), seed the policy on a new hub
        database and load its newest version. A policy whose row rules leave an entity about
        persons uncovered (stored before the check existed, or over a changed catalog) stops
        the start: serving it would release the rows the rules meant to hide."""
        if self.trail is not None:
            # The trail's writer process, if it has one, is ready before the first request.
            await self.trail.writer.open()
        if self.changes is not None:
            # Before anything is loaded: a change committed while this start loads is applied
            # by the first check (hub/instances/feed.py).
            await self.changes.prime()
            self._warn_instance_local()
        # Each department's database against its manifest: a mismatched one is served as
        # unavailable, an unreachable one is checked on its first read (hub/health/schema_gate.py).
        await asyncio.gather(*(d.gate.verify() for d in self.departments.values() if d.gate is not None))
        departments, domains = key_scopes(list(self.catalog))
        # Values already encrypted (a manifest copied from another hub) must open with this
        # hub's keys, and no key is made for a department whose values no new key could open
        # (hub/crypto/opening.py); one that could not be read gets its key on a later start.
        async with self.sessions() as session:
            keyless = [name for name in departments if await current_data_version(session, name) is None]
        try:
            found = await check_departments(self.catalog, self.departments, keyless)
            unread = [name for name in keyless if found.get(name, []) is None]
            for name in unread:
                log.warning("department %s: no data key made, its database could not be read", name)
            wanted = [name for name in departments if name not in unread]
            try:
                made = await self.keys.start(wanted, domains)
            except IntegrityError:
                # Another instance starting on the same new hub database made them first (one
                # key per purpose, scope and version): load those.
                made = await self.keys.start(wanted, domains)
            for name, sampled in found.items():
                if sampled:
                    refuse_unopened(self.keys.keyring, name, sampled)
        except KeysDoNotOpen as exc:
            # Whoever started the hub reports it: `hub serve` as its one line, a reload to its caller.
            raise StartupRefused(f"the hub will not start: {exc}") from None
        for name in made:
            log.info("made the %s", name)
        daily = self.settings.max_daily_lookups()
        if self.settings.lookup_quota_enabled and 2 * daily > self.settings.min_mask_candidates:
            # Masks are judged against K candidates on the understanding that a caller cannot
            # try half of them in a day; quotas this generous undo that.
            log.warning(
                "lookup quotas allow %s lookups a day, more than half of HUB_MIN_MASK_CANDIDATES (%s): "
                "a masked identifier can be guessed within a day",
                daily,
                self.settings.min_mask_candidates,
            )
        if self.catalog_hash:
            async with self.sessions() as session, session.begin():
                await record_if_absent(session, self.catalog_hash)
        if self.live is None:
            return
        try:
            async with self.sessions() as session, session.begin():
                await seed(session, self.catalog, self.terms)
        except IntegrityError:
            log.info("another instance seeded the policy first")
        await self.live.refresh(self.sessions)
        current = self.live.current()
        # A limit set for a misspelt role would silently leave that role on the default.
        unknown = self.settings.unknown_limit_role(current.snapshot.role_names())
        if unknown is not None:
            raise StartupRefused(f"the hub will not start: {unknown}")
        try:
            # The stored policy against this hub's catalog (its manifests, just loaded) and
            # rules: one written by an older hub or by hand, or over a changed catalog, is not
            # served (a gap in row rules would release the rows they meant to hide); the
            # operator imports a corrected one.
            validate(current.snapshot, self.catalog, self.terms)
            async with self.sessions() as session:
                apps = await principals(session)
            await self.store.check_masks(current, apps)
        except (SnapshotError, WeakMask) as exc:
            version = current.snapshot.version
            message = f"the hub will not start on policy version {version}: {exc}; fix it with `hub policy import`"
            raise StartupRefused(message) from None

    def _warn_instance_local(self) -> None:
        """On PostgreSQL the hub may run as several instances; say which settings would keep
        state that instances behind one balancer must share on this instance alone."""
        if self.settings.cursor_key is None:
            log.warning(
                "HUB_CURSOR_KEY is not set: this instance signs page cursors with a key of its own, "
                "so a cursor it issued is refused by any other instance of this hub"
            )
        if self.rates is not None and self.settings.limits_storage.startswith("memory"):
            log.warning(
                "HUB_LIMITS_STORAGE is memory://: each instance counts request rates on its own; "
                "point every instance at one Redis to share them"
            )

    async def close(self) -> None:
        if self.trail is not None:
            await self.trail.close()
        # Each closes the bare connector inside it.
        for department in self.departments.values():
            await department.close()
        await self.engine.dispose()
        # Queued spans are sent on a thread: the exporter's client blocks.
        await asyncio.to_thread(self.observe.close)


def build_services(
    settings: Settings,
    catalog: Catalog | None = None,
    connectors: Mapping[str, Connector] | None = None,
    policy: AccessPolicy | None = None,
    span_exporter: SpanExporter | None = None,
) -> Services:
    """The services `settings` describe; tests may give the catalog, connectors, a fixed policy
    and an exporter that receives every span (tracing on, whatever the settings say)."""
    catalog = catalog if catalog is not None else load_catalog(settings.manifests_dir)
    connectors = connectors if connectors is not None else open_connectors(catalog, settings)
    engine = hub_engine(settings.database_url)
    session_maker = sessions(engine)
    # The master key is read now, so a missing or exposed key file stops the start at once;
    # the keys it wraps are loaded (and made where missing) by `start`.
    keys = LiveKeyring(session_maker, [master_key_from_settings(settings)])
    # Cursors and lineage references are sealed under one key, told apart by their purpose.
    sealing_key = settings.cursor_key or secrets.token_bytes(32)
    cursors = Cursors(sealing_key)
    observe = Observability(settings.observe, span_exporter)
    releaser = observe.releaser(lambda: keys.keyring)
    guarded = guard(catalog, connectors, settings, observe)
    reader = Reader(
        catalog,
        guarded,
        releaser,
        keys,
        cursors,
        settings.default_page_size,
        settings.max_page_size,
        settings.max_semijoin_keys,
        relation_page=settings.relation_page_size,
        max_relation_page=settings.max_relation_page_size,
        max_values=settings.max_values,
        max_report_rows=settings.max_report_rows,
        refs=References(sealing_key),
    )
    terms = load_terms(
        catalog, settings.max_grant_days, settings.min_mask_candidates, departments_file=settings.departments_file
    )
    live: LivePolicy | None = None
    source: PolicySource
    store = PolicyStore(session_maker, catalog, terms, audit=settings.audit.enabled)
    if policy is not None:
        fixed = policy
        source = lambda: fixed  # noqa: E731
    else:
        live = LivePolicy(catalog, terms)
        source = live.current
    changes: ChangeFeed | None = None
    if engine.dialect.name == "postgresql":
        changes = ChangeFeed(
            settings.database_url, session_maker, settings.change_poll_seconds, settings.unconfirmed_after_seconds
        )
        # Unconfirmed, L3 and L4 fields are withheld (hub/instances/unconfirmed.py).
        source = ConfirmedSource(source, changes.confirmed)
        if live is not None:
            applied = live

            async def refresh_policy() -> None:
                await applied.refresh(session_maker)

            changes.on_change(refresh_policy)
        changes.on_change(lambda: keys.refresh(force=True))
    quota = LookupCounter(session_maker, settings, lambda: keys.keyring.lookup_key())
    audit = AuditQuery(session_maker, catalog, cursors, quota, lambda: keys.keyring.blind_index(PERSON_DOMAIN))
    return Services(
        settings=settings,
        catalog=catalog,
        connectors=connectors,
        reader=reader,
        planner=Planner(catalog, source),
        engine=engine,
        sessions=session_maker,
        terms=terms,
        live=live,
        store=store,
        admin=None if live is None else PolicyAdmin(store, live, catalog),
        keys=keys,
        quota=quota,
        departments=guarded,
        rates=_rates(settings),
        in_flight=_in_flight(settings),
        observe=observe,
        trail=Trail(
            settings.audit,
            TrailWriter(
                engine,
                settings.audit.batch_max,
                settings.audit.gather_ms,
                process=settings.audit.writer == "process",
            ),
            catalog,
            terms.purposes,
        ),
        heads=HeadSigner(session_maker, lambda: keys.keyring.tree_signer(), settings.audit.sign_interval_s),
        audit=audit,
        history=PersonHistory(session_maker, audit, lambda: keys.keyring.tree_signer()),
        changes=changes,
        catalog_hash=catalog_hash(settings.manifests_dir),
        lineage=Lineage(catalog, reader, LinkStore(session_maker)),
    )


def _rates(settings: Settings) -> RateLimits | None:
    if not settings.rate_limit_enabled:
        return None
    return RateLimits(
        {role: rate(text, "HUB_RATE_LIMITS") for role, text in settings.rate_limits.items()},
        rate(settings.rate_limit_default, "HUB_RATE_LIMIT_DEFAULT"),
        rate(settings.department_rate_limit, "HUB_DEPARTMENT_RATE_LIMIT"),
        settings.limits_storage,
    )


def _in_flight(settings: Settings) -> InFlight | None:
    if not settings.concurrency_limit_enabled:
        return None
    return InFlight(settings.concurrency_limits, settings.concurrency_limit_default, settings.concurrency_wait_seconds)


def schema_gate(catalog: Catalog, name: str, connector: Connector, timeout_ms: int) -> SchemaGate | None:
    """The check of `name`'s database against its manifest, where the connector has an engine
    to reflect (a SQL database), else None."""
    engine = getattr(connector, "engine", None)
    if name not in catalog.departments or not isinstance(engine, AsyncEngine):
        return None

    async def check() -> list[str]:
        return [item.public() for item in await check_department(catalog, name, engine)]

    # Reflection takes a few statements per table: several of the department's timeouts.
    return SchemaGate(name, check, timeout_s=max(5.0, 4 * timeout_ms / 1000))


def guard(
    catalog: Catalog, connectors: Mapping[str, Connector], settings: Settings, observe: Observability | None = None
) -> dict[str, GuardedConnector]:
    """Each department's connector behind a breaker and a deadline of its statement timeout,
    reporting its reads to `observe` (and its pool, where it has one)."""
    breaker = BreakerSettings(
        settings.breaker_failures, settings.breaker_window_seconds, settings.breaker_cooldown_seconds
    )
    guarded: dict[str, GuardedConnector] = {}
    for name, connector in connectors.items():
        department = catalog.departments.get(name)
        # A connector for a department the catalog lacks (a test's) gets the manifest defaults.
        timeout_ms = department.connection.statement_timeout_ms if department is not None else DEFAULT_TIMEOUT_MS
        pool_size = department.connection.pool_size if department is not None else DEFAULT_POOL_SIZE
        watch = None if observe is None else observe.department(name)
        gate = schema_gate(catalog, name, connector, timeout_ms)
        guarded[name] = GuardedConnector(name, connector, Breaker(name, breaker), timeout_ms, pool_size, watch, gate)
        usage = pool_usage(getattr(connector, "engine", None))
        if observe is not None and usage is not None:
            observe.metrics.watch_pool(name, usage)
    if observe is not None:
        observe.metrics.watch_breakers({name: department.breaker for name, department in guarded.items()})
    return guarded
