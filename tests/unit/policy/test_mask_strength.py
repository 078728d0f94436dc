"""Mask strength: the hub's count of values a masked identifier could still be is checked
against brute force (every ID number consistent with what a caller sees), and a configuration
whose masks leave too few is refused for the caller, field and count it affects."""

from __future__ import annotations

import dataclasses
import itertools
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from hub.auth.principal import Principal
from hub.catalog import Catalog, load_catalog
from hub.catalog.manifest import PartialMask
from hub.policy.changes import Edit
from hub.policy.decisions import SnapshotPolicy
from hub.policy.grants import Grant
from hub.policy.mask_strength import Seen, WeakMask, caller_kinds, candidates, check, weaknesses
from hub.policy.snapshot import load_seed
from hub.policy.terms import load_terms
from tests.resident_ids import check_digit

CATALOG = load_catalog(Path(__file__).resolve().parents[3] / "hub" / "demo" / "manifests")
TERMS = load_terms(CATALOG)
NOW = datetime(2026, 12, 6, 12, tzinfo=UTC)
SEED = load_seed(now=NOW)


def brute_force(real: str, visible: set[int], year_known: bool, sex_known: bool, area_known: bool) -> int:
    """Every ID number one person could have, given what the caller sees (a valid date, the
    right check digit), counted one by one."""
    year = int(real[6:10])
    first = date(year, 1, 1) if year_known else date(1900, 1, 1)
    last = date(year, 12, 31) if year_known else date.today()
    count = 0
    areas = [real[:6]] if area_known or all(p in visible for p in range(6)) else None
    assert areas is not None, "brute force is only run with a known area"
    day = first
    dates = []
    while day <= last:
        text = day.strftime("%Y%m%d")
        if all(text[p - 6] == real[p] for p in visible if 6 <= p < 14):
            dates.append(text)
        day += timedelta(days=1)
    sequences = []
    for digits in itertools.product("0123456789", repeat=3):
        seq = "".join(digits)
        if any(seq[p - 14] != real[p] for p in visible if 14 <= p < 17):
            continue
        if sex_known and int(seq[2]) % 2 != int(real[16]) % 2:
            continue
        sequences.append(seq)
    for area, birth, seq in itertools.product(areas, dates, sequences):
        body = area + birth + seq
        if 17 in visible and check_digit(body) != real[17]:
            continue
        count += 1
    return count


REAL = "330102" + "19870315" + "652"
REAL += check_digit(REAL)


@pytest.mark.parametrize(
    ("visible", "year_known", "sex_known"),
    [
        (set(range(6)) | {14, 15, 16, 17}, True, True),  # the old demo mask, year and sex released
        (set(range(6)) | {14, 15, 16, 17}, True, False),
        (set(range(6)) | {17}, True, True),
        (set(range(6)) | {10, 11, 12, 13}, True, True),  # month and day shown
        (set(range(3)), True, True),  # the demo's mask now
        (set(range(3)) | {17}, True, False),
    ],
)
def test_the_count_never_exceeds_brute_force_and_stays_close(
    visible: set[int], year_known: bool, sex_known: bool
) -> None:
    seen = Seen(frozenset(visible), False, "year" if year_known else None, sex_known, True)
    estimate = candidates("resident_id", seen)
    exact = brute_force(REAL, visible, year_known, sex_known, area_known=True)
    # The estimate is the attacker's side: never more values than there really are, and not
    # so far below that sound masks are refused.
    assert estimate <= exact
    assert estimate >= exact * 0.8


def test_the_old_demo_mask_leaves_about_thirty_ids_and_is_refused_for_the_health_app() -> None:
    weak = _with_mask(CATALOG, PartialMask(kind="partial", keep_first=6, keep_last=4))
    policy = SnapshotPolicy(SEED, weak, lambda: NOW, TERMS)
    health = Principal("health-app", "health", ("department_app",))
    found = [w for w in weaknesses(policy, weak, [health], 10_000) if w.field == "population.Person.idNumber"]
    assert [w.candidates for w in found] and all(25 <= w.candidates <= 40 for w in found)
    with pytest.raises(
        WeakMask,
        match=r"health callers with roles department_app see \S+[iI]dNumber masked with only \d+ possible values",
    ):
        check(policy, weak, [health], 10_000)


def test_the_demo_manifests_and_policy_pass_for_every_kind_of_caller() -> None:
    policy = SnapshotPolicy(SEED, CATALOG, lambda: NOW, TERMS)
    kinds = caller_kinds(TERMS.departments, SEED.role_names(), [])
    assert len(kinds) >= 50
    check(policy, CATALOG, kinds, 10_000)


def test_releasing_the_birth_date_plain_beside_a_masked_id_is_refused() -> None:
    # The mask itself is unchanged: the other field released about the same person weakens it.
    given = Grant(
        id="dates",
        department="health",
        entity="population.Person",
        field="birthDate",
        purpose="health_care",
        valid_from=NOW,
        valid_until=NOW + timedelta(days=30),
        granted_by="platform-admin",
    )
    snapshot = SEED.model_copy(update={"grants": (*SEED.grants, given)})
    policy = SnapshotPolicy(snapshot, CATALOG, lambda: NOW, TERMS)
    health = Principal("health-app", "health", ("department_app",))
    with pytest.raises(WeakMask, match=r"stating purpose health_care see \S+ masked with only 500 possible"):
        check(policy, CATALOG, [health], 10_000)
    assert Edit(op="grant", grant=given)  # the same grant the admin API would carry


@pytest.mark.parametrize(
    ("keep_first", "keep_last", "weak"), [(3, 4, False), (3, 6, True), (7, 4, True), (0, 4, False)]
)
def test_mobile_masks_are_judged_by_their_hidden_digits(keep_first: int, keep_last: int, weak: bool) -> None:
    visible = frozenset(range(keep_first)) | frozenset(range(11 - keep_last, 11))
    count = candidates("mobile", Seen(visible, False, None, False, False))
    assert (count < 10_000) is weak


def _with_mask(catalog: Catalog, mask: PartialMask) -> Catalog:
    """The catalog with every resident ID number masked by `mask`."""
    entities = {}
    for entity in catalog:
        fields = {
            name: dataclasses.replace(item, mask=mask) if item.identifier == "resident_id" else item
            for name, item in entity.fields.items()
        }
        entities[entity.id] = dataclasses.replace(entity, fields=fields)
    return dataclasses.replace(catalog, entities=entities)
