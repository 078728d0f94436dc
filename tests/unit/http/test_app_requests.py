"""Malformed HTTP requests to /graphql: each kind is answered with a 4xx status and a
GraphQL-shaped error (`{"errors": [{"message", "extensions": {"code"}}]}`), never a 500 or a
trace, and a body past the limit is refused while it streams in, chunked or not."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from hub.config import DEFAULT_MAX_BODY_BYTES as MAX_BODY
from tests.conftest import Hub

COUNT = "{ registryPersons { totalCount } }"


@dataclass(frozen=True)
class Bad:
    """One malformed request: how it is sent, and the status and code it must get."""

    method: str
    status: int
    code: str = "BAD_USER_INPUT"
    params: dict[str, Any] | list[tuple[str, str]] | None = None
    body: bytes | None = None
    # Sent on top of a valid Authorization header and a JSON content type; a list of pairs
    # replaces them, so that a header can be given twice.
    headers: dict[str, str] | list[tuple[str, str]] = field(default_factory=dict)
    allow: str | None = None


def _json(value: Any) -> bytes:
    return json.dumps(value).encode()


TOKEN = "{token}"  # replaced by the test hub's token
AUTH = ("Authorization", f"Bearer {TOKEN}")
JSON_TYPE = ("Content-Type", "application/json")

MALFORMED: dict[str, Bad] = {
    # The operation
    "get_with_a_mutation": Bad("GET", 405, params={"query": "mutation { __typename }"}, allow="POST"),
    "get_naming_a_mutation_among_operations": Bad(
        "GET",
        405,
        params={"query": "query A { __typename } mutation B { __typename }", "operationName": "B"},
        allow="POST",
    ),
    "unknown_operation_name": Bad("POST", 400, body=_json({"query": COUNT, "operationName": "Nope"})),
    "unknown_operation_name_in_a_get": Bad("GET", 400, params={"query": COUNT, "operationName": "Nope"}),
    "unknown_operation_name_of_a_lookup": Bad(
        "POST", 400, body=_json({"query": '{ registryPerson(key: "1") { name } }', "operationName": "Nope"})
    ),
    "several_operations_without_a_name": Bad(
        "POST", 400, body=_json({"query": "query A { __typename } query B { __typename }"})
    ),
    "a_document_of_fragments_only": Bad("POST", 400, body=_json({"query": "fragment F on Query { __typename }"})),
    "an_empty_query": Bad("POST", 400, body=_json({"query": ""})),
    # The body
    "malformed_json": Bad("POST", 400, body=b"{not json"),
    "an_empty_body": Bad("POST", 400, body=b""),
    "invalid_utf8": Bad("POST", 400, body=b'{"query": "\xff\xfe"}'),
    "a_lone_surrogate": Bad("POST", 400, body=b'{"query": "{ __typename }", "operationName": "\\ud800"}'),
    "json_nested_past_any_limit": Bad("POST", 400, body=b"[" * 100_000),
    "a_json_array": Bad("POST", 400, body=_json([{"query": COUNT}])),
    "a_json_string": Bad("POST", 400, body=_json(COUNT)),
    "json_null": Bad("POST", 400, body=b"null"),
    "query_not_a_string": Bad("POST", 400, body=_json({"query": 42})),
    "query_an_object": Bad("POST", 400, body=_json({"query": {"query": COUNT}})),
    "no_query": Bad("POST", 400, body=_json({"variables": {}})),
    "variables_a_list": Bad("POST", 400, body=_json({"query": COUNT, "variables": [1]})),
    "variables_a_string": Bad("POST", 400, body=_json({"query": COUNT, "variables": "{}"})),
    "operation_name_not_a_string": Bad("POST", 400, body=_json({"query": COUNT, "operationName": 1})),
    "document_id_not_a_string": Bad("POST", 400, body=_json({"documentId": 1})),
    "query_and_document_id": Bad("POST", 400, body=_json({"query": COUNT, "documentId": "sha256:" + "0" * 64})),
    "an_unknown_document_id": Bad("POST", 400, body=_json({"documentId": "sha256:" + "0" * 64})),
    "a_huge_integer_variable": Bad(
        "POST",
        400,
        body=b'{"query": "query($n: Int) { registryPersons(first: $n) { totalCount } }", "variables": {"n": '
        + b"9" * 5000
        + b"}}",
    ),
    "get_variables_not_json": Bad("GET", 400, params={"query": COUNT, "variables": "{x"}),
    "get_variables_not_an_object": Bad("GET", 400, params={"query": COUNT, "variables": "[1]"}),
    # Size and framing
    "a_body_past_the_limit": Bad("POST", 413, "LIMIT_EXCEEDED", body=_json({"query": COUNT, "pad": "x" * MAX_BODY})),
    "a_declared_length_past_the_limit": Bad(
        "POST", 413, "LIMIT_EXCEEDED", body=_json({"query": COUNT}), headers={"Content-Length": str(MAX_BODY + 1)}
    ),
    "a_declared_length_of_thousands_of_digits": Bad(
        "POST", 413, "LIMIT_EXCEEDED", body=_json({"query": COUNT}), headers={"Content-Length": "9" * 5000}
    ),
    "a_declared_length_shorter_than_the_body": Bad(
        "POST", 400, body=_json({"query": COUNT}), headers={"Content-Length": "10"}
    ),
    "a_declared_length_longer_than_the_body": Bad(
        "POST", 400, body=_json({"query": COUNT}), headers={"Content-Length": "500"}
    ),
    "a_declared_length_that_is_not_a_number": Bad(
        "POST", 400, body=_json({"query": COUNT}), headers={"Content-Length": "12abc"}
    ),
    # Headers and parameters
    "text_plain": Bad("POST", 415, body=_json({"query": COUNT}), headers={"Content-Type": "text/plain"}),
    "a_form": Bad(
        "POST", 415, body=b"query=%7B__typename%7D", headers={"Content-Type": "application/x-www-form-urlencoded"}
    ),
    "two_authorization_headers": Bad("POST", 400, body=_json({"query": COUNT}), headers=[AUTH, AUTH, JSON_TYPE]),
    "two_different_authorization_headers": Bad(
        "POST", 400, body=_json({"query": COUNT}), headers=[AUTH, ("Authorization", "Bearer other"), JSON_TYPE]
    ),
    "two_purposes": Bad(
        "POST",
        400,
        body=_json({"query": COUNT}),
        headers=[AUTH, JSON_TYPE, ("X-Hub-Purpose", "statistics"), ("X-Hub-Purpose", "social_assistance")],
    ),
    "two_content_types": Bad(
        "POST", 400, body=_json({"query": COUNT}), headers=[AUTH, JSON_TYPE, ("Content-Type", "text/plain")]
    ),
    "two_query_parameters": Bad("GET", 400, params=[("query", COUNT), ("query", "mutation { __typename }")]),
    "an_unknown_purpose": Bad("POST", 400, "BAD_PURPOSE", body=_json({"query": COUNT}), headers={"X-Hub-Purpose": "x"}),
    # Methods
    "put": Bad("PUT", 405, body=_json({"query": COUNT}), allow="GET, POST"),
    "delete": Bad("DELETE", 405, allow="GET, POST"),
    "patch": Bad("PATCH", 405, body=_json({"query": COUNT}), allow="GET, POST"),
}


def _headers(bad: Bad, token: str) -> list[tuple[str, str]]:
    if isinstance(bad.headers, list):
        return [(name, value.replace(TOKEN, token)) for name, value in bad.headers]
    given = {name.lower(): value for name, value in bad.headers.items()}
    base = {"authorization": f"Bearer {token}", "content-type": "application/json"}
    return list({**base, **given}.items())


def _assert_graphql_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"errors"}
    [error] = body["errors"]
    assert isinstance(error["message"], str) and error["message"]
    assert error["extensions"]["code"] == code
    for leak in ("Traceback", 'File "', ".py", "strawberry", "graphql-core"):
        assert leak not in response.text
    return dict(error)


@pytest.mark.parametrize("kind", MALFORMED)
def test_malformed_request_is_refused_with_a_graphql_error(hub: Hub, kind: str) -> None:
    bad = MALFORMED[kind]
    response = hub.client.request(
        bad.method, "/graphql", params=bad.params, content=bad.body, headers=_headers(bad, hub.token)
    )
    _assert_graphql_error(response, bad.status, bad.code)
    if bad.allow is not None:
        assert response.headers["allow"] == bad.allow


def test_get_with_a_mutation_runs_nothing(hub: Hub) -> None:
    # The schema's admin mutations are what a GET must never reach: refused before validation.
    response = hub.client.get(
        "/graphql",
        params={"query": 'mutation { revokeGrant(id: 1, reason: "x") { version } }'},
        headers={"Authorization": f"Bearer {hub.token}"},
    )
    error = _assert_graphql_error(response, 405, "BAD_USER_INPUT")
    assert "POST" in error["message"]


def test_an_operation_named_in_a_document_of_several_runs(hub: Hub) -> None:
    response = hub.client.post(
        "/graphql",
        json={"query": "query A { __typename } query B { registryPersons { totalCount } }", "operationName": "B"},
        headers={"Authorization": f"Bearer {hub.token}"},
    )
    assert response.status_code == 200
    assert response.json()["data"] == {"registryPersons": {"totalCount": 3}}


def test_a_json_body_without_a_content_type_or_with_a_charset_is_read(hub: Hub) -> None:
    for content_type in (None, "application/json; charset=utf-8", "Application/JSON"):
        headers = {"Authorization": f"Bearer {hub.token}"}
        if content_type is not None:
            headers["Content-Type"] = content_type
        response = hub.client.post("/graphql", content=_json({"query": COUNT}), headers=headers)
        assert response.status_code == 200
        assert response.json()["data"] == {"registryPersons": {"totalCount": 3}}


def test_a_body_just_under_the_limit_is_read(hub: Hub) -> None:
    body = _json({"query": COUNT, "pad": ""})
    body = _json({"query": COUNT, "pad": "x" * (MAX_BODY - len(body))})
    assert len(body) == MAX_BODY
    response = hub.client.post("/graphql", content=body, headers={"Authorization": f"Bearer {hub.token}"})
    assert response.status_code == 200
    assert response.json()["data"] == {"registryPersons": {"totalCount": 3}}


class Chunks:
    """A request body sent in chunks (no Content-Length: chunked), made as they are taken and
    counted."""

    def __init__(self, chunks: list[bytes] | None = None, repeat: tuple[bytes, int] | None = None) -> None:
        self.chunks, self.repeat = chunks or [], repeat
        self.taken = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            self.taken += 1
            yield chunk
        if self.repeat is not None:
            chunk, times = self.repeat
            for _ in range(times):
                self.taken += 1
                yield chunk


def _stream(hub: Hub, chunks: Chunks, headers: dict[str, str] | None = None) -> httpx.Response:
    """POSTs `chunks` to the hub through httpx's ASGI transport, which hands the app each chunk
    as the app asks for it (the test client would read the whole body first)."""

    async def send() -> httpx.Response:
        transport = httpx.ASGITransport(app=hub.client.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://hub") as client:
            return await client.post(
                "/graphql",
                content=chunks,
                headers={"Authorization": f"Bearer {hub.token}", "Content-Type": "application/json", **(headers or {})},
            )

    assert hub.client.portal is not None
    return hub.client.portal.call(send)


def test_chunked_body_past_the_limit_is_refused_before_it_is_all_read(hub: Hub) -> None:
    chunk = 64 * 1024
    body = Chunks(repeat=(b"x" * chunk, 200 * 1024 * 1024 // chunk))  # 200 MB, never all made
    response = _stream(hub, body)
    _assert_graphql_error(response, 413, "LIMIT_EXCEEDED")
    # The hub stopped at the chunk that took it past the limit.
    assert body.taken == MAX_BODY // chunk + 1


def test_chunked_body_with_a_small_declared_length_is_refused_at_the_limit(hub: Hub) -> None:
    chunk = 64 * 1024
    body = Chunks(repeat=(b"x" * chunk, 64))  # 4 MB behind a claim of 10 bytes
    response = _stream(hub, body, {"Content-Length": "10"})
    _assert_graphql_error(response, 413, "LIMIT_EXCEEDED")
    assert body.taken == MAX_BODY // chunk + 1


def test_chunked_body_under_the_limit_is_read_whole(hub: Hub) -> None:
    body = _json({"query": COUNT})
    response = _stream(hub, Chunks([body[i : i + 5] for i in range(0, len(body), 5)]))
    assert response.status_code == 200
    assert response.json()["data"] == {"registryPersons": {"totalCount": 3}}


def test_an_unknown_purpose_lists_the_valid_codes_and_no_file(hub: Hub) -> None:
    response = hub.client.post(
        "/graphql",
        json={"query": COUNT},
        headers={"Authorization": f"Bearer {hub.token}", "X-Hub-Purpose": "curiosity"},
    )
    error = _assert_graphql_error(response, 400, "BAD_PURPOSE")
    assert error["message"].startswith("unknown purpose 'curiosity'; the purposes are: audit, citizen_service, ")
    assert "social_assistance" in error["message"] and "statistics" in error["message"]
    assert ".yaml" not in error["message"] and "/" not in error["message"]
