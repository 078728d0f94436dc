"""Serving one generation of the hub at a time, and swapping to the next without a restart.

A generation is the services built over one reading of the manifests and the HTTP app over
them. `hub reload` (the admin mutation `reloadManifests`, or SIGHUP to a local `hub serve`)
reads the manifests again and builds the next generation beside the serving one: the catalog,
the start-up checks (schema gate, keys opening, mask strength, the stored policy against the new
catalog), the schema and its costs. Only when all of that succeeds do new requests go to it;
requests already running finish on the generation they started on, which is closed once the
last of them is done. A manifest that does not load, or a generation that would not start,
leaves the serving one as it is, and the report says why (file, entity, field).

This module builds nothing itself: the command line gives it how to build services over a
catalog and an app over services, so the request path's layers stay as they are.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Awaitable, Callable, MutableMapping
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

from hub.catalog import Catalog, ManifestError
from hub.catalog.connections import ConnectionSetupError
from hub.crypto.errors import CryptoError
from hub.policy.terms import TermsError
from hub.services import Services, StartupRefused

log = logging.getLogger("hub.reload")

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class ReloadRefused(Exception):
    """The new manifests would start, but worse than the serving ones (the message says where)."""


# Errors that mean "this configuration cannot start", each with a message for an operator.
STARTUP_ERRORS: tuple[type[Exception], ...] = (
    ManifestError,
    ConnectionSetupError,
    CryptoError,
    StartupRefused,
    ReloadRefused,
    TermsError,
)
# How long a retired generation waits for its requests before it is closed anyway.
DRAIN_SECONDS = 120.0


@dataclass(frozen=True)
class ReloadReport:
    """What a reload did: `reloaded` and the new catalog's entity count, or why not (`error`)."""

    reloaded: bool
    entities: int
    error: str | None = None
    # Trusted documents the new schema no longer validates (refused when run), as `name (id)`.
    invalid_documents: tuple[str, ...] = ()


def _without_paths(message: str) -> str:
    """`message` with each absolute path cut to its last part: the file a mistake is in is
    named, the server's folders are not (the log keeps the whole message)."""
    return _PATH.sub(lambda found: found.group(0).rsplit("/", 1)[-1], message)


_PATH = re.compile(r"(?<![\w.])/(?:[^\s/:]+/)*[^\s/:]+")


class _Generation:
    __slots__ = ("app", "in_flight", "services", "stack")

    def __init__(self, services: Services, app: ASGIApp, stack: AsyncExitStack) -> None:
        self.services = services
        self.app = app
        self.stack = stack
        self.in_flight = 0


class Reloadable:
    """An ASGI app that hands each HTTP request to the current generation. Enter it
    (`async with`) to start the first generation; leave it to close the current one."""

    def __init__(
        self,
        manifests: Callable[[], Catalog],
        build: Callable[[Catalog], Services],
        make_app: Callable[[Services], Any],
        revalidate: Callable[[Any], Awaitable[list[str]]] | None = None,
    ) -> None:
        self._manifests = manifests
        self._build = build
        self._make_app = make_app
        self._revalidate = revalidate
        self._current: _Generation | None = None
        self._lock = asyncio.Lock()
        self._retiring: set[asyncio.Task[None]] = set()

    @property
    def services(self) -> Services:
        if self._current is None:
            raise RuntimeError("the hub has not started")
        return self._current.services

    async def __aenter__(self) -> Reloadable:
        # The first generation's failures propagate: the caller stops with one line.
        self._current = await self._start(self._manifests())
        return self

    async def __aexit__(self, *exc: object) -> None:
        for task in list(self._retiring):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._current is not None:
            current, self._current = self._current, None
            await current.stack.aclose()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        generation = self._current
        if generation is None:
            raise RuntimeError("the hub has not started")
        generation.in_flight += 1
        try:
            await generation.app(scope, receive, send)
        finally:
            generation.in_flight -= 1

    async def reload(self) -> ReloadReport:
        """Read the manifests again and serve them if they start; else keep serving the old."""
        async with self._lock:
            try:
                catalog = self._manifests()
                fresh = await self._start(catalog, strict=True)
            except STARTUP_ERRORS as exc:
                log.error("reload refused, the previous manifests stay in service: %s", exc)
                return ReloadReport(False, len(self.services.catalog.entities), _without_paths(str(exc)))
            invalid: list[str] = []
            if self._revalidate is not None:
                try:
                    invalid = await self._revalidate(fresh.app)
                except Exception:  # the hub database could not be read: the swap still helps
                    log.warning("could not check the trusted documents against the new schema", exc_info=True)
            old, self._current = self._current, fresh
            log.info("reloaded the manifests: %s entities", len(catalog.entities))
            for document in invalid:
                log.warning("trusted document %s no longer validates: it is refused when run", document)
            if old is not None:
                task = asyncio.create_task(self._retire(old))
                self._retiring.add(task)
                task.add_done_callback(self._retiring.discard)
            return ReloadReport(True, len(catalog.entities), None, tuple(invalid))

    async def _start(self, catalog: Catalog, strict: bool = False) -> _Generation:
        """The generation over `catalog`, started. `strict` (a reload): a department whose
        database does not match its manifest refuses the whole reload, where a first start
        serves it as unavailable: the old manifest still serves it."""
        services = self._build(catalog)
        services.reload = self.reload
        if self._current is not None:
            # Counted per caller in memory: a reload must not hand every caller a fresh
            # allowance of requests, nor forget the requests it has running.
            services.rates = self._current.services.rates
            services.in_flight = self._current.services.in_flight
        stack = AsyncExitStack()
        try:
            app = self._make_app(services)
            # The app's own start and stop (hub/app.py's lifespan): start-up checks, the
            # policy's watcher, tree-head signing; closing it closes the services.
            await stack.enter_async_context(app.router.lifespan_context(app))
            mismatched = [m for gate in services.gates.values() for m in gate.mismatches]
            if strict and mismatched:
                raise ReloadRefused("; ".join(mismatched[:3]))
        except BaseException:
            await stack.aclose()
            await services.close()
            raise
        return _Generation(services, app, stack)

    async def _retire(self, old: _Generation) -> None:
        """Close `old` once the requests it was serving are done (or after DRAIN_SECONDS)."""
        waited = 0.0
        while old.in_flight and waited < DRAIN_SECONDS:
            await asyncio.sleep(0.05)
            waited += 0.05
        if old.in_flight:
            log.warning("closing the previous generation with %s requests still running", old.in_flight)
        await old.stack.aclose()
