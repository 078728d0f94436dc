"""/metrics: Prometheus text to the admin and monitoring roles, GraphQL-shaped refusals to
everyone else, and after a mixed run exactly the counts of that run."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import URL

from hub.catalog import Catalog
from hub.db.engine import hub_engine, sessions
from hub.trusted import register_document
from tests.unit.observe.conftest import ObservedHub, serve_observed_hub

COUNT = "query Count { registryPersons { totalCount } }"
PERSON = '{ registryPerson(key: "110105199001011234") { idNumber name district } }'
INCOMES = "{ registryPersons { nodes { idNumber income } } }"
CASES = "{ welfareCases { nodes { caseId } } }"
PROBE = '{ registryPerson(key: "330102200512120021") { district } }'


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the exposition, by name and sorted labels."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(found: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


def register(observed: ObservedHub, text: str) -> str:
    async def run() -> str:
        engine = hub_engine(observed.services.settings.database_url)
        try:
            async with sessions(engine)() as session, session.begin():
                return await register_document(session, text, name="count")
        finally:
            await engine.dispose()

    return asyncio.run(run())


def test_metrics_after_a_mixed_run_show_exactly_its_counts(observed: ObservedHub) -> None:
    document = register(observed, COUNT)
    statuses = [
        observed.query("app", PERSON).status_code,  # ok: 2 values plain, 1 masked
        observed.query("app", INCOMES).status_code,  # FORBIDDEN: 3 plain, 3 withheld
        observed.post("app", {"documentId": document}).status_code,
        observed.post("app", {"documentId": document}).status_code,
    ]
    observed.welfare.down = True
    statuses += [
        observed.query("app", CASES).status_code,  # the read fails; the breaker opens (1 failure)
        observed.query("app", CASES).status_code,  # refused by the open circuit
        observed.query(None, PERSON).status_code,  # no token
        observed.query("app", PERSON).status_code,  # the seventh of app's 6 a minute
        observed.query("prober", PROBE).status_code,  # a lookup past a quota of 0
    ]
    assert statuses == [200, 200, 200, 200, 200, 200, 401, 429, 429]

    page = observed.metrics()
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/plain; version=0.0.4")
    found = samples(page.text)

    requests = {
        (labels["document"], labels["outcome"], labels["code"]): count
        for (name, items), count in found.items()
        if name == "hub_requests_total"
        for labels in [dict(items)]
    }
    assert requests == {
        ("other", "ok", "none"): 1,
        ("other", "partial", "FORBIDDEN"): 1,
        (document, "ok", "none"): 2,
        ("other", "partial", "DEPARTMENT_UNAVAILABLE"): 2,
        ("other", "refused", "UNAUTHENTICATED"): 1,
        ("other", "refused", "LIMIT_EXCEEDED"): 2,
    }
    assert value(found, "hub_request_duration_seconds_count", document="other") == 7
    assert value(found, "hub_request_duration_seconds_count", document=document) == 2

    assert value(found, "hub_limit_refusals_total", limit="rate_caller") == 1
    assert value(found, "hub_limit_refusals_total", limit="rate_department") == 0
    assert value(found, "hub_limit_refusals_total", limit="lookup_quota") == 1

    assert value(found, "hub_access_values_total", level="plain") == 5
    assert value(found, "hub_access_values_total", level="masked") == 1
    assert value(found, "hub_access_values_total", level="withheld") == 3

    # Registry: a read each for PERSON and INCOMES, two for each run of the count document (a
    # page and its count); welfare: one read failed, one refused.
    assert value(found, "hub_department_statement_duration_seconds_count", department="registry") == 6
    assert value(found, "hub_department_statement_duration_seconds_count", department="welfare") == 0
    assert value(found, "hub_department_statement_errors_total", department="welfare", reason="unavailable") == 1
    assert value(found, "hub_department_statement_errors_total", department="welfare", reason="circuit_open") == 1
    assert value(found, "hub_department_statement_errors_total", department="registry", reason="unavailable") == 0
    assert value(found, "hub_department_circuit_state", department="welfare", state="open") == 1
    assert value(found, "hub_department_circuit_state", department="welfare", state="closed") == 0
    assert value(found, "hub_department_circuit_state", department="registry", state="closed") == 1

    # Free text: PERSON, INCOMES, CASES (then once from the cache) and PROBE compiled; the
    # trusted document looked up once, then known; plans made for PERSON, INCOMES, COUNT and
    # CASES, each repeat served from the cache.
    assert value(found, "hub_cache_lookups_total", cache="documents", result="miss") == 4
    assert value(found, "hub_cache_lookups_total", cache="documents", result="hit") == 1
    assert value(found, "hub_cache_lookups_total", cache="trusted_documents", result="miss") == 1
    assert value(found, "hub_cache_lookups_total", cache="trusted_documents", result="hit") == 1
    assert value(found, "hub_cache_lookups_total", cache="plans", result="miss") == 4
    assert value(found, "hub_cache_lookups_total", cache="plans", result="hit") == 2
    # One entry of decisions per caller (app, prober), and one per purpose the purpose hint
    # asked about once app's answers hid a field without a stated purpose.
    hinted = len(observed.services.purposes)
    assert value(found, "hub_cache_lookups_total", cache="decisions", result="miss") == 2 + hinted


def test_metrics_name_no_caller_and_no_operation(observed: ObservedHub) -> None:
    observed.query("app", "query MyVerySpecialName { registryPersons { totalCount } }")
    text = observed.metrics().text
    assert "MyVerySpecialName" not in text
    assert "app" not in {
        label for family in text_string_to_metric_families(text) for s in family.samples for label in s.labels.values()
    }


def test_metrics_are_refused_without_a_token(observed: ObservedHub) -> None:
    refused = observed.metrics(None)
    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"].startswith("Bearer")
    assert refused.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    wrong = observed.client.get("/metrics", headers={"Authorization": "Bearer not-a-token"})
    assert wrong.status_code == 401


def test_metrics_are_refused_to_a_caller_without_the_monitoring_or_admin_role(observed: ObservedHub) -> None:
    refused = observed.metrics("app")
    assert refused.status_code == 403
    body = refused.json()
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert "hub_requests" not in refused.text


def test_metrics_are_served_to_the_monitoring_and_admin_roles(observed: ObservedHub) -> None:
    for who in ("watcher", "admin"):
        page = observed.metrics(who)
        assert page.status_code == 200
        assert "# TYPE hub_requests_total counter" in page.text


def test_two_apps_in_one_process_keep_their_counts_apart(observed: ObservedHub) -> None:
    from hub.observe.metrics import Metrics

    other = Metrics()
    observed.query("app", PERSON)
    assert "hub_requests_total{" not in other.render()[0].decode()
    assert 'hub_requests_total{code="none",document="other",outcome="ok"} 1.0' in observed.metrics().text


@pytest.fixture
def slow_batches(hub_db: URL, small_catalog: Catalog) -> Iterator[ObservedHub]:
    yield from serve_observed_hub(hub_db, small_catalog, {"HUB_ACCESS_LOG_DELAY_MS": "10000"})


def test_a_scrape_counts_the_requests_not_yet_counted_in_a_batch(slow_batches: ObservedHub) -> None:
    for _ in range(3):
        slow_batches.query("app", PERSON)
    found = samples(slow_batches.metrics().text)
    assert value(found, "hub_requests_total", document="other", outcome="ok", code="none") == 3
    assert value(found, "hub_access_values_total", level="masked") == 3
