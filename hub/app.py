"""The HTTP application: /graphql (GraphiQL on a browser's GET), /healthz (liveness), /readyz
(the hub database and each department's state).

/graphql takes a free-text operation (`query`) or a trusted document's id (`documentId`,
registered with `hub documents register`), which runs without parsing or validation.

A request the hub cannot read as one GraphQL operation (a body that is not a JSON object, too
large, or not the length it declares; a header or parameter given twice; a mutation sent as GET;
an operation name the document lacks) is answered with a 4xx status and a GraphQL-shaped error,
before anything runs.

The only hub module besides the command line that imports `schema`: it is the composition
root. Authentication happens here, before any GraphQL work: a request without a valid token
gets 401 and a GraphQL-shaped error body.
"""

from __future__ import annotations

import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from importlib import resources
from typing import Any

import orjson
from sqlalchemy import text
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import ClientDisconnect, Request
from starlette.responses import FileResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from hub.access.memory import give_back
from hub.access.plan import Planner, Verdict
from hub.auth.cache import PrincipalCache
from hub.auth.principal import Principal
from hub.catalog import EntityInfo
from hub.health.readiness import readiness
from hub.quota import LookupCounter, Refusal
from hub.quota.rates import RateRefusal
from hub.services import Services
from hub.trusted.service import is_document_id
from schema import (
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

MAX_BODY = 1_000_000
# Headers and parameters a request may give once: with two, what the hub reads and what a proxy
# in front of it checked (or logged) could be different values.
SINGLE_HEADERS = ("authorization", "content-length", "content-type", "x-hub-purpose")
SINGLE_PARAMS = ("query", "documentId", "operationName", "variables")
STATIC = resources.files("hub") / "static" / "graphiql"


class JSON(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSON:
    return JSON({"errors": [{"message": message, "extensions": {"code": code}}]}, status, headers)


def create_app(services: Services) -> Starlette:
    built = build_schema(services.catalog, services.settings)
    trusted = TrustedDocuments(built.compiler, services.sessions)
    principals = PrincipalCache(services.sessions, services.settings.token_cache_seconds)
    quota = services.quota
    if not quota.enabled:
        log.warning("lookup quotas are off (HUB_LOOKUP_QUOTA): masked identifiers can be guessed without limit")
    state = {"ready": False}

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
        watching = services.live.watching(services.sessions) if services.live else contextlib.nullcontext()
        async with watching:
            state["ready"] = True
            try:
                yield
            finally:
                state["ready"] = False
                await services.close()

    async def healthz(_: Request) -> Response:
        if not state["ready"]:
            return JSON({"status": "starting"}, 503)
        return JSON({"status": "ok", "departments": sorted(services.catalog.departments)})

    async def readyz(_: Request) -> Response:
        if not state["ready"]:
            return JSON({"status": "starting"}, 503)
        status, body = await readiness(services.engine, services.breakers)
        return JSON(body, status)

    async def graphql(request: Request) -> Response:
        if request.method not in ("GET", "POST"):
            return _error(
                405, "BAD_USER_INPUT", "send operations as POST (queries also as GET)", {"Allow": "GET, POST"}
            )
        repeated = _repeated(request)
        if repeated is not None:
            return _error(400, "BAD_USER_INPUT", f"{repeated} may be given only once")
        if request.method == "GET" and "query" not in request.query_params and "documentId" not in request.query_params:
            if "text/html" in request.headers.get("accept", ""):
                return FileResponse(str(STATIC / "index.html"), media_type="text/html")
            return _error(400, "BAD_USER_INPUT", "send a GraphQL operation as POST with a JSON body")
        principal = await _principal(principals, request)
        if principal is None:
            return _error(
                401,
                "UNAUTHENTICATED",
                "a valid bearer token is required (Authorization: Bearer <token>)",
                {"WWW-Authenticate": 'Bearer realm="hub"'},
            )
        # Before the body is read: a caller over its rate costs the hub as little as can be.
        if services.rates is not None:
            over_rate = await services.rates.admit(principal)
            if over_rate is not None:
                return _rate_exceeded(over_rate)
        body = await _operation(request)
        if isinstance(body, Response):
            return body
        document = await _document(services, trusted, body)
        if isinstance(document, Response):
            return document
        operation = prepare(
            built,
            body["query"],
            document,
            body.get("variables"),
            body.get("operationName"),
            read_only=request.method == "GET",
        )
        # Checked before the quota counts what the request supplies.
        refused = refusal(operation) or built.limits.refusal(operation, principal.roles)
        if refused is not None:
            return JSON(refused.body, refused.status, refused.headers)
        over = await _within_quota(services, built.lookups, quota, principal, request, operation)
        if over is not None:
            return over
        return await _execute(services, built, principal, request, operation)

    routes = [
        # Methods besides GET and POST too: the handler answers them with a GraphQL-shaped 405.
        Route("/graphql", graphql, methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Mount("/graphiql/static", StaticFiles(directory=str(STATIC)), name="graphiql"),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


async def _principal(principals: PrincipalCache, request: Request) -> Principal | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return await principals.principal(token.strip())


async def _operation(request: Request) -> dict[str, Any] | Response:
    if request.method == "GET":
        params = request.query_params
        raw: Any = {
            "query": params.get("query"),
            "documentId": params.get("documentId"),
            "operationName": params.get("operationName"),
        }
        if params.get("variables"):
            try:
                raw["variables"] = orjson.loads(params["variables"])
            except orjson.JSONDecodeError:
                return _error(400, "BAD_USER_INPUT", "`variables` is not valid JSON")
    else:
        body = await _body(request)
        if isinstance(body, Response):
            return body
        try:
            raw = orjson.loads(body)
        except orjson.JSONDecodeError:
            return _error(400, "BAD_USER_INPUT", "the request body is not valid JSON")
    if not isinstance(raw, dict):
        return _error(400, "BAD_USER_INPUT", "the body must be a JSON object")
    query, document_id = raw.get("query"), raw.get("documentId")
    if query is not None and document_id is not None:
        return _error(400, "BAD_USER_INPUT", "send either `query` or `documentId`, not both")
    if document_id is not None and not isinstance(document_id, str):
        return _error(400, "BAD_USER_INPUT", "`documentId` must be a string")
    if document_id is None and not isinstance(query, str):
        return _error(400, "BAD_USER_INPUT", "the body needs a `query` string or a trusted `documentId`")
    variables = raw.get("variables")
    if variables is not None and not isinstance(variables, dict):
        return _error(400, "BAD_USER_INPUT", "`variables` must be an object")
    name = raw.get("operationName")
    if name is not None and not isinstance(name, str):
        return _error(400, "BAD_USER_INPUT", "`operationName` must be a string")
    return raw


def _repeated(request: Request) -> str | None:
    """The first header or query parameter that must be single and is given more than once."""
    for name in SINGLE_HEADERS:
        if len(request.headers.getlist(name)) > 1:
            return f"the {name} header"
    for name in SINGLE_PARAMS:
        if len(request.query_params.getlist(name)) > 1:
            return f"the {name} parameter"
    return None


async def _body(request: Request) -> bytes | Response:
    """The JSON body of a POST, read as it streams in: a body past MAX_BODY is refused when it
    gets there, whether or not it declared a length (a chunked body declares none), so no
    request makes the hub hold more than MAX_BODY bytes of it."""
    media = request.headers.get("content-type")
    if media is not None and media.partition(";")[0].strip().lower() != "application/json":
        return _error(415, "BAD_USER_INPUT", "the request body must be JSON (Content-Type: application/json)")
    declared = request.headers.get("content-length")
    expected: int | None = None
    if declared is not None:
        declared = declared.strip()
        if not (declared.isascii() and declared.isdigit()):
            return _error(400, "BAD_USER_INPUT", "the Content-Length header is not a number")
        # Past a dozen digits it is too large anyway (and int() of thousands of digits raises).
        expected = int(declared) if len(declared) <= 12 else MAX_BODY + 1
        if expected > MAX_BODY:
            return _too_large()
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_BODY:
                return _too_large()
            chunks.append(chunk)
    except ClientDisconnect:
        return _error(400, "BAD_USER_INPUT", "the request body ended before it was complete")
    if expected is not None and size != expected:
        return _error(400, "BAD_USER_INPUT", "the request body is not as long as its Content-Length says")
    return b"".join(chunks)


def _too_large() -> Response:
    return _error(413, "LIMIT_EXCEEDED", f"the request body may be at most {MAX_BODY} bytes")


async def _document(services: Services, trusted: TrustedDocuments, body: dict[str, Any]) -> Compiled | Response | None:
    """The compiled trusted document a request names; None for a free-text request."""
    document_id = body.get("documentId")
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
    body["query"] = compiled.text
    return compiled


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
    if not quota.enabled:
        return None
    compiled, name = operation.document, operation.name
    sites = lookups.sites(compiled, name)
    if sites is None or not sites.sites or compiled.document is None:
        return None
    variables = operation.variables
    # Most requests repeat values already counted this hour. Where every value the request
    # gives at a lookup site is counted already, so is every one that counts, whatever the
    # policy decides (or the purpose): such a request is settled without reading the purpose,
    # decisions, a coroutine or the database.
    if quota.counted(principal, lookups.supplied(compiled, name, variables, None)):
        return None
    purpose = request.headers.get("x-hub-purpose") or None
    if purpose is not None and purpose not in services.purposes:
        return None  # refused as BAD_PURPOSE next, before any SQL
    supplied = lookups.supplied(compiled, name, variables, _PolicyVerdicts(services.planner, principal, purpose))
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
    }
    body = {"errors": [{"message": message, "extensions": extensions}], "data": None}
    return JSON(body, 429, {"Retry-After": str(refusal.retry_after)})


async def _execute(
    services: Services, built: BuiltSchema, principal: Principal, request: Request, operation: Operation
) -> Response:
    purpose = request.headers.get("x-hub-purpose") or None
    if purpose is not None and purpose not in services.purposes:
        return _error(
            400, "BAD_PURPOSE", f"unknown purpose {purpose[:40]!r}; the codes are listed in policies/purposes.yaml"
        )
    answer = await run(built, operation, Caller(services, principal, purpose))
    response = JSON(answer.body, answer.status)
    if answer.large:
        # After the response is sent: the memory of a large request is given back at once.
        response.background = BackgroundTask(give_back)
    return response
