"""The demo serves /metrics on its main port to the platform admin's token: every department's
circuit and pool, and the demo's own requests; other callers are refused."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from hub.demo.workspace import DEPARTMENTS
from tests.conftest import Hub


def test_the_platform_admin_reads_the_demo_s_metrics(demo_hub: Hub) -> None:
    demo_hub.as_caller("civil-affairs-app", "social_assistance").query(
        "{ populationPersons(first: 2) { nodes { name } } }"
    )
    headers = {"Authorization": f"Bearer {demo_hub.tokens['platform-admin']}"}
    page = demo_hub.client.get("/metrics", headers=headers)
    assert page.status_code == 200
    samples = [s for family in text_string_to_metric_families(page.text) for s in family.samples]
    circuits = {s.labels["department"] for s in samples if s.name == "hub_department_circuit_state"}
    assert circuits == set(DEPARTMENTS)
    # The demo's departments are SQLite files behind pooled connectors.
    pools = {s.labels["department"]: s.value for s in samples if s.name == "hub_department_pool_size"}
    assert set(pools) == set(DEPARTMENTS) and all(size >= 1 for size in pools.values())
    answered = [s for s in samples if s.name == "hub_requests_total" and s.labels["outcome"] in ("ok", "partial")]
    assert sum(s.value for s in answered) >= 1


def test_the_demo_refuses_metrics_to_a_caller_without_the_role(demo_hub: Hub) -> None:
    for caller in ("public", "auditor", "civil-affairs-steward"):
        refused = demo_hub.client.get("/metrics", headers={"Authorization": f"Bearer {demo_hub.tokens[caller]}"})
        assert refused.status_code == 403
        assert refused.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
