"""The population registry: households of synthetic residents across the demo city.

People are made household by household, so a family shares a surname, an address and a
district, and parents are plausibly older than their children. Every other department's
records are about these people.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, timedelta
from itertools import accumulate
from typing import Any

from hub.demo import identities
from hub.demo.geography import District, address, district_rows, pick_district
from hub.demo.identities import FEMALE, MALE, IdentityFactory
from hub.demo.timeline import REFERENCE_DATE, add_years, age_on, random_day

PERSONS = 12_000

HEAD, SPOUSE, CHILD, PARENT = "户主", "配偶", "子女", "父母"

# Household kinds and their weights in city and countryside: the countryside is older.
_KINDS = ("family", "three_generations", "elderly_couple", "elderly_single", "young_single", "couple")
_URBAN_WEIGHTS = (40, 12, 15, 10, 13, 10)
_RURAL_WEIGHTS = (34, 15, 20, 13, 8, 10)

# Ages 60 to 98, fewer with each year, so about one in six of the elderly is 80 or over.
_ELDER_AGES = tuple(range(60, 99))
_ELDER_CUM = tuple(accumulate(max(0.03, 1 - (a - 60) / 38) ** 1.4 for a in _ELDER_AGES))

_ETHNICITIES = ("汉族", "畲族", "回族", "土家族", "苗族", "满族")
_ETHNICITY_WEIGHTS = (985, 5, 3, 3, 2, 2)


@dataclass(slots=True)
class Person:
    id_number: str
    name: str
    gender: str
    birth_date: date
    mobile: str | None
    ethnicity: str
    household: Household
    relation: str

    @property
    def district(self) -> District:
        return self.household.district

    @property
    def age(self) -> int:
        return age_on(self.birth_date, REFERENCE_DATE)


@dataclass(slots=True)
class Household:
    household_id: str
    district: District
    town: str
    address: str
    # Since when the household is registered here; people born later are registered at birth.
    settled: date
    members: list[Person] = field(default_factory=list)

    @property
    def head(self) -> Person:
        return self.members[0]


@dataclass
class Population:
    households: list[Household]
    persons: list[Person]

    def rows(self) -> dict[str, list[dict[str, Any]]]:
        people = []
        for p in self.persons:
            h = p.household
            people.append(
                {
                    "id_number": p.id_number,
                    "name": p.name,
                    "gender": p.gender,
                    "ethnicity": p.ethnicity,
                    "birth_date": p.birth_date,
                    "mobile": p.mobile,
                    "district_code": h.district.code,
                    "address": h.address,
                    "household_id": h.household_id,
                    "relation_to_head": p.relation,
                    "registered_at": max(p.birth_date, h.settled),
                }
            )
        return {"pop_district": district_rows(), "pop_person": people}


def build(rng: random.Random, persons: int = PERSONS) -> Population:
    """Households until the registry holds at least `persons` residents."""
    factory = IdentityFactory(rng)
    households: list[Household] = []
    everyone: list[Person] = []
    while len(everyone) < persons:
        household = _household(rng, factory, len(households) + 1)
        households.append(household)
        everyone.extend(household.members)
    return Population(households, everyone)


def _household(rng: random.Random, factory: IdentityFactory, number: int) -> Household:
    district = pick_district(rng)
    town = rng.choice(district.towns)
    # Most families have lived here for generations; the rest moved in since the 1990s.
    settled = date(1950, 1, 1) if rng.random() < 0.6 else random_day(rng, date(1995, 1, 1), date(2025, 12, 31))
    household = Household(f"H{number:07d}", district, town, address(rng, district, town), settled)
    kind = rng.choices(_KINDS, _RURAL_WEIGHTS if district.rural else _URBAN_WEIGHTS)[0]
    add = _Adder(rng, factory, household)
    if kind in ("family", "three_generations", "couple"):
        head_age = rng.randint(28, 55) if kind != "couple" else rng.randint(24, 40)
        head = add(rng.choices((MALE, FEMALE), (7, 3))[0], head_age, HEAD)
        spouse_gender = FEMALE if head.gender == MALE else MALE
        spouse = add(spouse_gender, max(21, head_age + round(rng.gauss(0, 3))), SPOUSE)
        if kind != "couple":
            father, mother = (head, spouse) if head.gender == MALE else (spouse, head)
            mother_age = age_on(mother.birth_date, REFERENCE_DATE)
            family_name = _surname(father) if rng.random() < 0.92 else _surname(mother)
            for _ in range(rng.choices((1, 2, 3), (55, 40, 5))[0] if mother_age >= 22 else 0):
                child_age = mother_age - rng.randint(22, min(40, mother_age))
                if child_age >= 0:
                    add(rng.choice((MALE, FEMALE)), child_age, CHILD, surname=family_name)
        if kind == "three_generations":
            elder_age = min(98, head_age + rng.randint(24, 34))
            add(MALE, elder_age, PARENT, surname=_surname(head))  # the head's father
            if rng.random() < 0.6:
                add(FEMALE, min(98, elder_age + rng.randint(-4, 2)), PARENT)
    elif kind == "elderly_couple":
        age = rng.choices(_ELDER_AGES, cum_weights=_ELDER_CUM)[0]
        add(MALE, age, HEAD)
        add(FEMALE, max(58, min(98, age + rng.randint(-5, 2))), SPOUSE)
    elif kind == "elderly_single":
        age = max(65, rng.choices(_ELDER_AGES, cum_weights=_ELDER_CUM)[0])
        add(rng.choices((MALE, FEMALE), (3, 7))[0], age, HEAD)
    else:
        add(rng.choice((MALE, FEMALE)), rng.randint(20, 35), HEAD)
    return household


def _surname(person: Person) -> str:
    return person.name[:2] if person.name[:2] in ("欧阳", "诸葛") else person.name[0]


class _Adder:
    """Adds one member to a household: a birth date for the age, an ID number, maybe a mobile."""

    def __init__(self, rng: random.Random, factory: IdentityFactory, household: Household) -> None:
        self._rng, self._factory, self._household = rng, factory, household

    def __call__(self, gender: str, age: int, relation: str, surname: str | None = None) -> Person:
        """A member of exactly `age` on the reference date; without `surname`, a family name of
        their own (spouses keep theirs)."""
        rng = self._rng
        birth = add_years(REFERENCE_DATE, -age - 1) + timedelta(days=rng.randrange(1, 366))
        name = (surname or identities.surname(rng)) + identities.given_name(rng, gender, birth.year)
        id_number = self._factory.id_number(self._household.district.code, birth, gender)
        ethnicity = rng.choices(_ETHNICITIES, _ETHNICITY_WEIGHTS)[0]
        person = Person(id_number, name, gender, birth, self._mobile(age), ethnicity, self._household, relation)
        self._household.members.append(person)
        return person

    def _mobile(self, age: int) -> str | None:
        # Young children have no phone; some of the oldest rely on their family's.
        chance = 0.0 if age < 12 else 0.5 if age < 16 else 0.7 if age >= 85 else 0.97
        return self._factory.mobile() if self._rng.random() < chance else None
