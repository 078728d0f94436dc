"""The policy as a truth table: principals x fields x purposes x grant states, decided by the
Casbin-backed `SnapshotPolicy` and by an oracle written from the rules, with zero mismatches;
then the behaviours a department would check, one test each."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from hub.access.plan import Decision, Planner, Selection, Verdict
from hub.auth.principal import Principal
from hub.catalog import Catalog, EntityInfo, FieldInfo, load_catalog
from hub.catalog.manifest import NullifyMask, Tier
from hub.demo.callers import CALLERS
from hub.policy.decisions import SnapshotPolicy
from hub.policy.snapshot import Grant, Inheritance, Rule, Snapshot, load_purposes, load_seed
from tests import policy_oracle as oracle

MANIFESTS = Path(__file__).resolve().parents[3] / "hub" / "demo" / "manifests"
CATALOG = load_catalog(MANIFESTS)
SEED = load_seed()
PURPOSE_CODES = tuple(load_purposes())
PURPOSES: tuple[str | None, ...] = (None, *PURPOSE_CODES, "no_such_purpose")

DEMO = {c.name: Principal(c.name, c.department, c.roles, c.attributes) for c in CALLERS}
SYNTHETIC = (
    Principal("no-roles", "health", ()),
    # Owns the registry's persons and districts.
    Principal("population-app", "population", ("department_app",)),
    # Reads hotline requests by entity line; its second role inherits a deny on the caller's mobile
    # (in the rules-and-grants snapshot below).
    Principal("reviewer-in-district", "civil_affairs", ("hotline_reviewer", "district_office"), {"district": "330102"}),
    Principal("reviewer", "civil_affairs", ("hotline_reviewer",)),
    # Inherits the auditor's lines, but only in health (a hierarchy line for one department).
    Principal("health-reviewer", "health", ("hotline_reviewer",)),
    # Two roles, one of them reading its own department's data through an inherited role.
    Principal("public-and-steward", "hotline", ("public", "data_steward")),
)
PRINCIPALS = (*DEMO.values(), *SYNTHETIC)


def _fields(catalog: Catalog) -> list[tuple[EntityInfo, FieldInfo]]:
    pairs = [(entity, item) for entity in catalog for item in entity.fields.values()]
    # Core fields with a mask: the demo has none, and core data must never be masked.
    visit = catalog.entity("health.Visit")
    person = catalog.entity("population.Person")
    nullify = NullifyMask(kind="nullify")
    pairs.append((visit, dataclasses.replace(visit.fields["diagnosis"], mask=nullify)))
    pairs.append((person, dataclasses.replace(person.fields["address"], tier=Tier.L4)))
    return pairs


FIELDS = _fields(CATALOG)
RELATIONS = [relation for entity in CATALOG for relation in entity.relations.values()]

SEED_START = min(g.valid_from for g in SEED.grants)
SEED_END = max(g.valid_until for g in SEED.grants)
INSIDE = SEED_START + timedelta(days=30)
LATER = datetime(2029, 6, 1, tzinfo=UTC)
AFTER = SEED_END + timedelta(days=1)


def grant(
    gid: str, department: str, entity: str, purpose: str, start: datetime, end: datetime, field: str | None = None
) -> Grant:
    return Grant(
        id=gid,
        department=department,
        entity=entity,
        field=field,
        purpose=purpose,
        valid_from=start,
        valid_until=end,
        granted_by="platform-admin",
        reason="truth table",
    )


EXTRA_GRANTS = (
    # A field grant on core (L4) data, and an entity grant that covers L3 but not L4.
    grant("l4-field", "civil_affairs", "health.Visit", "social_assistance", SEED_START, SEED_END, field="diagnosis"),
    grant("visit-entity", "audit", "health.Visit", "audit", SEED_START, SEED_END),
    # A field grant on internal (L2) data to the public caller's department.
    grant("public-gender", "public", "population.Person", "statistics", SEED_START, SEED_END, field="gender"),
    # Free text that no line lets other departments see, released by its own grant.
    grant("content", "audit", "hotline.Request", "audit", SEED_START, SEED_END, field="content"),
    grant(
        "expired",
        "human_resources",
        "population.Person",
        "employment_services",
        datetime(2020, 1, 1, tzinfo=UTC),
        datetime(2021, 1, 1, tzinfo=UTC),
    ),
    grant("other-purpose", "health", "hotline.Request", "hotline_service", SEED_START, SEED_END),
    grant(
        "not-yet",
        "audit",
        "population.Person",
        "audit",
        datetime(2029, 1, 1, tzinfo=UTC),
        datetime(2031, 1, 1, tzinfo=UTC),
    ),
)
EXTRA_RULES = (
    Rule(role="hotline_reviewer", domain="*", object="hotline.Request", action="read", effect="allow"),
    Rule(role="hotline_reviewer", domain="hotline", object="hotline.Request", action="follow", effect="allow"),
    Rule(role="department_app", domain="hotline", object="hotline.Request.callerMobile", action="read", effect="deny"),
    Rule(role="auditor", domain="health", object="relation", action="follow", effect="deny"),
    Rule(role="public", domain="*", object="population.Person.healthVisits", action="follow", effect="deny"),
    Rule(role="auditor", domain="*", object="L4", action="mask", effect="allow"),
)
EXTRA_HIERARCHY = (Inheritance(role="hotline_reviewer", inherits="auditor", domain="health"),)

WITH_GRANTS = SEED.model_copy(update={"version": 2, "grants": SEED.grants + EXTRA_GRANTS})
WITH_RULES = SEED.model_copy(
    update={
        "version": 3,
        "rules": SEED.rules + EXTRA_RULES,
        "hierarchy": SEED.hierarchy + EXTRA_HIERARCHY,
        "grants": SEED.grants + EXTRA_GRANTS,
    }
)


def policy_at(snapshot: Snapshot, now: datetime) -> SnapshotPolicy:
    """The policy of a snapshot with its clock stopped at `now`."""
    return SnapshotPolicy(snapshot, CATALOG, clock=lambda: now)


@dataclass(frozen=True)
class GrantState:
    name: str
    snapshot: Snapshot
    now: datetime


GRANT_STATES = (
    GrantState("seed-before-window", SEED, SEED_START - timedelta(days=1)),
    GrantState("seed-at-start", SEED, SEED_START),
    GrantState("seed-inside-window", SEED, INSIDE),
    GrantState("seed-at-end", SEED, SEED_END),
    GrantState("seed-after-window", SEED, AFTER),
    GrantState("extra-grants-inside", WITH_GRANTS, INSIDE),
    GrantState("extra-grants-later", WITH_GRANTS, LATER),
    GrantState("extra-grants-after", WITH_GRANTS, AFTER),
    GrantState("extra-rules-and-grants", WITH_RULES, INSIDE),
)


def _table(state: GrantState) -> Iterator[tuple[Principal, str | None, EntityInfo, FieldInfo, Decision, Decision]]:
    policy = policy_at(state.snapshot, state.now)
    for principal in PRINCIPALS:
        for purpose in PURPOSES:
            for entity, item in FIELDS:
                got = policy.field(principal, purpose, entity, item).decision
                expected = oracle.decide(state.snapshot, principal, purpose, entity, item, state.now)
                yield principal, purpose, entity, item, got, expected


TABLE_SIZE = len(PRINCIPALS) * len(PURPOSES) * len(FIELDS)


@pytest.mark.parametrize("state", GRANT_STATES, ids=[s.name for s in GRANT_STATES])
def test_field_decisions_match_the_oracle(state: GrantState) -> None:
    seen: Counter[Decision] = Counter()
    mismatches = []
    for principal, purpose, entity, item, got, expected in _table(state):
        seen[got] += 1
        if got is not expected:
            mismatches.append(
                f"{principal.subject} {purpose} {entity.id}.{item.name}: got {got.name}, oracle {expected.name}"
            )
    size = sum(seen.values())
    print(
        f"{state.name}: {size} field decisions ({len(PRINCIPALS)} principals x {len(PURPOSES)} purposes x {len(FIELDS)} fields), {dict(seen)}"
    )
    assert size == TABLE_SIZE
    assert not mismatches, f"{len(mismatches)} of {size} decisions differ:\n" + "\n".join(mismatches[:30])
    assert set(seen) == set(Decision), f"the table of {state.name} does not reach every decision: {dict(seen)}"


@pytest.mark.parametrize("snapshot", [SEED, WITH_RULES], ids=["seed", "extra-rules"])
def test_relation_decisions_match_the_oracle(snapshot: Snapshot) -> None:
    policy = SnapshotPolicy(snapshot, CATALOG)
    mismatches = []
    followed = 0
    for principal in PRINCIPALS:
        for relation in RELATIONS:
            got = policy.relation(principal, None, relation).decision
            expected = Decision.PLAIN if oracle.follows(snapshot, principal, relation, CATALOG) else Decision.DENIED
            followed += got is Decision.PLAIN
            if got is not expected:
                mismatches.append(
                    f"{principal.subject} {relation.source}.{relation.name}: got {got.name}, oracle {expected.name}"
                )
    size = len(PRINCIPALS) * len(RELATIONS)
    print(f"relations ({snapshot.version}): {size} decisions, {followed} followed")
    assert not mismatches, f"{len(mismatches)} of {size} relation decisions differ:\n" + "\n".join(mismatches[:30])
    assert 0 < followed < size


# --- behaviours, one at a time ------------------------------------------------------------------


def decided(
    principal: Principal,
    entity_id: str,
    name: str,
    purpose: str | None = None,
    snapshot: Snapshot = SEED,
    now: datetime = INSIDE,
    item: FieldInfo | None = None,
) -> Decision:
    """The policy's decision, checked against the oracle on the way."""
    entity = CATALOG.entity(entity_id)
    item = item or entity.fields[name]
    got = policy_at(snapshot, now).field(principal, purpose, entity, item).decision
    assert got is oracle.decide(snapshot, principal, purpose, entity, item, now)
    return got


RULE_KEYS = ("role", "domain", "object", "action", "effect")


def with_rules(
    *lines: tuple[str, str, str, str, str],
    hierarchy: tuple[tuple[str, str, str], ...] = (),
    grants: tuple[Grant, ...] = (),
) -> Snapshot:
    return Snapshot(
        version=9,
        rules=tuple(Rule.model_validate(dict(zip(RULE_KEYS, line, strict=True))) for line in lines),
        hierarchy=tuple(Inheritance(role=r, inherits=i, domain=d) for r, i, d in hierarchy),
        grants=grants,
    )


def test_public_caller_reads_only_l1_plain() -> None:
    public = DEMO["public"]
    for entity, item in FIELDS:
        for purpose in (None, "statistics"):
            expected = Decision.PLAIN if item.tier is Tier.L1 else Decision.DENIED
            assert decided(public, entity.id, item.name, purpose, item=item) is expected, f"{entity.id}.{item.name}"


def test_department_reads_its_own_l3_and_l4_plain() -> None:
    health = DEMO["health-app"]
    visit = CATALOG.entity("health.Visit")
    assert {visit.fields[n].tier for n in ("patientIdNumber", "diagnosis")} == {Tier.L3, Tier.L4}
    for name in visit.fields:
        assert decided(health, "health.Visit", name) is Decision.PLAIN, name
    # The same app on another department's core data gets nothing.
    assert decided(DEMO["civil-affairs-app"], "health.Visit", "diagnosis") is Decision.DENIED


def test_other_departments_l3_is_masked_without_grant() -> None:
    for caller in ("civil-affairs-app", "human-resources-app", "auditor"):
        for purpose in (None, "health_care", "no_such_purpose"):
            assert decided(DEMO[caller], "health.Visit", "patientIdNumber", purpose) is Decision.MASKED
            assert decided(DEMO[caller], "health.Visit", "cost", purpose) is Decision.MASKED
            # Internal data is plain for every department app and auditor.
            assert decided(DEMO[caller], "health.Visit", "visitId", purpose) is Decision.PLAIN


def test_l3_field_without_a_mask_is_withheld_not_masked() -> None:
    assert CATALOG.entity("population.Person").fields["ethnicity"].mask is None
    assert decided(DEMO["health-app"], "population.Person", "ethnicity") is Decision.DENIED


def test_l4_is_never_masked() -> None:
    # Even where a line allows masking core data and the field has a mask.
    snapshot = with_rules(("auditor", "*", "L4", "mask", "allow"), ("auditor", "*", "L3", "mask", "allow"))
    visit = CATALOG.entity("health.Visit")
    masked_core = dataclasses.replace(visit.fields["diagnosis"], mask=NullifyMask(kind="nullify"))
    auditor = DEMO["auditor"]
    assert decided(auditor, "health.Visit", "diagnosis", snapshot=snapshot, item=masked_core) is Decision.DENIED
    assert decided(auditor, "health.Visit", "cost", snapshot=snapshot) is Decision.MASKED
    core = [(entity, item) for entity, item in FIELDS if item.tier is Tier.L4]
    assert any(item.mask is not None for _, item in core)
    for state in GRANT_STATES:
        policy = policy_at(state.snapshot, state.now)
        for principal in PRINCIPALS:
            for purpose in PURPOSES:
                for entity, item in core:
                    got = policy.field(principal, purpose, entity, item).decision
                    assert got is not Decision.MASKED, f"{state.name} {principal.subject} {entity.id}.{item.name}"


def test_grant_releases_l3_plain_only_for_its_purpose_and_window() -> None:
    civil = DEMO["civil-affairs-app"]
    person = "population.Person"
    assert decided(civil, person, "idNumber", "social_assistance") is Decision.PLAIN
    assert decided(civil, person, "idNumber", "social_assistance", now=SEED_START) is Decision.PLAIN
    assert (
        decided(civil, person, "idNumber", "social_assistance", now=SEED_START - timedelta(seconds=1))
        is Decision.MASKED
    )
    assert (
        decided(civil, person, "idNumber", "social_assistance", now=SEED_END - timedelta(seconds=1)) is Decision.PLAIN
    )
    assert decided(civil, person, "idNumber", "social_assistance", now=SEED_END) is Decision.MASKED
    for purpose in (None, "health_care", "audit", "no_such_purpose"):
        assert decided(civil, person, "idNumber", purpose) is Decision.MASKED, purpose
    # The grant is the department's: its district office shares it, the health app does not.
    assert decided(DEMO["district-office-app"], person, "mobile", "social_assistance") is Decision.PLAIN
    assert decided(DEMO["health-app"], person, "mobile", "social_assistance") is Decision.MASKED
    # An entity grant also releases sensitive fields that have no mask.
    assert decided(civil, person, "ethnicity", "social_assistance") is Decision.PLAIN
    assert decided(civil, person, "ethnicity", None) is Decision.DENIED


def test_field_grant_releases_only_its_field() -> None:
    civil = DEMO["civil-affairs-app"]
    account = "human_resources.PensionAccount"
    assert decided(civil, account, "monthlyPension", "social_assistance") is Decision.PLAIN
    assert decided(civil, account, "contributionBase", "social_assistance") is Decision.MASKED
    assert decided(civil, account, "monthlyPension", "pension_administration") is Decision.MASKED


def test_field_grant_releases_internal_data_beyond_the_callers_tiers() -> None:
    public = DEMO["public"]
    assert decided(public, "population.Person", "gender", "statistics", WITH_GRANTS) is Decision.PLAIN
    assert decided(public, "population.Person", "householdId", "statistics", WITH_GRANTS) is Decision.DENIED


def test_entity_grant_does_not_release_l4() -> None:
    auditor = DEMO["auditor"]
    # `visit-entity`: audit holds health.Visit for purpose audit, entity-wide.
    assert decided(auditor, "health.Visit", "patientName", "audit", WITH_GRANTS) is Decision.PLAIN
    assert decided(auditor, "health.Visit", "diagnosis", "audit", WITH_GRANTS) is Decision.DENIED
    # `l4-field`: a grant that names the core field releases it.
    civil = DEMO["civil-affairs-app"]
    assert decided(civil, "health.Visit", "diagnosis", "social_assistance", WITH_GRANTS) is Decision.PLAIN
    assert decided(civil, "health.Visit", "patientName", "social_assistance", WITH_GRANTS) is Decision.MASKED


def test_expired_and_not_yet_started_grants_release_nothing() -> None:
    hr = DEMO["human-resources-app"]
    assert decided(hr, "population.Person", "idNumber", "employment_services", WITH_GRANTS) is Decision.MASKED
    auditor = DEMO["auditor"]
    assert decided(auditor, "population.Person", "idNumber", "audit", WITH_GRANTS, INSIDE) is Decision.MASKED
    assert decided(auditor, "population.Person", "idNumber", "audit", WITH_GRANTS, LATER) is Decision.PLAIN


def test_hotline_content_is_withheld_from_other_departments_without_a_grant() -> None:
    for caller in ("civil-affairs-app", "auditor", "platform-admin"):
        assert decided(DEMO[caller], "hotline.Request", "content", "audit") is Decision.DENIED
    assert decided(DEMO["auditor"], "hotline.Request", "content", "audit", WITH_GRANTS) is Decision.PLAIN


def test_deny_line_wins_over_allow() -> None:
    snapshot = with_rules(
        ("reader", "*", "L2", "read", "allow"),
        ("reader", "*", "L3", "mask", "allow"),
        ("blocked", "*", "population.Person.gender", "read", "deny"),
        ("blocked", "population", "population.Person.mobile", "mask", "deny"),
        hierarchy=(("inherits_block", "blocked", "*"),),
    )
    for roles in (("reader", "blocked"), ("reader", "inherits_block")):
        principal = Principal("p", "health", roles)
        assert decided(principal, "population.Person", "gender", snapshot=snapshot) is Decision.DENIED, roles
        assert decided(principal, "population.Person", "householdId", snapshot=snapshot) is Decision.PLAIN, roles
        assert decided(principal, "population.Person", "mobile", snapshot=snapshot) is Decision.DENIED, roles
        assert decided(principal, "population.Person", "idNumber", snapshot=snapshot) is Decision.MASKED, roles
    alone = Principal("p", "health", ("reader",))
    assert decided(alone, "population.Person", "gender", snapshot=snapshot) is Decision.PLAIN
    # In the extended demo policy: an entity read line for one role, an inherited field deny for
    # the other (district_office inherits department_app, denied reading hotline callers' mobiles).
    request = "hotline.Request"
    reviewer, in_district = (next(p for p in SYNTHETIC if p.subject == s) for s in ("reviewer", "reviewer-in-district"))
    assert decided(reviewer, request, "callerMobile", snapshot=WITH_RULES) is Decision.PLAIN
    assert decided(in_district, request, "callerMobile", snapshot=WITH_RULES) is Decision.MASKED
    assert decided(in_district, request, "callerName", snapshot=WITH_RULES) is Decision.PLAIN


def test_read_deny_also_blocks_a_grant() -> None:
    person = "population.Person"
    snapshot = with_rules(
        ("app", "*", "L3", "mask", "allow"),
        ("app", "*", "population.Person.mobile", "read", "deny"),
        grants=(grant("g", "health", person, "health_care", SEED_START, SEED_END),),
    )
    app = Principal("app", "health", ("app",))
    assert decided(app, person, "idNumber", "health_care", snapshot) is Decision.PLAIN
    assert decided(app, person, "mobile", "health_care", snapshot) is Decision.MASKED


def test_inheritance_for_one_department_applies_only_there() -> None:
    in_health = Principal("r", "health", ("hotline_reviewer",))
    elsewhere = Principal("r", "education", ("hotline_reviewer",))
    assert decided(in_health, "population.Person", "idNumber", snapshot=WITH_RULES) is Decision.MASKED
    assert decided(elsewhere, "population.Person", "idNumber", snapshot=WITH_RULES) is Decision.DENIED


def test_no_roles_means_nothing() -> None:
    nobody = Principal("nobody", "health", ())
    for entity, item in FIELDS:
        assert decided(nobody, entity.id, item.name, "health_care", item=item) is Decision.DENIED
    policy = SnapshotPolicy(SEED, CATALOG)
    assert all(policy.relation(nobody, None, r).decision is Decision.DENIED for r in RELATIONS)


def test_follow_lines_decide_relations_by_target_department() -> None:
    policy = SnapshotPolicy(WITH_RULES, CATALOG)
    person = CATALOG.entity("population.Person")
    auditor, public = DEMO["auditor"], DEMO["public"]
    assert policy.relation(auditor, None, person.relations["healthVisits"]).decision is Decision.DENIED
    assert policy.relation(auditor, None, person.relations["assistanceCases"]).decision is Decision.PLAIN
    assert policy.relation(public, None, person.relations["healthVisits"]).decision is Decision.DENIED
    assert policy.relation(public, None, person.relations["district"]).decision is Decision.PLAIN
    # The hotline reviewer follows any relation of a request whose target is hotline data.
    request = CATALOG.entity("hotline.Request")
    reviewer = Principal("reviewer", "civil_affairs", ("hotline_reviewer",))
    assert policy.relation(reviewer, None, request.relations["feedback"]).decision is Decision.PLAIN
    assert policy.relation(reviewer, None, request.relations["caller"]).decision is Decision.DENIED


class CountingPolicy(SnapshotPolicy):
    """Counts the field decisions the planner asks for, to tell a cached plan from a new one."""

    asked = 0

    def field(self, principal: Principal, purpose: str | None, entity: EntityInfo, item: FieldInfo) -> Verdict:
        self.asked += 1
        return super().field(principal, purpose, entity, item)


def test_grant_stops_working_at_its_end_without_restart() -> None:
    moment = [SEED_END - timedelta(minutes=1)]

    def clock() -> datetime:
        return moment[0]

    policy = CountingPolicy(SEED, CATALOG, clock=clock)
    planner = Planner(CATALOG, lambda: policy, clock=clock)
    civil = DEMO["civil-affairs-app"]
    person = "population.Person"
    selection = Selection(fields={person: frozenset({"idNumber", "mobile"})}, relations={})

    before = planner.plan(civil, "social_assistance", selection)
    assert before.field(person, "idNumber").decision is Decision.PLAIN
    assert before.field(person, "mobile").decision is Decision.PLAIN
    asked = policy.asked
    moment[0] = SEED_END - timedelta(seconds=1)
    assert planner.plan(civil, "social_assistance", selection).field(person, "idNumber").decision is Decision.PLAIN
    assert policy.asked == asked, "the second plan should come from the cache"

    moment[0] = SEED_END
    after = planner.plan(civil, "social_assistance", selection)
    assert after.policy_version == before.policy_version
    assert after.field(person, "idNumber").decision is Decision.MASKED
    assert after.field(person, "mobile").decision is Decision.MASKED
