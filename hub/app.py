"""The HTTP application: /graphql, /healthz (liveness), /readyz (the hub database and each
department's state), /metrics (Prometheus, to the admin and monitoring roles), and GraphiQL
where it is turned on.

/graphql takes a free-text operation (`query`) or a trusted document's id (`documentId`,
registered with `hub documents register`), which runs without parsing or validation.

A request the hub cannot read as one GraphQL operation (hub/request.py: a body that is not a
JSON object, too large, not UTF-8, of another content type or not the length it declares;
variables past their bounds; a header or parameter given twice; then a mutation sent as GET or an
operation name the document lacks) is answered with a 4xx status and a GraphQL-shaped error,
before anything runs. So is a fault of the hub's own (500): never a page or a trace.

The only hub module besides the command line that imports `schema`: it is the composition
root. Authentication happens here, before any GraphQL work: a request without a valid token
gets 401 and a GraphQL-shaped error body.

Every /graphql request is observed (hub/observe): counted in the metrics, written to the access
log, traced where tracing is on, and answered with its request id in `X-Request-Id`.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from importlib import resources
from typing import Any

import orjson
from sqlalchemy import text
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from hub.access.plan import Planner, Verdict
from hub.audit.event import sole_operation
from hub.audit.routes import audit_routes
from hub.auth.cache import PrincipalCache
from hub.auth.gateway import HEADER as GATEWAY_HEADER
from hub.auth.gateway import GatewayCallers, GatewayRefused
from hub.auth.principal import Principal
from hub.catalog import EntityInfo
from hub.crypto.errors import KeyringError
from hub.encoding import encoded_slices, fragment
from hub.health.readiness import readiness
from hub.health.shared_keys import shared_key_report
from hub.large_answer import LargeJSON
from hub.observe.requests import HEADER as REQUEST_ID
from hub.observe.requests import Seen
from hub.quota import LOOKUP_QUOTA, LookupCounter, Refusal
from hub.quota.concurrency import ConcurrencyRefusal
from hub.quota.rates import RateRefusal
from hub.request import BadRequest, Bounds, GraphQLRequest, read_request, repeated, response_media_type
from hub.services import Services
from hub.trusted.service import is_document_id, live_documents
from schema import (
    INTERNAL_MESSAGE,
    BuiltSchema,
    Caller,
    Compiled,
    Lookups,
    Operation,
    TrustedDocuments,
    build_schema,
    prepare,
    refusal,
    run,
)

log = logging.getLogger("hub.app")

STATIC = resources.files("hub") / "static" / "graphiql"


class JSON(Response):
    media_type = "application/json"
    # The first error's code, for the metrics and the access log.
    code: str | None = None

    def render(self, content: Any) -> bytes:
        self.code = _first_code(content)
        # A long list of rows may come encoded already (hub/encoding.py).
        return orjson.dumps(content, default=fragment)


def _error(
    status: int,
    code: str,
    message: str,
    headers: dict[str, str] | None = None,
    extensions: dict[str, Any] | None = None,
) -> JSON:
    error = {"message": message, "extensions": {**(extensions or {}), "code": code}}
    return JSON({"errors": [error]}, status, headers)


async def _internal(request: Request, exc: Exception) -> Response:
    """A fault of the hub's own: the caller gets INTERNAL and nothing else; the server logs the
    traceback (Starlette re-raises the exception to the server after this answer is sent)."""
    seen = request.scope.get(SEEN)
    headers = None if seen is None else {REQUEST_ID: seen.request_id}
    return _error(500, "INTERNAL", INTERNAL_MESSAGE, headers)


REQUEST_ID_HEADER = REQUEST_ID.lower().encode("latin-1")
# Where a request's Seen is kept in its ASGI scope, for the answer to a fault of the hub's.
SEEN = "hub.seen"
# Roles that may read /metrics.
MONITORS = frozenset({"admin", "monitoring"})
# The status a cancelled request is counted and logged with (nginx's "client closed request").
CANCELLED = 499


def create_app(services: Services) -> Starlette:
    built = build_schema(services.catalog, services.settings)
    trusted = TrustedDocuments(built.compiler, services.sessions)
    principals = PrincipalCache(services.sessions, services.settings.token_cache_seconds)
    gateway = GatewayCallers(
        services.sessions, services.settings.gateway_public_keys, services.settings.token_cache_seconds
    )
    bounds = Bounds.of(services.settings)
    graphiql = services.settings.graphiql
    quota = services.quota
    observe = services.observe
    metrics = observe.metrics
    compiler, planner = built.compiler, services.planner
    metrics.watch_cache("documents", lambda: (compiler.hits, compiler.misses))
    metrics.watch_cache("trusted_documents", lambda: (trusted.hits, trusted.misses))
    metrics.watch_cache("plans", lambda: (planner.plan_hits, planner.plan_misses))
    metrics.watch_cache("decisions", lambda: (planner.decision_hits, planner.decision_misses))
    metrics.watch_keys(lambda: _key_versions(services))
    if not quota.enabled:
        log.warning("lookup quotas are off (HUB_LOOKUP_QUOTA): masked identifiers can be guessed without limit")
    state = {"ready": False}
    changes = services.changes
    if changes is not None:
        # A change announced by the hub database reaches cached tokens and documents at once.
        async def forget_cached() -> None:
            principals.forget()
            trusted.forget()

        changes.on_change(forget_cached)
    trail = services.trail if services.trail is not None and services.trail.settings.enabled else None

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        async with services.engine.connect() as connection:
            await connection.execute(text("SELECT 1 FROM hub_app WHERE 1 = 0"))
        await services.start()
        # What start-up made (schema, catalog, policy, keys) lives as long as the process.
        # Frozen, the collector stops walking it: full collections went from ~100 ms pauses
        # every few seconds to a few ms (bench W2's latency spikes).
        gc.collect()
        gc.freeze()
        watching: AbstractAsyncContextManager[None]
        if changes is not None:
            # PostgreSQL: notifications, with the serial checked every interval (hub/instances).
            watching = changes.running()
        elif services.live is not None:
            watching = services.live.watching(services.sessions)
        else:
            watching = contextlib.nullcontext()
        # Tree heads are signed at an interval while the log grows (hub/audit/heads.py).
        signing = None if trail is None or services.heads is None else asyncio.create_task(services.heads.run())
        async with watching:
            state["ready"] = True
            try:
                yield
            finally:
                state["ready"] = False
                if signing is not None:
                    signing.cancel()
                await services.close()

    async def healthz(_: Request) -> Response:
        if not state["ready"]:
            return JSON({"status": "starting"}, 503)
        return JSON({"status": "ok", "departments": sorted(services.catalog.departments)})

    async def readyz(_: Request) -> Response:
        if not state["ready"]:
            return JSON({"status": "starting"}, 503)
        shared = shared_key_report(services.keys.keyring, services.catalog.shared.values())
        status, body = await readiness(
            services.engine, services.breakers, services.gates, changes, services.catalog_hash, shared
        )
        return JSON(body, status)

    async def graphql(request: Request) -> Response:
        headers = request.headers
        seen = observe.begin(headers.get("x-request-id"), request.method, headers)
        request.scope[SEEN] = seen
        if trail is not None:
            trail.begin(request)
        try:
            response = await _graphql(request, seen)
            # The access trail records the request before its answer leaves (and withholds the
            # answer's data when it cannot).
            if trail is not None:
                response = await trail.seal(request, seen, response)
        except Exception:
            if trail is not None:
                await trail.fault(request, seen)
            observe.finish(seen, 500, "INTERNAL")
            raise
        except asyncio.CancelledError:
            # The server gave up on the request (its client went away): counted, and its span ended.
            observe.finish(seen, CANCELLED, "CANCELLED")
            raise
        finally:
            if trail is not None:
                trail.end(request)
        # One media type for every answer of /graphql, refusals included (GraphQL over HTTP).
        if response.media_type == JSON.media_type:
            media = response_media_type(headers.get("accept"))
            if media != JSON.media_type:
                response.headers["content-type"] = media
        # Appended to the raw list: the answer has no such header, and MutableHeaders would scan for one.
        response.raw_headers.append((REQUEST_ID_HEADER, seen.request_id.encode("latin-1")))
        observe.finish(seen, response.status_code, getattr(response, "code", None))
        return response

    async def metrics_page(request: Request) -> Response:
        twice = repeated(request)
        if twice is not None:
            return _error(400, "BAD_USER_INPUT", f"{twice} may be given only once")
        principal = await _principal(principals, request)
        if principal is None:
            return _error(
                401,
                "UNAUTHENTICATED",
                "a valid bearer token is required (Authorization: Bearer <token>)",
                {"WWW-Authenticate": 'Bearer realm="hub"'},
            )
        if MONITORS.isdisjoint(principal.roles):
            return _error(403, "FORBIDDEN", "/metrics is for callers with the admin or monitoring role")
        exposition, media_type = observe.render(request.headers.get("accept"))
        # The media type as the encoder gives it (with its charset): not Starlette's own.
        return Response(exposition, headers={"Content-Type": media_type})

    async def _graphql(request: Request, seen: Seen) -> Response:
        if request.method not in ("GET", "POST"):
            return _error(
                405, "BAD_USER_INPUT", "send operations as POST (queries also as GET)", {"Allow": "GET, POST"}
            )
        twice = repeated(request)
        if twice is not None:
            return _error(400, "BAD_USER_INPUT", f"{twice} may be given only once")
        if request.method == "GET" and "query" not in request.query_params and "documentId" not in request.query_params:
            if "text/html" in request.headers.get("accept", ""):
                if graphiql:
                    return FileResponse(str(STATIC / "index.html"), media_type="text/html")
                # Production mode: no page, and an answer that says why rather than a bare 404.
                return _error(
                    404,
                    "BAD_USER_INPUT",
                    "GraphiQL is off on this hub (HUB_GRAPHIQL); send GraphQL operations as POST with a JSON body",
                )
            return _error(400, "BAD_USER_INPUT", "send a GraphQL operation as POST with a JSON body")
        assertion = request.headers.get(GATEWAY_HEADER)
        if assertion is not None:
            # A Federation gateway's request: the caller it vouches for, as this hub knows it.
            if "authorization" in request.headers:
                return _error(400, "BAD_USER_INPUT", "send a bearer token or a gateway assertion, not both")
            try:
                principal: Principal | None = await gateway.principal(assertion)
            except GatewayRefused as not_trusted:
                return _error(401, "UNAUTHENTICATED", str(not_trusted))
        else:
            principal = await _principal(principals, request)
        if principal is None:
            return _error(
                401,
                "UNAUTHENTICATED",
                "a valid bearer token is required (Authorization: Bearer <token>)",
                {"WWW-Authenticate": 'Bearer realm="hub"'},
            )
        seen.principal = principal
        # Before the body is read: a caller over its rate costs the hub as little as can be.
        if services.rates is not None:
            over_rate = await services.rates.admit(principal)
            if over_rate is not None:
                seen.limit = f"rate_{over_rate.scope}"
                metrics.limit_refused(seen.limit)
                return _rate_exceeded(over_rate)
        try:
            body = await read_request(request, bounds)
        except BadRequest as bad:
            return _error(bad.status, bad.code, bad.message, bad.headers, bad.extensions)
        document = await _document(services, trusted, body)
        if isinstance(document, Response):
            return document
        assert body.query is not None  # a trusted document's text when the request named one
        seen.text = body.query
        if document is not None:
            seen.document = body.document_id
        operation = prepare(built, body.query, document, body.variables, body.operation_name, body.read_only)
        seen.operation = operation.name or sole_operation(operation.document.document)
        # Checked before the quota counts what the request supplies.
        refused = refusal(operation) or built.limits.refusal(operation, principal.roles)
        if refused is not None:
            return JSON(refused.body, refused.status, refused.headers)
        if assertion is None and built.asks_federation(operation):
            return _error(403, "FORBIDDEN", "_entities and _service answer a configured Federation gateway only")
        async with _in_flight(services, principal) as too_many:
            if too_many is not None:
                seen.limit = "concurrency"
                metrics.limit_refused(seen.limit)
                return _concurrency_exceeded(too_many)
            # Most requests repeat values already counted this hour: settled here, synchronously.
            if quota.enabled and not _counted(built.lookups, quota, principal, operation):
                over = await _within_quota(services, built.lookups, quota, principal, request, operation)
                if over is not None:
                    seen.limit = LOOKUP_QUOTA
                    metrics.limit_refused(seen.limit)
                    return over
            return await _execute(services, built, principal, request, operation, seen)

    routes: list[Route | Mount] = [
        # Methods besides GET and POST too: the handler answers them with a GraphQL-shaped 405.
        Route("/graphql", graphql, methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics_page, methods=["GET"]),
        *audit_routes(services.sessions, lambda: services.keys.keyring.tree_signer()),
    ]
    if graphiql:
        routes.append(Mount("/graphiql/static", StaticFiles(directory=str(STATIC)), name="graphiql"))
    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers={Exception: _internal})
    # For a reload (hub/reload.py): which trusted documents this app's schema no longer runs.
    app.state.compiler = built.compiler
    app.state.sessions = services.sessions
    return app


def _key_versions(services: Services) -> dict[str, int]:
    try:
        keyring = services.keys.keyring
    except KeyringError:
        return {}  # not loaded yet: nothing to show rather than a failed scrape
    return {department: keyring.current_version(department) for department in keyring.departments}


async def invalid_trusted_documents(app: Starlette) -> list[str]:
    """The live trusted documents that do not validate against `app`'s schema (a field they
    name is gone, say), as `name (id)`: such a document is refused when it is run."""
    async with app.state.sessions() as session:
        documents = await live_documents(session)
    return [f"{name} ({id_})" for id_, name, text in documents if app.state.compiler.compile_uncached(text).errors]


async def _principal(principals: PrincipalCache, request: Request) -> Principal | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return await principals.principal(token.strip())


async def _document(services: Services, trusted: TrustedDocuments, body: GraphQLRequest) -> Compiled | Response | None:
    """The compiled trusted document a request names; None for a free-text request."""
    document_id = body.document_id
    if document_id is None:
        if services.settings.trusted_documents_only:
            return _error(403, "FORBIDDEN", "this hub runs registered documents only: send a `documentId`")
        return None
    compiled = trusted.known(document_id)
    if compiled is None and is_document_id(document_id):
        compiled = await trusted.get(document_id)
    if compiled is None:
        return _error(
            400,
            "BAD_USER_INPUT",
            f"no trusted document {document_id[:80]!r}; ids are 'sha256:' and 64 hex digits, "
            "registered with `hub documents register`",
        )
    body.query = compiled.text
    return compiled


def _counted(lookups: Lookups, quota: LookupCounter, principal: Principal, operation: Operation) -> bool:
    """Whether every value the request gives at a lookup site is one this instance counted for
    the caller this hour (or it gives none). Every value, whether or not the policy counts it, so
    a superset of those that count: such a request is settled without reading the purpose,
    decisions, a coroutine or the database."""
    return lookups.settled(operation.document, operation.name, operation.variables, quota.known(principal))


async def _within_quota(
    services: Services,
    lookups: Lookups,
    quota: LookupCounter,
    principal: Principal,
    request: Request,
    operation: Operation,
) -> Response | None:
    """The lookup quota's refusal (429), made before any SQL, of a request whose new identifier
    values would pass the caller's quota; None when it may run."""
    purpose = request.headers.get("x-hub-purpose") or None
    if purpose is not None and purpose not in services.purposes:
        return None  # refused as BAD_PURPOSE next, before any SQL
    verdicts = _PolicyVerdicts(services.planner, principal, purpose)
    supplied = lookups.supplied(operation.document, operation.name, operation.variables, verdicts)
    over = await quota.admit(principal, supplied)
    return None if over is None else _quota_exceeded(over)


class _PolicyVerdicts:
    """Decisions on the few fields a request's lookups name, from the planner's cache: the ones
    the request's plan will hold, without planning its whole selection twice."""

    __slots__ = ("planner", "principal", "purpose")

    def __init__(self, planner: Planner, principal: Principal, purpose: str | None) -> None:
        self.planner = planner
        self.principal = principal
        self.purpose = purpose

    def verdict(self, entity: EntityInfo, name: str) -> Verdict | None:
        item = entity.fields.get(name)
        return None if item is None else self.planner.field(self.principal, self.purpose, entity, item)


def _rate_exceeded(refusal: RateRefusal) -> Response:
    """The lookup quota's 429, for a rate: the same body, with whose rate it was."""
    window = {"start": refusal.window_start.isoformat(), "end": refusal.window_end.isoformat()}
    whose = "your" if refusal.scope == "caller" else "your department's"
    message = (
        f"rate limit exceeded: {whose} limit is {refusal.limit} requests per {refusal.period} s; "
        f"try again in {refusal.retry_after} s"
    )
    extensions = {
        "code": "LIMIT_EXCEEDED",
        "limit": refusal.limit,
        "used": refusal.used,
        "requested": 1,
        "window": window,
        "scope": refusal.scope,
        "period": refusal.period,
    }
    body = {"errors": [{"message": message, "extensions": extensions}], "data": None}
    return JSON(body, 429, {"Retry-After": str(refusal.retry_after)})


def _in_flight(services: Services, principal: Principal) -> AbstractAsyncContextManager[ConcurrencyRefusal | None]:
    """One of the caller's slots for requests in flight, or its refusal (no limit: always one)."""
    if services.in_flight is None:
        return contextlib.nullcontext()
    return services.in_flight.slot(principal)


def _concurrency_exceeded(refusal: ConcurrencyRefusal) -> Response:
    """The rate limit's 429, for requests in flight: the same body, scope `concurrency`."""
    message = (
        f"too many requests in flight: your limit is {refusal.limit} at once, and none of yours ended "
        f"within {refusal.waited:g} s; wait for an answer before sending more"
    )
    extensions = {
        "code": "LIMIT_EXCEEDED",
        "limit": refusal.limit,
        "used": refusal.limit,
        "requested": 1,
        "scope": "concurrency",
    }
    body = {"errors": [{"message": message, "extensions": extensions}], "data": None}
    return JSON(body, 429, {"Retry-After": "1"})


def _quota_exceeded(refusal: Refusal) -> Response:
    window = {"start": refusal.window_start.isoformat(), "end": refusal.window_end.isoformat()}
    message = (
        f"lookup quota exceeded: this request supplies {refusal.requested} new identifier value(s) and "
        f"{refusal.used} of your {refusal.limit} per hour are used; the next window starts at {window['end']}"
    )
    extensions = {
        "code": "LIMIT_EXCEEDED",
        "limit": refusal.limit,
        "used": refusal.used,
        "requested": refusal.requested,
        "window": window,
        "scope": LOOKUP_QUOTA,
    }
    body = {"errors": [{"message": message, "extensions": extensions}], "data": None}
    return JSON(body, 429, {"Retry-After": str(refusal.retry_after)})


async def _execute(
    services: Services, built: BuiltSchema, principal: Principal, request: Request, operation: Operation, seen: Seen
) -> Response:
    purpose = request.headers.get("x-hub-purpose") or None
    if purpose is not None and purpose not in services.purposes:
        # The codes themselves are no secret (grants name them); a file path would be.
        codes = ", ".join(sorted(services.purposes))
        return _error(400, "BAD_PURPOSE", f"unknown purpose {purpose[:40]!r}; the purposes are: {codes}")
    answer = await run(built, operation, Caller(services, principal, purpose))
    seen.answered(answer.record)
    if _refused_by_quota(answer.body):
        # A lookup the operation itself made (the trail's person filter, a person's history).
        seen.limit = LOOKUP_QUOTA
    if services.trail is not None:
        # The access record is complete: the event is queued now and written while the body is
        # encoded; the answer leaves once the event is durable (Trail.seal, in `graphql`).
        services.trail.start(request, seen, answer.status, _first_code(answer.body))
    if not answer.large:
        return JSON(answer.body, answer.status)
    # A large answer is encoded in pieces, other requests served between them, and sent in
    # slices; its memory is given back once the last is sent (hub/large_answer.py).
    return LargeJSON(await encoded_slices(answer.body), answer.status, _first_code(answer.body))


def _refused_by_quota(content: Any) -> bool:
    """Whether a GraphQL body's first error is the lookup quota's refusal."""
    errors = content.get("errors") if isinstance(content, dict) else None
    if not errors:
        return False
    extensions = errors[0].get("extensions", {})
    return bool(extensions.get("code") == "LIMIT_EXCEEDED" and extensions.get("scope") == LOOKUP_QUOTA)


def _first_code(content: Any) -> str | None:
    """The first error's code of a GraphQL body, for the metrics and the access log."""
    errors = content.get("errors") if isinstance(content, dict) else None
    if not errors:
        return None
    return str(errors[0].get("extensions", {}).get("code", "INTERNAL"))
