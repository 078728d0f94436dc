"""Random policies and requests: the Casbin-backed `SnapshotPolicy` decides every field and
relation as the oracle written from the rules does.

Policies are drawn over a few roles, domains (`*`, `own`, departments) and objects (tiers,
entity, field and relation ids of a few demo entities) so that lines collide often; fields may
be given another tier or mask than the manifest's; grant windows and request times fall on a
coarse hour grid so that window edges are hit."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from hub.access.plan import Decision
from hub.auth.principal import Principal
from hub.catalog import EntityInfo, FieldInfo, load_catalog
from hub.catalog.manifest import Mask, NullifyMask, Tier
from hub.policy.decisions import SnapshotPolicy
from hub.policy.snapshot import Grant, Inheritance, Rule, Snapshot
from tests import policy_oracle as oracle

settings.register_profile(
    "policy-ci", max_examples=200, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
CI = settings.get_profile("policy-ci")

CATALOG = load_catalog(Path(__file__).resolve().parents[3] / "hub" / "demo" / "manifests")
ENTITIES = [
    CATALOG.entity(e) for e in ("population.Person", "health.Visit", "hotline.Request", "civil_affairs.ServiceDelivery")
]
FIELDS: dict[str, tuple[str, ...]] = {
    "population.Person": ("idNumber", "ethnicity", "gender"),
    "health.Visit": ("diagnosis", "cost", "patientIdNumber"),
    "hotline.Request": ("content", "category", "callerMobile"),
    "civil_affairs.ServiceDelivery": ("amount", "recipientName", "deliveryId"),
}
RELATIONS = [
    CATALOG.entity("population.Person").relations[name] for name in ("healthVisits", "hotlineRequests", "district")
] + [CATALOG.entity("hotline.Request").relations[name] for name in ("caller", "civilAffairsDeliveries", "feedback")]
ROLES = ("clerk", "analyst", "head")
DEPARTMENTS = ("population", "health", "hotline", "civil_affairs", "audit")
PURPOSES = ("audit", "social_assistance", "health_care")
TIERS = tuple(t.value for t in Tier)
BASE = datetime(2027, 1, 1, tzinfo=UTC)

ENTITY_IDS = tuple(e.id for e in ENTITIES)
FIELD_IDS = tuple(f"{entity}.{name}" for entity, names in FIELDS.items() for name in names)
RELATION_IDS = tuple(f"{r.source}.{r.name}" for r in RELATIONS)
NULLIFY = NullifyMask(kind="nullify")


def hours(n: int) -> datetime:
    return BASE + timedelta(hours=n)


# Tiers most often, as in real policies; then entity, field and relation lines.
objects = st.one_of(
    st.sampled_from(TIERS),
    st.sampled_from(TIERS),
    st.sampled_from(TIERS),
    st.just("relation"),
    st.sampled_from(ENTITY_IDS),
    st.sampled_from(FIELD_IDS),
    st.sampled_from(RELATION_IDS),
)


def rules(roles: tuple[str, ...]) -> st.SearchStrategy[Rule]:
    """Rule lines, mostly for the given roles so that they meet the caller."""
    return st.builds(
        Rule,
        role=st.sampled_from(roles) | st.sampled_from(ROLES),
        domain=st.one_of(st.just("*"), st.just("own"), st.sampled_from(DEPARTMENTS)),
        object=objects,
        action=st.sampled_from(("read", "read", "mask", "mask", "follow", "lookup")),
        effect=st.sampled_from(("allow", "allow", "allow", "deny")),
    )


def inheritances(roles: tuple[str, ...]) -> st.SearchStrategy[Inheritance]:
    return st.builds(
        Inheritance,
        role=st.sampled_from(roles) | st.sampled_from(ROLES),
        inherits=st.sampled_from(ROLES),
        domain=st.sampled_from(("*", *DEPARTMENTS)),
    )


@st.composite
def grants(draw: st.DrawFn, gid: str, department: str) -> Grant:
    entity = draw(st.sampled_from(ENTITY_IDS))
    start = draw(st.integers(-4, 4))
    return Grant(
        id=gid,
        # Mostly the caller's own department, so that grants meet their holder.
        department=draw(st.just(department) | st.sampled_from(DEPARTMENTS)),
        entity=entity,
        field=draw(st.none() | st.sampled_from(FIELDS[entity])),
        purpose=draw(st.sampled_from(PURPOSES)),
        valid_from=hours(start),
        valid_until=hours(start + draw(st.integers(1, 5))),
        granted_by="someone",
    )


@dataclass(frozen=True)
class Case:
    snapshot: Snapshot
    principal: Principal
    # Every field of the few entities, each with a tier and mask that may differ from the manifest's.
    fields: tuple[tuple[EntityInfo, FieldInfo], ...]
    times: tuple[datetime, ...]

    def __str__(self) -> str:
        return "\n".join(
            [f"principal {self.principal.department} {self.principal.roles}"]
            + [f"  rule {r.line()}" for r in self.snapshot.rules]
            + [f"  inherit {h.line()}" for h in self.snapshot.hierarchy]
            + [
                f"  grant {g.department} {g.entity}.{g.field or '*'} for {g.purpose} [{g.valid_from}, {g.valid_until})"
                for g in self.snapshot.grants
            ]
        )


@st.composite
def cases(draw: st.DrawFn) -> Case:
    principal = Principal(
        "caller",
        draw(st.sampled_from(DEPARTMENTS)),
        tuple(draw(st.lists(st.sampled_from((*ROLES, "stranger")), min_size=1, max_size=3, unique=True))),
    )
    grant_count = draw(st.integers(0, 4))
    snapshot = Snapshot(
        version=1,
        rules=tuple(draw(st.lists(rules(principal.roles), min_size=8, max_size=30))),
        hierarchy=tuple(draw(st.lists(inheritances(principal.roles), max_size=5))),
        grants=tuple(draw(grants(f"g{i}", principal.department)) for i in range(grant_count)),
    )
    masks: tuple[Mask | None, ...] = (None, NULLIFY)
    fields = []
    for entity in ENTITIES:
        for name in FIELDS[entity.id]:
            item = entity.fields[name]
            tier = draw(st.sampled_from((item.tier, *Tier)))
            fields.append(
                (entity, dataclasses.replace(item, tier=tier, mask=draw(st.sampled_from((item.mask, *masks)))))
            )
    # Some times on the grid and every grant's edges.
    times = {hours(h) for h in draw(st.lists(st.integers(-5, 10), min_size=1, max_size=2))}
    times |= {t for g in snapshot.grants for t in (g.valid_from, g.valid_until)}
    return Case(snapshot, principal, tuple(fields), tuple(sorted(times)))


@CI
@given(cases())
def test_random_policies_decide_as_the_oracle(case: Case) -> None:
    snapshot, principal = case.snapshot, case.principal
    moment = [BASE]
    policy = SnapshotPolicy(snapshot, CATALOG, clock=lambda: moment[0])
    for now in case.times:
        moment[0] = now
        for purpose in (None, *PURPOSES, "unknown"):
            for entity, item in case.fields:
                got = policy.field(principal, purpose, entity, item).decision
                expected = oracle.decide(snapshot, principal, purpose, entity, item, now)
                event(f"field {got.name}")
                if got is Decision.PLAIN and oracle.releasing_grants(snapshot, principal, purpose, entity, item, now):
                    event("field released by a grant")
                mask = item.mask.kind if item.mask else None
                assert got is expected, (
                    f"{entity.id}.{item.name} ({item.tier.value}, mask {mask}) for {purpose} at {now}: "
                    f"got {got.name}, oracle {expected.name}\n{case}"
                )
    for relation in RELATIONS:
        got = policy.relation(principal, None, relation).decision
        expected = Decision.PLAIN if oracle.follows(snapshot, principal, relation, CATALOG) else Decision.DENIED
        event(f"relation {got.name}")
        assert got is expected, (
            f"follow {relation.source}.{relation.name}: got {got.name}, oracle {expected.name}\n{case}"
        )
