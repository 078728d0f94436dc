"""Global references: every entity type has a `ref`, plain where the caller reads the key plain,
else sealed, bound to the caller and free of the plain ID."""

from __future__ import annotations

import re

from tests.conftest import Hub

PERSON_REFS = "{ populationPersons(first: 3) { nodes { ref idNumber } } }"


def test_a_key_read_plain_gives_a_plain_reference(demo_hub: Hub) -> None:
    result = demo_hub.as_caller("auditor", "audit").query("{ financeBudgetLines(first: 2) { nodes { ref lineId } } }")
    for node in result["data"]["financeBudgetLines"]["nodes"]:
        assert node["ref"] == f"finance:BudgetLine:{node['lineId']}"


def test_a_masked_person_gets_a_sealed_reference_without_the_id_number(demo_hub: Hub) -> None:
    plain = demo_hub.as_caller("civil-affairs-app", "social_assistance").query(PERSON_REFS)
    ids = [n["idNumber"] for n in plain["data"]["populationPersons"]["nodes"]]
    assert all(n["ref"] == f"population:Person:{n['idNumber']}" for n in plain["data"]["populationPersons"]["nodes"])
    masked = demo_hub.as_caller("health-app").query(PERSON_REFS)
    for node, id_number in zip(masked["data"]["populationPersons"]["nodes"], ids, strict=True):
        assert "*" in node["idNumber"]
        assert ":" not in node["ref"] and id_number not in node["ref"] and id_number[:6] not in node["ref"]
        assert re.fullmatch(r"[A-Za-z0-9_-]+", node["ref"])


def test_a_sealed_reference_differs_per_caller_and_per_read(demo_hub: Hub) -> None:
    first = demo_hub.as_caller("health-app").query(PERSON_REFS)["data"]["populationPersons"]["nodes"][0]["ref"]
    again = demo_hub.as_caller("health-app").query(PERSON_REFS)["data"]["populationPersons"]["nodes"][0]["ref"]
    assert first != again  # a fresh nonce: equal tokens would tell a caller two records are one
