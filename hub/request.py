"""Reading a GraphQL request off HTTP: what a GET's parameters or a POST's JSON body ask to
run, refused with a 4xx status before anything runs where the hub cannot read it as one
operation.

Refused: a body past the size limit (as it streams in, whatever length it declared), not the
length it declares, not UTF-8, not JSON, not a JSON object, or of another content type; a
`query`, `documentId`, `variables` or `operationName` of the wrong type; a U+0000 character in
any of them (PostgreSQL cannot store it, so it could never match, and it would fail there
instead of being refused here); variables holding more values or nesting deeper than allowed
(GraphQL would walk them all before any limit on the document applies); a header or parameter
given twice. Each refusal is a `BadRequest`, which hub/app.py sends as a GraphQL-shaped error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.requests import ClientDisconnect, Request

from hub.config import Settings

# Headers and parameters a request may give once: with two, what the hub reads and what a proxy
# in front of it checked (or logged) could be different values.
SINGLE_HEADERS = ("authorization", "content-length", "content-type", "x-hub-purpose")
SINGLE_PARAMS = ("query", "documentId", "operationName", "variables")
_SINGLE_RAW = frozenset(name.encode("latin-1") for name in SINGLE_HEADERS)

JSON_MEDIA = "application/json"
# The GraphQL over HTTP media type: the same body, and its status codes are the ones the hub
# sends anyway (4xx for a request that did not run, 200 once the operation ran).
GRAPHQL_RESPONSE_MEDIA = "application/graphql-response+json"


class BadRequest(Exception):
    """A request refused before anything runs: its status, error code and message (written for
    the caller), and any headers and extensions the refusal adds."""

    def __init__(
        self,
        status: int,
        message: str,
        code: str = "BAD_USER_INPUT",
        headers: dict[str, str] | None = None,
        extensions: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.headers = headers or {}
        self.extensions = extensions or {}


@dataclass(frozen=True)
class Bounds:
    """How much of a request the hub reads (from the settings)."""

    max_body_bytes: int
    max_variable_values: int
    max_variable_depth: int

    @classmethod
    def of(cls, settings: Settings) -> Bounds:
        return cls(settings.max_body_bytes, settings.max_variable_values, settings.max_variable_depth)


@dataclass
class GraphQLRequest:
    """What a request asks to run: a free-text document or a trusted document's id."""

    query: str | None
    document_id: str | None
    variables: dict[str, Any] | None = None
    operation_name: str | None = None
    read_only: bool = field(default=False)


def repeated(request: Request) -> str | None:
    """The first header or query parameter that must be single and is given more than once."""
    # One pass over the raw headers (ASGI gives their names in lower case), not one scan and
    # decoding of them all per name: this runs on every request.
    seen: set[bytes] = set()
    twice: set[bytes] = set()
    for name, _ in request.scope["headers"]:
        if name in _SINGLE_RAW:
            if name in seen:
                twice.add(name)
            seen.add(name)
    for name in SINGLE_HEADERS:
        if name.encode("latin-1") in twice:
            return f"the {name} header"
    if not request.scope.get("query_string"):
        return None  # a POST's usual case: no parameters to parse
    for name in SINGLE_PARAMS:
        if len(request.query_params.getlist(name)) > 1:
            return f"the {name} parameter"
    return None


async def read_request(request: Request, bounds: Bounds) -> GraphQLRequest:
    """The operation a GET's parameters or a POST's JSON body ask for; BadRequest if it cannot
    be read as one."""
    if request.method == "GET":
        params = request.query_params
        raw: dict[str, Any] = {
            "query": params.get("query"),
            "documentId": params.get("documentId"),
            "operationName": params.get("operationName"),
        }
        if params.get("variables"):
            try:
                raw["variables"] = orjson.loads(params["variables"])
            except orjson.JSONDecodeError:
                raise BadRequest(400, "`variables` is not valid JSON") from None
    else:
        body = await _body(request, bounds.max_body_bytes)
        try:
            decoded = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise BadRequest(400, _not_json(body)) from None
        if not isinstance(decoded, dict):
            raise BadRequest(400, "the body must be a JSON object")
        raw = decoded
    return _operation(raw, bounds, read_only=request.method == "GET")


def _operation(raw: dict[str, Any], bounds: Bounds, read_only: bool) -> GraphQLRequest:
    query, document_id = raw.get("query"), raw.get("documentId")
    if query is not None and document_id is not None:
        raise BadRequest(400, "send either `query` or `documentId`, not both")
    if document_id is not None and not isinstance(document_id, str):
        raise BadRequest(400, "`documentId` must be a string")
    if document_id is None and not isinstance(query, str):
        raise BadRequest(400, "the body needs a `query` string or a trusted `documentId`")
    variables = raw.get("variables")
    if variables is not None and not isinstance(variables, dict):
        raise BadRequest(400, "`variables` must be an object")
    name = raw.get("operationName")
    if name is not None and not isinstance(name, str):
        raise BadRequest(400, "`operationName` must be a string")
    for label, text in (("query", query), ("documentId", document_id), ("operationName", name)):
        if isinstance(text, str) and "\x00" in text:
            raise BadRequest(400, f"`{label}` holds a U+0000 character, which no value here may hold")
    if variables:
        _check_variables(variables, bounds)
    return GraphQLRequest(query, document_id, variables, name, read_only)


def _check_variables(variables: dict[str, Any], bounds: Bounds) -> None:
    """Counts the variables' values (every list, object and scalar) and their nesting, without
    recursion, stopping at the first bound passed; refuses a U+0000 in a string or a key."""
    count, limit, deepest = 0, bounds.max_variable_values, bounds.max_variable_depth
    stack: list[tuple[Any, int]] = [(value, 1) for value in variables.values()]
    if any("\x00" in name for name in variables):
        raise _nul_in_variables()
    while stack:
        value, depth = stack.pop()
        count += 1
        if count > limit:
            raise BadRequest(
                400,
                f"the variables hold more than {limit} values",
                "LIMIT_EXCEEDED",
                extensions={"limit": "variableValues", "max": limit},
            )
        if isinstance(value, str):
            if "\x00" in value:
                raise _nul_in_variables()
        elif isinstance(value, dict | list):
            if depth > deepest:
                raise BadRequest(
                    400,
                    f"the variables nest deeper than {deepest} levels",
                    "LIMIT_EXCEEDED",
                    extensions={"limit": "variableDepth", "max": deepest},
                )
            if isinstance(value, dict):
                if any("\x00" in key for key in value):
                    raise _nul_in_variables()
                stack.extend((item, depth + 1) for item in value.values())
            else:
                stack.extend((item, depth + 1) for item in value)


def _nul_in_variables() -> BadRequest:
    return BadRequest(400, "the variables hold a U+0000 character, which no value here may hold")


async def _body(request: Request, limit: int) -> bytes:
    """The JSON body of a POST, read as it streams in: a body past `limit` is refused when it
    gets there, whether or not it declared a length (a chunked body declares none), so no
    request makes the hub hold more than `limit` bytes of it."""
    media = request.headers.get("content-type")
    if media is not None:
        kind, _, parameters = media.partition(";")
        if kind.strip().lower() != JSON_MEDIA:
            raise BadRequest(415, "the request body must be JSON (Content-Type: application/json)")
        charset = _parameter(parameters, "charset")
        if charset is not None and charset.lower() not in ("utf-8", "utf8"):
            raise BadRequest(415, "the request body must be UTF-8 JSON (charset=utf-8, or no charset)")
    declared = request.headers.get("content-length")
    expected: int | None = None
    if declared is not None:
        declared = declared.strip()
        if not (declared.isascii() and declared.isdigit()):
            raise BadRequest(400, "the Content-Length header is not a number")
        # Past a dozen digits it is too large anyway (and int() of thousands of digits raises).
        expected = int(declared) if len(declared) <= 12 else limit + 1
        if expected > limit:
            raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise _too_large(limit)
            chunks.append(chunk)
    except ClientDisconnect:
        raise BadRequest(400, "the request body ended before it was complete") from None
    if expected is not None and size != expected:
        raise BadRequest(400, "the request body is not as long as its Content-Length says")
    return b"".join(chunks)


def _too_large(limit: int) -> BadRequest:
    return BadRequest(
        413,
        f"the request body may be at most {limit} bytes",
        "LIMIT_EXCEEDED",
        extensions={"limit": "bodyBytes", "max": limit},
    )


def _not_json(body: bytes) -> str:
    """Why a body is not JSON, as far as it helps the caller: the encoding, or the syntax."""
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return "the request body is not UTF-8"
    return "the request body is not valid JSON"


def _parameter(parameters: str, name: str) -> str | None:
    for item in parameters.split(";"):
        key, equals, value = item.partition("=")
        if equals and key.strip().lower() == name:
            return value.strip().strip('"')
    return None


def response_media_type(accept: str | None) -> str:
    """The media type of the answer: application/graphql-response+json where the Accept header
    prefers it (a higher q, or listed first at the same q), application/json otherwise (no
    header, */*, or only types the hub does not serve: it answers rather than sending 406)."""
    if not accept:
        return JSON_MEDIA
    best, best_q = JSON_MEDIA, -1.0
    for item in accept.split(","):
        kind, _, parameters = item.partition(";")
        kind = kind.strip().lower()
        if kind not in (GRAPHQL_RESPONSE_MEDIA, JSON_MEDIA, "application/*", "*/*"):
            continue
        try:
            q = float(_parameter(parameters, "q") or 1)
        except ValueError:
            continue
        if not 0 < q <= 1:
            continue  # q=0 is "not this one"
        if q > best_q:
            best = GRAPHQL_RESPONSE_MEDIA if kind == GRAPHQL_RESPONSE_MEDIA else JSON_MEDIA
            best_q = q
    return best
