"""Global references: plain at the key's level, else sealed, bound to the caller, never holding
an ID number, refused when forged, altered or another caller's."""

from __future__ import annotations

from typing import Any

import pytest

from hub.access.plan import AccessPlan, Decision, Verdict
from hub.auth.principal import Principal
from hub.catalog import Catalog
from hub.demo.catalog import demo_catalog
from hub.errors import BadUserInput, Forbidden
from hub.lineage.refs import MAX_REF_LENGTH, References, from_stored, stored_key

ID_NUMBER = "330106198806144246"
BLIND_INDEX = bytes(range(32))


def plan_for(catalog: Catalog, subject: str, decision: Decision) -> AccessPlan:
    principal = Principal(subject, "health", ("department_app",))
    plan = AccessPlan(principal, None, "1")
    for entity in catalog:
        for name in entity.fields:
            plan.fields[(entity.id, name)] = Verdict(decision)
    return plan


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return demo_catalog()


def test_a_plain_key_gives_a_plain_reference_that_parses_back(catalog: Catalog) -> None:
    refs = References()
    plan = plan_for(catalog, "a", Decision.PLAIN)
    line = catalog.entity("finance.BudgetLine")
    text = refs.of_row(plan, line, {}, "BL2026-CA-01")
    assert text == "finance:BudgetLine:BL2026-CA-01"
    parsed = refs.parse(catalog, plan, text)
    assert parsed.entity is line and parsed.raw == "BL2026-CA-01"


def test_a_masked_persons_reference_is_sealed_and_holds_no_id_number_even_inside(catalog: Catalog) -> None:
    refs = References()
    plan = plan_for(catalog, "a", Decision.MASKED)
    person = catalog.entity("population.Person")
    sealed = refs.of_row(plan, person, {"idNumber": "330***************"}, BLIND_INDEX)
    assert sealed is not None and ":" not in sealed
    inside: Any = refs._sealer.open(sealed)  # the hub's own view, past the seal
    assert ID_NUMBER.encode() not in inside and b"330106" not in inside
    assert ID_NUMBER not in sealed
    assert refs.parse(catalog, plan, sealed).raw == BLIND_INDEX


def test_another_callers_sealed_reference_is_refused(catalog: Catalog) -> None:
    refs = References()
    person = catalog.entity("population.Person")
    sealed = refs.seal(plan_for(catalog, "a", Decision.MASKED), person, BLIND_INDEX)
    with pytest.raises(Forbidden):
        refs.parse(catalog, plan_for(catalog, "b", Decision.MASKED), sealed)


def test_a_forged_or_altered_reference_is_refused(catalog: Catalog) -> None:
    refs = References()
    plan = plan_for(catalog, "a", Decision.MASKED)
    sealed = refs.seal(plan, catalog.entity("population.Person"), BLIND_INDEX)
    other_hub = References().seal(plan, catalog.entity("population.Person"), BLIND_INDEX)
    altered = sealed[:-2] + ("AA" if not sealed.endswith("AA") else "BB")
    for text in (altered, "not-a-ref", other_hub):
        with pytest.raises(BadUserInput):
            refs.parse(catalog, plan, text)


def test_a_plain_reference_to_a_key_not_read_plain_is_refused(catalog: Catalog) -> None:
    with pytest.raises(Forbidden):
        References().parse(catalog, plan_for(catalog, "a", Decision.MASKED), f"population:Person:{ID_NUMBER}")


def test_references_are_bounded_and_name_known_entities(catalog: Catalog) -> None:
    plan = plan_for(catalog, "a", Decision.PLAIN)
    for text in ("x" * (MAX_REF_LENGTH + 1), "", "finance:Nothing:1", "Finance:BudgetLine:1", "finance:BudgetLine:"):
        with pytest.raises(BadUserInput):
            References().parse(catalog, plan, text)


def test_stored_keys_round_trip() -> None:
    for raw in (BLIND_INDEX, 42, "EX0001"):
        assert from_stored(stored_key(raw)) == raw
