"""Production mode, the default of `hub serve`: no introspection of the schema (but
`__typename`), no "Did you mean" suggestions, no GraphiQL page, and the settings that turn each
on, as `hub demo` does. The body size and the bounds on variables come from the settings too,
and the answer's media type follows the Accept header."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import URL

from hub.catalog import Catalog
from hub.config import SettingsError, load_settings
from tests.conftest import Hub, serve_small_hub

COUNT = "{ registryPersons { totalCount } }"
BY_FILTER = "query($f: RegistryPersonFilter) { registryPersons(filter: $f) { totalCount } }"
LEAKS = ("Traceback", 'File "', ".py", "strawberry", "graphql-core")


@pytest.fixture
def demo_like(hub_db: URL, small_catalog: Catalog) -> Iterator[Hub]:
    """A hub with what `hub demo` turns on."""
    yield from serve_small_hub(hub_db, small_catalog, {"HUB_INTROSPECTION": "on", "HUB_GRAPHIQL": "on"})


def post(hub: Hub, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    return hub.client.post(
        "/graphql",
        content=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {hub.token}", **(headers or {})},
    )


def error_of(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The one error of a refused request, checked for its shape and for leaks."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == code
    assert response.json().get("data") is None
    for leak in LEAKS:
        assert leak not in response.text
    return dict(error)


# --- settings -----------------------------------------------------------------------------


def test_settings_default_to_production_mode() -> None:
    settings = load_settings({})
    assert (settings.introspection, settings.graphiql) == (False, False)
    assert settings.max_body_bytes == 1_000_000


def test_settings_turn_introspection_graphiql_and_the_bounds_on_from_the_environment() -> None:
    settings = load_settings(
        {
            "HUB_INTROSPECTION": "on",
            "HUB_GRAPHIQL": "true",
            "HUB_MAX_BODY_BYTES": "5000",
            "HUB_MAX_VARIABLE_VALUES": "10",
            "HUB_MAX_VARIABLE_DEPTH": "3",
        }
    )
    assert (settings.introspection, settings.graphiql) == (True, True)
    assert (settings.max_body_bytes, settings.max_variable_values, settings.max_variable_depth) == (5000, 10, 3)


@pytest.mark.parametrize(
    ("name", "value"),
    [("HUB_INTROSPECTION", "maybe"), ("HUB_MAX_BODY_BYTES", "0"), ("HUB_MAX_VARIABLE_DEPTH", "x")],
)
def test_a_malformed_setting_is_refused_naming_it(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        load_settings({name: value})


def test_a_settings_file_is_read_under_the_environment(tmp_path: Path) -> None:
    file = tmp_path / "hub.env"
    file.write_text(
        "# production\nexport HUB_GRAPHIQL=on\nHUB_MAX_BODY_BYTES='2000'\n\nHUB_INTROSPECTION=\"on\"\n",
        encoding="utf-8",
    )
    settings = load_settings({"HUB_SETTINGS_FILE": str(file), "HUB_INTROSPECTION": "off"})
    assert settings.graphiql is True
    assert settings.max_body_bytes == 2000
    # The environment wins over the file.
    assert settings.introspection is False


def test_a_malformed_settings_file_names_the_line_not_its_value(tmp_path: Path) -> None:
    file = tmp_path / "hub.env"
    file.write_text("HUB_GRAPHIQL=on\nsecret-value-without-a-name\n", encoding="utf-8")
    with pytest.raises(SettingsError, match="line 2") as raised:
        load_settings({"HUB_SETTINGS_FILE": str(file)})
    assert "secret-value" not in str(raised.value)
    with pytest.raises(SettingsError, match="cannot be read"):
        load_settings({"HUB_SETTINGS_FILE": str(tmp_path / "missing.env")})


# --- introspection and suggestions --------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "{ __schema { types { name } } }",
        '{ __type(name: "RegistryPerson") { fields { name } } }',
        "{ registryPersons { totalCount } a: __schema { queryType { name } } }",
        "query { ...F } fragment F on Query { __schema { queryType { name } } }",
    ],
)
def test_introspection_is_refused_in_production_mode(hub: Hub, query: str) -> None:
    error = error_of(post(hub, {"query": query}), 400, "BAD_USER_INPUT")
    assert "introspection is off" in error["message"]


def test_typename_is_answered_in_production_mode(hub: Hub) -> None:
    response = post(hub, {"query": "{ __typename registryPersons { __typename totalCount } }"})
    assert response.status_code == 200
    assert response.json()["data"] == {
        "__typename": "Query",
        "registryPersons": {"__typename": "RegistryPersonConnection", "totalCount": 3},
    }


def test_introspection_is_answered_where_it_is_turned_on(demo_like: Hub) -> None:
    response = post(demo_like, {"query": '{ __type(name: "RegistryPerson") { fields { name } } }'})
    assert response.status_code == 200
    assert "idNumber" in {f["name"] for f in response.json()["data"]["__type"]["fields"]}


# Each names something the schema nearly has: a field, an argument, a type, an enum value and an
# input field, in the document or in its variables.
MISSPELT = {
    "field": ("{ registryPersons { totalCont } }", None),
    "argument": ("{ registryPersons(frist: 1) { totalCount } }", None),
    "type": ("query($f: RegistryPersonFiltr) { registryPersons(filter: $f) { totalCount } }", None),
    "enum_literal": ("{ registryPersons(orderBy: [NAME_AS]) { totalCount } }", None),
    "enum_variable": (
        "query($o: [RegistryPersonOrderBy!]) { registryPersons(orderBy: $o) { totalCount } }",
        {"o": ["NAME_AS"]},
    ),
    "input_field_variable": (BY_FILTER, {"f": {"incom": {"eq": "1"}}}),
    "input_field_literal": ('{ registryPersons(filter: {incom: {eq: "1"}}) { totalCount } }', None),
}


@pytest.mark.parametrize("kind", MISSPELT)
def test_errors_suggest_no_names_in_production_mode(hub: Hub, kind: str) -> None:
    query, variables = MISSPELT[kind]
    response = post(hub, {"query": query, "variables": variables})
    assert response.status_code == 400, response.text
    assert "Did you mean" not in response.text
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


@pytest.mark.parametrize("kind", ["field", "enum_variable", "input_field_variable"])
def test_errors_suggest_names_where_introspection_is_on(demo_like: Hub, kind: str) -> None:
    query, variables = MISSPELT[kind]
    response = post(demo_like, {"query": query, "variables": variables})
    assert response.status_code == 400
    assert "Did you mean" in response.text


# --- GraphiQL -----------------------------------------------------------------------------


def test_a_browser_gets_a_graphql_error_not_a_page_in_production_mode(hub: Hub) -> None:
    response = hub.client.get("/graphql", headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    error = error_of(response, 404, "BAD_USER_INPUT")
    assert "GraphiQL is off" in error["message"]
    assert hub.client.get("/graphiql/static/graphiql.min.js").status_code == 404


def test_a_browser_gets_graphiql_without_token_and_no_external_urls_where_it_is_on(demo_like: Hub) -> None:
    page = demo_like.client.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert "graphiql" in page.text.lower()
    assert "https://" not in page.text and "http://" not in page.text
    script = demo_like.client.get("/graphiql/static/graphiql.min.js")
    assert script.status_code == 200


# --- bounds from the settings -------------------------------------------------------------


def test_the_body_limit_follows_the_setting(hub_db: URL, small_catalog: Catalog) -> None:
    for small in serve_small_hub(hub_db, small_catalog, {"HUB_MAX_BODY_BYTES": "200"}):
        body = json.dumps({"query": COUNT, "pad": ""})
        at_limit = json.dumps({"query": COUNT, "pad": "x" * (200 - len(body))})
        assert len(at_limit) == 200
        assert post(small, json.loads(at_limit)).status_code == 200
        error = error_of(post(small, {"query": COUNT, "pad": "x" * 200}), 413, "LIMIT_EXCEEDED")
        assert "200 bytes" in error["message"]
        assert (error["extensions"]["limit"], error["extensions"]["max"]) == ("bodyBytes", 200)


def filter_of_depth(levels: int) -> dict[str, Any]:
    """A filter whose JSON nests `levels` deep as a variable's value (`and` lists of one)."""
    inner: dict[str, Any] = {"district": {"eq": "Chaoyang"}}  # 2 levels
    depth = 2
    while depth + 2 <= levels:
        inner, depth = {"and": [inner]}, depth + 2
    assert depth == levels
    return inner


def test_variables_at_their_bounds_pass_and_one_past_is_refused(hub_db: URL, small_catalog: Catalog) -> None:
    environ = {"HUB_MAX_VARIABLE_VALUES": "40", "HUB_MAX_VARIABLE_DEPTH": "6"}
    for small in serve_small_hub(hub_db, small_catalog, environ):
        # Depth: the filter object is level 1; 6 levels pass, 8 do not.
        response = post(small, {"query": BY_FILTER, "variables": {"f": filter_of_depth(6)}})
        assert response.json()["data"] == {"registryPersons": {"totalCount": 2}}
        error = error_of(
            post(small, {"query": BY_FILTER, "variables": {"f": filter_of_depth(8)}}), 400, "LIMIT_EXCEEDED"
        )
        assert (error["extensions"]["limit"], error["extensions"]["max"]) == ("variableDepth", 6)
        # Values: the filter's object, its field's object, the list and its items.
        names = ["Chaoyang"] * 37
        at_limit = {"f": {"district": {"in": names}}}  # 3 + 37 = 40 values
        assert post(small, {"query": BY_FILTER, "variables": at_limit}).json()["data"] == {
            "registryPersons": {"totalCount": 2}
        }
        over = {"f": {"district": {"in": [*names, "Haidian"]}}}
        error = error_of(post(small, {"query": BY_FILTER, "variables": over}), 400, "LIMIT_EXCEEDED")
        assert (error["extensions"]["limit"], error["extensions"]["max"]) == ("variableValues", 40)


# --- malformed input that used to reach a database or GraphQL ----------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"query": "{ registryPersons { totalCount } }\x00"},
        {"query": COUNT, "operationName": "A\x00"},
        {"documentId": "sha256:\x00"},
        {"query": BY_FILTER, "variables": {"f": {"name": {"eq": "a\x00b"}}}},
        {"query": BY_FILTER, "variables": {"f": {"name": {"in": ["a", "\x00"]}}}},
        {"query": BY_FILTER, "variables": {"f\x00": {}}},
        {"query": BY_FILTER, "variables": {"f": {"name\x00": {"eq": "a"}}}},
    ],
)
def test_a_nul_character_anywhere_in_a_request_is_refused(hub: Hub, body: dict[str, Any]) -> None:
    error = error_of(post(hub, body), 400, "BAD_USER_INPUT")
    assert "U+0000" in error["message"]


def test_a_nul_character_written_in_a_document_is_refused(hub: Hub) -> None:
    query = '{ registryPerson(key: "1\\u0000") { name } }'
    error = error_of(post(hub, {"query": query}), 400, "BAD_USER_INPUT")
    assert "U+0000" in error["message"]


def test_a_body_in_another_charset_is_refused(hub: Hub) -> None:
    response = post(hub, {"query": COUNT}, {"Content-Type": "application/json; charset=latin-1"})
    error_of(response, 415, "BAD_USER_INPUT")
    for charset in ("utf-8", "UTF-8", '"utf-8"'):
        ok = post(hub, {"query": COUNT}, {"Content-Type": f"application/json; charset={charset}"})
        assert ok.status_code == 200


def test_a_body_that_is_not_utf8_is_named_so(hub: Hub) -> None:
    response = hub.client.post(
        "/graphql",
        content=b'{"query": "{ registryPersons { totalCount } }", "x": "\xe9"}',
        headers={"Authorization": f"Bearer {hub.token}"},
    )
    assert error_of(response, 400, "BAD_USER_INPUT")["message"] == "the request body is not UTF-8"


@pytest.mark.parametrize("value", ["NaN", "-Infinity", "sNaN", "1e999999999", "-1e-999999999"])
def test_a_decimal_no_database_can_compare_is_bad_input(hub: Hub, value: str) -> None:
    response = post(hub, {"query": BY_FILTER, "variables": {"f": {"income": {"gt": value}}}})
    assert response.status_code in (200, 400), response.text
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT", error
    assert response.json()["data"] in (None, {"registryPersons": None})


@pytest.mark.parametrize("value", ["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+14:00"])
def test_a_date_time_past_year_9999_or_before_year_1_in_utc_is_bad_input(hub: Hub, value: str) -> None:
    response = post(hub, {"query": BY_FILTER, "variables": {"f": {"registeredAt": {"lt": value}}}})
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT", error
    assert "year 1 to 9999" in error["message"]


def test_date_times_and_decimals_at_the_edges_are_compared(hub: Hub) -> None:
    for condition in (
        {"registeredAt": {"lt": "9999-12-30T00:00:00+08:00"}},
        {"income": {"lt": "9.9e37"}},
        {"income": {"gt": "-1e-38"}},
    ):
        response = post(hub, {"query": BY_FILTER, "variables": {"f": condition}})
        assert "errors" not in response.json(), response.text
        assert response.json()["data"]["registryPersons"]["totalCount"] >= 2


# --- the media type -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("accept", "media"),
    [
        (None, "application/json"),
        ("*/*", "application/json"),
        ("application/json", "application/json"),
        ("application/graphql-response+json", "application/graphql-response+json"),
        ("application/graphql-response+json, application/json", "application/graphql-response+json"),
        ("application/json, application/graphql-response+json", "application/json"),
        ("application/json;q=0.5, application/graphql-response+json", "application/graphql-response+json"),
        ("application/graphql-response+json;q=0, application/json", "application/json"),
        ("text/html", "application/json"),
    ],
)
def test_the_answer_has_the_media_type_the_accept_header_prefers(hub: Hub, accept: str | None, media: str) -> None:
    headers = {"Accept": accept} if accept else {}
    for body in ({"query": COUNT}, {"query": "{ nope }"}):
        response = post(hub, body, headers)
        assert response.headers["content-type"] == media
        assert "data" in response.json()


# --- a fault of the hub's own -------------------------------------------------------------


def test_a_fault_of_the_hub_is_a_graphql_shaped_500_without_detail(hub: Hub, monkeypatch: pytest.MonkeyPatch) -> None:
    import hub.app as app_module

    async def broken(*_: Any) -> None:
        raise RuntimeError("/srv/hub/secret.py: SELECT * FROM keys")

    monkeypatch.setattr(app_module, "_document", broken)

    async def send() -> httpx.Response:
        # httpx's ASGI transport, told to answer as a server would rather than raise in the test.
        transport = httpx.ASGITransport(app=hub.client.app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://hub") as client:
            return await client.post(
                "/graphql", json={"query": COUNT}, headers={"Authorization": f"Bearer {hub.token}"}
            )

    assert hub.client.portal is not None
    response = hub.client.portal.call(send)
    error = error_of(response, 500, "INTERNAL")
    assert "SELECT" not in response.text and "RuntimeError" not in response.text
    assert error["message"] == "the hub could not complete this request; it has been logged"
