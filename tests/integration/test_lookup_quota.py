"""Lookup quotas against the existence oracle of masked identifiers (issue 11, finding 2).

The health app reads another department's person with `idNumber` masked, but may look a person
up by it: each by-key read or `eq` filter with a guessed number answers whether it exists. Every
way of supplying such a guess is counted, once per distinct value and hour, per caller, in the
hub database; past the caller's quota the whole request is refused before any SQL, with 429,
`Retry-After` and LIMIT_EXCEEDED. Values on fields the caller reads plain, and joins the hub
makes from rows it read, count nothing.

The demo's department databases are shared with the session; each hub here has a hub database
of its own, so counts never leak between tests."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL
from starlette.testclient import TestClient

from hub.app import create_app
from hub.config import load_settings
from hub.db.engine import hub_engine, sessions
from hub.demo.callers import ensure_callers
from hub.demo.workspace import Workspace, share_keys
from hub.migrate import upgrade
from hub.quota.counter import WINDOW_SECONDS
from hub.services import Services, build_services
from hub.trusted import register_document
from tests.conftest import refusals_in_trail
from tests.integration.policy_fixtures import fresh_hub_database
from tests.servers import fresh_database

HEALTH, PURPOSE = "health-app", "health_care"
BY_KEY = "query($key: ID!) { populationPerson(key: $key) { gender } }"
COUNT_BY_ID = "query($id: String!) { populationPersons(filter: {idNumber: {eq: $id}}) { totalCount } }"

_serial = itertools.count(1)


def guesses(count: int) -> list[str]:
    """`count` ID numbers never supplied before in this session: each is a new guess."""
    return [f"330102{next(_serial):08d}123X" for _ in range(count)]


def mobile() -> str:
    """A mobile number never supplied before in this session."""
    return f"139{next(_serial):08d}"


def by_keys(*keys: str, field: str = "populationPerson", selection: str = "gender") -> str:
    """One by-key read per key, each under its own alias, in one document."""
    reads = " ".join(f'a{i}: {field}(key: "{key}") {{ {selection} }}' for i, key in enumerate(keys))
    return "{ " + reads + " }"


def total(field: str, condition: str) -> str:
    """The count of `field`'s rows under the filter `condition` (GraphQL input syntax)."""
    return "{ " + field + "(filter: " + condition + ") { totalCount } }"


def hub_settings(workspace: Workspace, url: URL, quotas: dict[str, int], concurrency: bool = True) -> Services:
    asyncio.run(share_keys(workspace, url))
    settings = load_settings(
        {},
        concurrency_limit_enabled=concurrency,
        database_url=url.render_as_string(hide_password=False),
        manifests_dir=workspace.manifests,
        master_key_file=workspace.master_key_file,
        lookup_quotas=quotas,
    )
    return build_services(settings)


@dataclass
class QuotaHub:
    client: TestClient
    services: Services
    tokens: dict[str, str]

    def post(self, body: dict[str, Any], caller: str = HEALTH, purpose: str | None = PURPOSE) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.tokens[caller]}"}
        if purpose:
            headers["X-Hub-Purpose"] = purpose
        return self.client.post("/graphql", json=body, headers=headers)

    def query(self, query: str, variables: dict[str, Any] | None = None, **who: Any) -> httpx.Response:
        return self.post({"query": query, "variables": variables or {}}, **who)

    def used(self, caller: str = HEALTH) -> int:
        """The caller's count in the current window, as the hub database holds it."""

        async def read() -> int:
            engine = hub_engine(self.services.settings.database_url)
            try:
                async with engine.connect() as connection:
                    found = await connection.scalar(
                        sa.text("SELECT count FROM hub_lookup_window WHERE principal = :p AND hour = :h"),
                        {"p": caller, "h": int(self.services.quota.clock() // WINDOW_SECONDS)},
                    )
                    return int(found or 0)
            finally:
                await engine.dispose()

        return asyncio.run(read())


def serve(workspace: Workspace, folder: Path, quotas: dict[str, int]) -> Iterator[QuotaHub]:
    url, tokens = fresh_hub_database(folder)
    services = hub_settings(workspace, url, quotas)
    with TestClient(create_app(services)) as client:
        yield QuotaHub(client, services, tokens)


@pytest.fixture(scope="module")
def roomy(demo_workspace: Workspace, tmp_path_factory: pytest.TempPathFactory) -> Iterator[QuotaHub]:
    """A hub whose quota no test here reaches: its tests read how much each request counts."""
    yield from serve(demo_workspace, tmp_path_factory.mktemp("roomy"), {"department_app": 100_000})


@pytest.fixture
def tight(demo_workspace: Workspace, tmp_path: Path) -> Iterator[QuotaHub]:
    """A hub where department apps may supply 5 identifier values an hour."""
    yield from serve(demo_workspace, tmp_path, {"department_app": 5})


def counted(hub: QuotaHub, query: str, variables: dict[str, Any] | None = None, **who: Any) -> int:
    before = hub.used(who.get("caller", HEALTH))
    response = hub.query(query, variables, **who)
    assert response.status_code in (200, 400), response.text
    return hub.used(who.get("caller", HEALTH)) - before


def real_ids(hub: QuotaHub, count: int) -> list[str]:
    """ID numbers of registered persons, as civil affairs reads them (plain, under its grant)."""
    body = hub.query(
        f"{{ populationPersons(first: {count}) {{ nodes {{ idNumber }} }} }}",
        caller="civil-affairs-app",
        purpose="social_assistance",
    ).json()
    return [n["idNumber"] for n in body["data"]["populationPersons"]["nodes"]]


# Every way the health app can put a guessed ID number (or mobile) to the hub, with the number
# of distinct values each supplies. Each fills its values in from `guesses`.
PATHS: dict[str, tuple[str, int]] = {
    "by key, literal": ('{{ populationPerson(key: "{0}") {{ gender }} }}', 1),
    "by key, variable (direct plan)": (BY_KEY, 1),
    "by key, 30 aliases": (
        "{{ " + " ".join(f'a{i}: populationPerson(key: "{{{i}}}") {{{{ gender }}}}' for i in range(30)) + " }}",
        30,
    ),
    "by key, in a fragment": ('{{ ...F }} fragment F on Query {{ populationPerson(key: "{0}") {{ gender }} }}', 1),
    "eq filter, totalCount": ('{{ populationPersons(filter: {{idNumber: {{eq: "{0}"}}}}) {{ totalCount }} }}', 1),
    "eq filter, variable": (COUNT_BY_ID, 1),
    "whole filter in a variable": (
        "query($f: PopulationPersonFilter) { populationPersons(filter: $f) { nodes { gender } } }",
        2,
    ),
    "eq under and": (
        '{{ populationPersons(filter: {{and: [{{idNumber: {{eq: "{0}"}}}}, {{idNumber: {{eq: "{1}"}}}}]}}) '
        "{{ totalCount }} }}",
        2,
    ),
    "eq under or and not": (
        '{{ populationPersons(filter: {{or: [{{idNumber: {{eq: "{0}"}}}}, {{not: {{idNumber: {{ne: "{1}"}}}}}}]}}) '
        "{{ totalCount }} }}",
        2,
    ),
    "eq filter, aggregate count": (
        '{{ populationPersonsAggregate(filter: {{idNumber: {{eq: "{0}"}}}}) {{ count }} }}',
        1,
    ),
    "in filter": ('{{ populationPersons(filter: {{idNumber: {{in: ["{0}", "{1}", "{2}"]}}}}) {{ totalCount }} }}', 3),
    "mobile eq filter": ('{{ populationPersons(filter: {{mobile: {{eq: "{0}"}}}}) {{ totalCount }} }}', 1),
    "another department keyed by the ID": ('{{ humanResourcesPensionAccount(key: "{0}") {{ scheme }} }}', 1),
    "inside a relation filter": (
        '{{ hotlineRequests(filter: {{civilAffairsDeliveries: {{some: {{recipientIdNumber: {{eq: "{0}"}}}}}}}}) '
        "{{ totalCount }} }}",
        1,
    ),
    "inside an aggregate's relation filter": (
        '{{ hotlineRequestsAggregate(filter: {{civilAffairsDeliveries: {{some: {{recipientIdNumber: {{eq: "{0}"}}}}}}}}) '
        "{{ count }} }}",
        1,
    ),
    "a relation list's filter": (
        '{{ hotlineRequests(first: 5) {{ nodes {{ civilAffairsDeliveries(filter: {{recipientIdNumber: {{eq: "{0}"}}}}) '
        "{{ deliveryId }} }} }} }}",
        1,
    ),
    "inside a nested relation filter (none)": (
        "{{ financeBudgetLines(filter: {{expenditures: {{some: {{civilAffairsDeliveries: "
        '{{none: {{recipientIdNumber: {{eq: "{0}"}}}}}}}}}}}}) {{ totalCount }} }}',
        1,
    ),
    "another department's join column": (
        '{{ educationStudents(filter: {{idNumber: {{eq: "{0}"}}}}) {{ totalCount nodes {{ person {{ gender }} }} }} }}',
        1,
    ),
}


def _request(name: str) -> tuple[str, dict[str, Any], int]:
    template, size = PATHS[name]
    values = [mobile()] if name.startswith("mobile") else guesses(size)
    if name == "by key, variable (direct plan)":
        return template, {"key": values[0]}, size
    if name == "eq filter, variable":
        return template, {"id": values[0]}, size
    if name == "whole filter in a variable":
        return template, {"f": {"and": [{"idNumber": {"eq": values[0]}}, {"mobile": {"eq": mobile()}}]}}, size
    return template.format(*values), {}, size


@pytest.mark.parametrize("path", sorted(PATHS))
def test_every_way_of_supplying_a_masked_identifier_is_counted(roomy: QuotaHub, path: str) -> None:
    query, variables, size = _request(path)
    assert counted(roomy, query, variables) == size


def test_a_trusted_document_is_counted_like_free_text(roomy: QuotaHub) -> None:
    async def register() -> str:
        engine = hub_engine(roomy.services.settings.database_url)
        try:
            async with sessions(engine)() as session, session.begin():
                return await register_document(session, BY_KEY, name="person-by-key")
        finally:
            await engine.dispose()

    document_id = asyncio.run(register())
    before = roomy.used()
    for key in guesses(3):
        assert roomy.post({"documentId": document_id, "variables": {"key": key}}).status_code == 200
    assert roomy.used() - before == 3


def test_a_get_request_is_counted_like_a_post(roomy: QuotaHub) -> None:
    (guess,) = guesses(1)
    before = roomy.used()
    headers = {"Authorization": f"Bearer {roomy.tokens[HEALTH]}", "X-Hub-Purpose": PURPOSE}
    params = {"query": BY_KEY, "variables": json.dumps({"key": guess})}
    assert roomy.client.get("/graphql", params=params, headers=headers).status_code == 200
    assert roomy.used() - before == 1


def test_a_long_in_list_counts_each_value(roomy: QuotaHub) -> None:
    values = guesses(2500)
    listed = ", ".join(f'"{v}"' for v in values)
    assert counted(roomy, total("populationPersons", f"{{idNumber: {{in: [{listed}]}}}}")) == 2500


def test_a_guess_repeated_in_any_form_counts_once(roomy: QuotaHub) -> None:
    (guess,) = guesses(1)
    first = counted(roomy, BY_KEY, {"key": guess})
    again = [
        counted(roomy, BY_KEY, {"key": guess}),
        counted(roomy, BY_KEY, {"key": guess.lower()}),  # the check character x is X
        counted(roomy, COUNT_BY_ID, {"id": f" {guess} "}),
        counted(roomy, by_keys(guess, field="humanResourcesPensionAccount", selection="scheme")),
        counted(roomy, by_keys(*[guess] * 5)),
    ]
    assert (first, again) == (1, [0, 0, 0, 0, 0])


def test_a_request_repeating_counted_values_still_counts_the_new_one_it_brings(roomy: QuotaHub) -> None:
    old, new = guesses(2)
    assert counted(roomy, BY_KEY, {"key": old}) == 1
    # Requests whose values are all counted already are settled early; one new value among
    # them must still be counted.
    assert counted(roomy, by_keys(old, new)) == 1
    assert counted(roomy, by_keys(new, old)) == 0


def test_a_new_value_among_counted_ones_in_variables_is_counted(roomy: QuotaHub) -> None:
    old, new = guesses(2)
    # By-key reads through `ID!` variables are checked straight from the variables: every one
    # of them, not only the first.
    pair = "query($a: ID!, $b: ID!) { a: populationPerson(key: $a) { gender } b: populationPerson(key: $b) { gender } }"
    assert counted(roomy, BY_KEY, {"key": old}) == 1
    assert counted(roomy, pair, {"a": old, "b": old.lower()}) == 0
    assert counted(roomy, pair, {"a": old, "b": new}) == 1
    assert counted(roomy, pair, {"a": new, "b": old}) == 0


def test_a_value_given_on_a_plain_field_counts_when_given_again_on_a_masked_one(roomy: QuotaHub) -> None:
    (guess,) = guesses(1)
    # Health reads its own visits' patient numbers plain: not counted, so not settled early
    # when the same caller tries the value on the registry's masked ID number.
    assert counted(roomy, total("healthVisits", f'{{patientIdNumber: {{eq: "{guess}"}}}}')) == 0
    assert counted(roomy, BY_KEY, {"key": guess}) == 1


def test_values_on_fields_the_caller_reads_plain_are_not_counted(roomy: QuotaHub) -> None:
    (guess,) = guesses(1)
    # Health reads its own visits' patient numbers plain; civil affairs, under its grant, persons.
    assert counted(roomy, total("healthVisits", f'{{patientIdNumber: {{eq: "{guess}"}}}}')) == 0
    assert counted(roomy, BY_KEY, {"key": guess}, caller="civil-affairs-app", purpose="social_assistance") == 0
    assert counted(roomy, '{ populationPersons(filter: {districtCode: {eq: "330102"}}, first: 3) { totalCount } }') == 0


def test_values_on_fields_the_caller_cannot_search_are_refused_not_counted(roomy: QuotaHub) -> None:
    # Names are masked to the health app without a lookup right: the filter is refused before
    # any SQL, so the guess is answered by nothing and costs nothing.
    before = roomy.used()
    body = roomy.query(total("populationPersons", '{name: {eq: "王小明"}}')).json()
    assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"]
    assert roomy.used() == before


def test_joins_over_rows_the_hub_read_are_not_counted(roomy: QuotaHub) -> None:
    query = "{ healthVisits(first: 50) { nodes { visitId patient { gender pensionAccount { scheme } } } } }"
    response = roomy.query(query)
    assert response.status_code == 200 and "errors" not in response.json(), response.text
    assert counted(roomy, query) == 0


def test_past_the_quota_a_request_is_refused_whole_with_429_and_no_sql(tight: QuotaHub) -> None:
    for key in guesses(4):
        assert tight.query(BY_KEY, {"key": key}).status_code == 200
    statements: list[str] = []

    def record(*args: Any) -> None:
        statements.append(str(args[2]))

    engines = [c.engine.sync_engine for c in tight.services.connectors.values()]  # type: ignore[attr-defined]
    for engine in engines:
        event.listen(engine, "before_cursor_execute", record)
    try:
        two = guesses(2)
        listed = total("populationPersons", f'{{idNumber: {{in: ["{two[0]}", "{two[1]}"]}}}}')
        refused = [tight.query(by_keys(*two)), tight.query(listed)]
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", record)

    for response in refused:
        assert response.status_code == 429
        assert 1 <= int(response.headers["Retry-After"]) <= WINDOW_SECONDS
        body = response.json()
        assert body["data"] is None
        (error,) = body["errors"]
        extensions = error["extensions"]
        assert extensions["code"] == "LIMIT_EXCEEDED"
        assert extensions["limit"] == 5 and extensions["used"] == 4
        assert set(extensions["window"]) == {"start", "end"}
        assert two[0] not in response.text
    assert statements == []
    # Refused requests counted nothing: the last unit of the quota is still there.
    assert tight.used() == 4
    assert tight.query(COUNT_BY_ID, {"id": two[0]}).status_code == 200
    assert tight.query(BY_KEY, {"key": two[0]}).status_code == 200  # a repeat costs nothing
    assert tight.query(BY_KEY, {"key": two[1]}).status_code == 429


def test_a_refusal_is_logged_as_an_alert_without_the_values(tight: QuotaHub, caplog: pytest.LogCaptureFixture) -> None:
    values = guesses(6)
    query = by_keys(*values)
    with caplog.at_level(logging.WARNING, logger="hub.alert"):
        assert tight.query(query).status_code == 429
    (alert,) = [r for r in caplog.records if r.name == "hub.alert"]
    assert HEALTH in alert.getMessage() and "6 new" in alert.getMessage()
    assert not any(v in alert.getMessage() for v in values)


def test_a_refusal_is_in_the_trail_as_the_refused_requests_event_naming_the_quota(tight: QuotaHub) -> None:
    values = guesses(6)
    refused = tight.query(by_keys(*values))
    assert refused.status_code == 429
    assert refused.json()["errors"][0]["extensions"]["scope"] == "lookup_quota"
    events = refusals_in_trail(tight.services.settings.database_url)
    assert events[-1] == (HEALTH, 429, "LIMIT_EXCEEDED", "lookup_quota")
    assert all(limit is None for *_, limit in events[:-1])


def test_the_quota_is_per_caller(tight: QuotaHub) -> None:
    values = guesses(5)
    for key in values:
        assert tight.query(BY_KEY, {"key": key}).status_code == 200
    assert tight.query(BY_KEY, {"key": guesses(1)[0]}).status_code == 429
    # Another department app has its own quota, even for the same values.
    for key in values:
        assert tight.query(BY_KEY, {"key": key}, caller="human-resources-app", purpose=None).status_code == 200
    assert tight.used("human-resources-app") == 5


def test_the_window_resets_and_ended_windows_are_purged(tight: QuotaHub) -> None:
    quota = tight.services.quota
    hour = int(quota.clock() // WINDOW_SECONDS)
    quota.clock = lambda: hour * WINDOW_SECONDS + WINDOW_SECONDS - 10.0
    for key in guesses(5):
        assert tight.query(BY_KEY, {"key": key}).status_code == 200
    refused = tight.query(BY_KEY, {"key": guesses(1)[0]})
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) == 10

    quota.clock = lambda: (hour + 1) * WINDOW_SECONDS + 1.0
    assert tight.query(BY_KEY, {"key": guesses(1)[0]}).status_code == 200
    assert tight.used() == 1

    async def hours() -> set[int]:
        engine = hub_engine(tight.services.settings.database_url)
        try:
            async with engine.connect() as connection:
                rows = await connection.execute(
                    sa.text("SELECT hour FROM hub_lookup_window UNION SELECT hour FROM hub_lookup_seen")
                )
                return {int(r[0]) for r in rows}
        finally:
            await engine.dispose()

    assert asyncio.run(hours()) == {hour + 1}


def test_real_persons_found_by_key_count_like_any_guess(tight: QuotaHub) -> None:
    found = real_ids(tight, 5)
    for key in found:
        body = tight.query(BY_KEY, {"key": key}).json()
        assert body["data"]["populationPerson"] is not None
    assert tight.query(BY_KEY, {"key": guesses(1)[0]}).status_code == 429


# PostgreSQL: two instances of the hub on one hub database share each caller's count, and
# concurrent requests across them never pass the quota together.

QUOTA = 10
RACERS = 24


@pytest.fixture
def postgres_hub_database(demo_workspace: Workspace, tmp_path: Path) -> tuple[URL, dict[str, str]]:
    url = fresh_database("postgresql", "hub_it_quota")
    upgrade(url)

    async def register() -> dict[str, str]:
        engine = hub_engine(url)
        try:
            return await ensure_callers(sessions(engine), tmp_path / "tokens.json")
        finally:
            await engine.dispose()

    return url, asyncio.run(register())


async def race(first: Services, second: Services, token: str) -> tuple[list[int], list[int]]:
    """Three values through the first instance, the same three again through the second, then
    RACERS requests with a new value each, alternating between the two, all at once."""
    apps = [create_app(first), create_app(second)]
    headers = {"Authorization": f"Bearer {token}", "X-Hub-Purpose": PURPOSE}
    async with apps[0].router.lifespan_context(apps[0]), apps[1].router.lifespan_context(apps[1]):
        clients = [
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://hub", timeout=60) for app in apps
        ]
        try:

            async def ask(client: httpx.AsyncClient, key: str) -> int:
                response = await client.post(
                    "/graphql", json={"query": BY_KEY, "variables": {"key": key}}, headers=headers
                )
                return response.status_code

            shared = guesses(3)
            warm = [await ask(clients[0], k) for k in shared] + [await ask(clients[1], k) for k in shared]
            racing = await asyncio.gather(*(ask(clients[i % 2], k) for i, k in enumerate(guesses(RACERS))))
            return warm, list(racing)
        finally:
            for client in clients:
                await client.aclose()


def test_two_instances_share_counts_and_racing_requests_never_pass_the_quota(
    demo_workspace: Workspace, postgres_hub_database: tuple[URL, dict[str, str]]
) -> None:
    url, tokens = postgres_hub_database
    first = hub_settings(demo_workspace, url, {"department_app": QUOTA})
    second = hub_settings(demo_workspace, url, {"department_app": QUOTA})

    warm, racing = asyncio.run(race(first, second, tokens[HEALTH]))

    assert warm == [200] * 6
    # Three counted once across both instances, so exactly seven of the racers fit.
    assert sorted(racing) == [200] * (QUOTA - 3) + [429] * (RACERS - QUOTA + 3)

    async def total() -> int:
        engine = hub_engine(url)
        try:
            async with engine.connect() as connection:
                count = await connection.scalar(sa.text("SELECT sum(count) FROM hub_lookup_window"))
                seen = await connection.scalar(sa.text("SELECT count(*) FROM hub_lookup_seen"))
                assert count == seen
                return int(count or 0)
        finally:
            await engine.dispose()

    assert asyncio.run(total()) == QUOTA


async def burst(instances: list[Services], token: str, keys: list[str]) -> list[int]:
    """A request per key, each a value new to the window, all at once, spread over the instances
    (as when an hour begins and every caller's values are new again)."""
    apps = [create_app(s) for s in instances]
    headers = {"Authorization": f"Bearer {token}", "X-Hub-Purpose": PURPOSE}
    async with contextlib.AsyncExitStack() as stack:
        clients = []
        for app in apps:
            await stack.enter_async_context(app.router.lifespan_context(app))
            client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://hub", timeout=60)
            clients.append(await stack.enter_async_context(client))

        async def ask(client: httpx.AsyncClient, key: str) -> int:
            response = await client.post("/graphql", json={"query": BY_KEY, "variables": {"key": key}}, headers=headers)
            return response.status_code

        return list(await asyncio.gather(*(ask(clients[i % len(clients)], k) for i, k in enumerate(keys))))


def test_a_burst_of_new_values_on_a_sqlite_hub_database_is_counted_without_errors(
    demo_workspace: Workspace, tmp_path: Path
) -> None:
    # Two instances on one SQLite file: every request writes its new value, and none may fail
    # because another holds the file's write lock.
    url, tokens = fresh_hub_database(tmp_path)
    # The per-caller concurrency limit would refuse most of the burst first (429): off here.
    instances = [hub_settings(demo_workspace, url, {"department_app": 100_000}, concurrency=False) for _ in range(2)]

    statuses = asyncio.run(burst(instances, tokens[HEALTH], guesses(96)))

    assert statuses == [200] * 96
