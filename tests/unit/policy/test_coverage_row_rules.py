"""Row rules without gaps: a role limited by row rules is limited on every entity about persons
it can read, and rules that follow a relation are checked as they are written."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import URL

from connectors.base import In, Or
from hub.access.plan import Decision
from hub.access.semijoin import within
from hub.auth.principal import Principal
from hub.cli import main
from hub.policy.coverage import about_persons, uncovered
from hub.policy.decisions import SnapshotPolicy
from hub.policy.snapshot import (
    Inheritance,
    RowRule,
    Rule,
    Snapshot,
    SnapshotError,
    load_purposes,
    load_seed,
    to_seed,
    validate,
)
from hub.policy.terms import load_terms
from tests.unit.policy.test_decisions_properties import CATALOG, CI, DEPARTMENTS, ROLES, grants, inheritances, rules

DEMO = Path(__file__).resolve().parents[3] / "hub" / "demo" / "manifests"
SEED = load_seed()
PURPOSES = load_purposes()
TERMS = load_terms(CATALOG)
PERSON_ENTITIES = sorted(about_persons(CATALOG))
OFFICE = Principal("district-office-app", "civil_affairs", ("district_office",), {"district": "330102"})


def without_rule(snapshot: Snapshot, role: str, entity: str) -> Snapshot:
    kept = tuple(r for r in snapshot.row_rules if not (r.role == role and r.entity == entity))
    assert len(kept) == len(snapshot.row_rules) - 1, f"the seed has no {role} rule on {entity}"
    return snapshot.model_copy(update={"row_rules": kept})


def denied(snapshot: Snapshot, role: str, entity: str, actions: tuple[str, ...] = ("read", "mask")) -> Snapshot:
    lines = tuple(Rule(role=role, domain="*", object=entity, action=a, effect="deny") for a in actions)  # type: ignore[arg-type]
    return snapshot.model_copy(update={"rules": (*snapshot.rules, *lines)})


def test_entities_about_persons_are_those_with_person_data_or_a_to_one_link_to_it() -> None:
    assert PERSON_ENTITIES == [
        "civil_affairs.AssistanceCase",
        "civil_affairs.ServiceDelivery",
        "education.ServiceDelivery",
        "education.Student",
        "education.StudentAid",
        "health.Visit",
        # No personal field of its own: it names one request, which names its caller.
        "hotline.Feedback",
        "hotline.Request",
        "human_resources.Employment",
        "human_resources.PensionAccount",
        "human_resources.ServiceDelivery",
        "population.Person",
    ]


def test_the_demo_policy_covers_every_entity_about_persons() -> None:
    assert uncovered(SEED, CATALOG) == {}
    validate(SEED, CATALOG, TERMS)
    ruled = {r.entity for r in SEED.row_rules if r.role == "district_office"}
    assert ruled == set(PERSON_ENTITIES)


@pytest.mark.parametrize("entity", PERSON_ENTITIES)
def test_a_policy_leaving_one_person_entity_without_a_row_rule_is_refused_naming_it(entity: str) -> None:
    with pytest.raises(SnapshotError) as refused:
        validate(without_rule(SEED, "district_office", entity), CATALOG, TERMS)
    message = str(refused.value)
    # Only the gap is named.
    assert message.split("role district_office has none on ")[1].split(" (")[0] == entity


@pytest.mark.parametrize("entity", PERSON_ENTITIES)
def test_an_explicit_deny_instead_of_the_row_rule_passes_and_withholds_every_field(entity: str) -> None:
    snapshot = denied(without_rule(SEED, "district_office", entity), "district_office", entity)
    validate(snapshot, CATALOG, TERMS)
    policy = SnapshotPolicy(snapshot, CATALOG)
    target = CATALOG.entity(entity)
    for purpose in (None, *PURPOSES):
        for item in target.fields.values():
            assert policy.field(OFFICE, purpose, target, item).decision is Decision.DENIED, item.name


def test_denying_read_alone_leaves_masked_values_readable_and_is_refused() -> None:
    snapshot = denied(
        without_rule(SEED, "district_office", "health.Visit"), "district_office", "health.Visit", ("read",)
    )
    with pytest.raises(SnapshotError, match=r"district_office has none on health\.Visit"):
        validate(snapshot, CATALOG, TERMS)


def test_a_role_inheriting_row_rules_must_cover_what_it_reads_beyond_them() -> None:
    # The parent reads persons only and is limited there; the child inherits that limit but
    # also reads every department's internal data as a department app. (No grants: a grant
    # releases to every role of its department, the parent's too.)
    snapshot = SEED.model_copy(
        update={
            "grants": (),
            "rules": (*SEED.rules, Rule(role="registrar", domain="*", object="population.Person", action="read")),
            "hierarchy": (
                *SEED.hierarchy,
                Inheritance(role="street_office", inherits="registrar"),
                Inheritance(role="street_office", inherits="department_app"),
            ),
            "row_rules": (
                *SEED.row_rules,
                RowRule(role="registrar", entity="population.Person", filter={"districtCode": {"eq": "x"}}),
            ),
        }
    )
    assert uncovered(snapshot, CATALOG) == {"street_office": [e for e in PERSON_ENTITIES if e != "population.Person"]}
    with pytest.raises(SnapshotError, match=r"role street_office has none on civil_affairs\.AssistanceCase"):
        validate(snapshot, CATALOG, TERMS)


def test_a_grant_counts_as_reading_for_coverage() -> None:
    # A role that reads nothing of health but whose department holds a grant on visits.
    rule = RowRule(role="clerk", entity="population.Person", filter={"districtCode": {"eq": "$principal.district"}})
    grant = SEED.grants[0].model_copy(update={"department": "civil_affairs", "entity": "health.Visit"})
    snapshot = Snapshot(row_rules=(rule,), grants=(grant,))
    assert uncovered(snapshot, CATALOG) == {"clerk": ["health.Visit"]}


# --- rules that follow a relation, as written -------------------------------------------------


def with_rule(entity: str, spec: dict[str, object]) -> Snapshot:
    rule = RowRule(role="district_office", entity=entity, filter=spec)
    kept = tuple(r for r in SEED.row_rules if r.entity != entity or r.role != "district_office")
    return SEED.model_copy(update={"row_rules": (*kept, rule)})


@pytest.mark.parametrize(
    ("entity", "spec", "says"),
    [
        ("health.Visit", {"patient": {"districtName": {"eq": "x"}}}, "districtName is not a field or relation"),
        ("health.Visit", {"doctor": {"districtCode": {"eq": "x"}}}, "doctor is not a field or relation"),
        ("health.Visit", {"or": [{"patient": {"districtCode": {"eq": "x"}}}]}, "may not stand under `or`"),
        ("health.Visit", {"not": {"patient": {"districtCode": {"eq": "x"}}}}, "may not stand under `not`"),
        ("health.Visit", {"patient": "330102"}, "a filter is a mapping"),
        (
            "hotline.Feedback",
            {"request": {"caller": {"household": {"districtCode": {"eq": "x"}}}}},
            "household is not a field or relation",
        ),
        (
            "hotline.Feedback",
            {"request": {"caller": {"district": {"name": {"eq": "x"}}}, "district": {"code": {"eq": "x"}}}},
            None,
        ),
        (
            "hotline.Feedback",
            {"request": {"caller": {"householdMembers": {"district": {"code": {"eq": "x"}}}}}},
            "at most 3 relations",
        ),
    ],
)
def test_row_rules_through_relations_are_checked_as_written(
    entity: str, spec: dict[str, object], says: str | None
) -> None:
    snapshot = with_rule(entity, spec)
    if says is None:
        validate(snapshot, CATALOG, TERMS)
        return
    with pytest.raises(SnapshotError) as refused:
        validate(snapshot, CATALOG, TERMS)
    assert says in str(refused.value)
    assert f"row rule of district_office on {entity}" in str(refused.value)


# --- coverage reads the model as the enforcer does ------------------------------------------


@st.composite
def policies(draw: st.DrawFn) -> Snapshot:
    limited = draw(st.sampled_from(ROLES))
    entity = draw(st.sampled_from(PERSON_ENTITIES))
    # Coverage reads only which entities a role's rules name, not their filters.
    rule = RowRule(role=limited, entity=entity, filter={})
    return Snapshot(
        rules=tuple(draw(st.lists(rules(ROLES), min_size=4, max_size=20))),
        hierarchy=tuple(draw(st.lists(inheritances(ROLES), max_size=4))),
        row_rules=(rule,),
        grants=tuple(draw(grants(f"g{i}", "civil_affairs")) for i in range(draw(st.integers(0, 2)))),
    )


# Each example asks the policy of every field for some hundreds of callers: fewer examples.
@settings(CI, max_examples=60)
@given(policies())
def test_coverage_names_exactly_the_entities_the_policy_releases_without_a_row_rule(snapshot: Snapshot) -> None:
    gaps = uncovered(snapshot, CATALOG)
    callers = (*CATALOG.departments, *DEPARTMENTS, "elsewhere")
    # Inside every grant's window, so that a grant's release is seen.
    moments = [g.valid_from for g in snapshot.grants] or [datetime(2027, 1, 1, tzinfo=UTC)]
    policies = [SnapshotPolicy(snapshot, CATALOG, clock=lambda now=now: now) for now in moments]  # type: ignore[misc]
    purposes = (None, *{g.purpose for g in snapshot.grants})
    (rule,) = snapshot.row_rules
    for role in ROLES:
        for entity_id in PERSON_ENTITIES:
            entity = CATALOG.entity(entity_id)
            released = False
            for department in callers:
                principal = Principal("caller", department, (role,))
                if rule.role not in policies[0].roles(principal) or rule.entity == entity_id:
                    continue  # not limited here, or limited on this entity
                released = released or any(
                    policy.field(principal, purpose, entity, item).decision is not Decision.DENIED
                    for policy in policies
                    for purpose in purposes
                    for item in entity.fields.values()
                )
            assert released == (entity_id in gaps.get(role, [])), f"{role} on {entity_id}: {gaps}"


def test_policy_import_leaving_a_gap_is_refused_naming_it(hub_db: URL, tmp_path: Path) -> None:
    env = {"HUB_DATABASE_URL": hub_db.render_as_string(), "HUB_MANIFESTS": str(DEMO)}
    policy = to_seed(without_rule(SEED, "district_office", "education.StudentAid"))
    (tmp_path / "gap.yaml").write_text(yaml.safe_dump(policy), encoding="utf-8")
    result = CliRunner().invoke(main, ["policy", "import", str(tmp_path / "gap.yaml"), "--reason", "r"], env=env)
    assert result.exit_code == 1
    assert "role district_office has none on education.StudentAid" in result.output
    assert "nothing was imported" in result.output


def test_a_key_set_larger_than_one_in_list_is_split_into_lists_of_at_most_5000_in_one_filter() -> None:
    keys = tuple(range(12_001))
    split = within("c", keys)
    assert isinstance(split, Or)
    assert [len(part.values) for part in split.items if isinstance(part, In)] == [5000, 5000, 2001]
    assert within("c", ()) == In("c", ())
