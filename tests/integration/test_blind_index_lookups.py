"""Blind-index lookups and joins over the encrypted demo: every equality filter, `in` list,
by-key read and cross-department relation on an encrypted ID number returns exactly the rows a
scan of the plaintext (the generator's output) finds, in every department.

Access control is off here (everything released plain) so every department's fields can be
searched; the policy's part is tested elsewhere."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from hub.access.plan import ReleaseEverything
from hub.app import create_app
from hub.catalog import Catalog, EntityInfo
from hub.demo.generate import generate
from hub.demo.workspace import Workspace
from hub.services import Services, build_services
from tests.conftest import Hub
from tests.integration.conftest import _tokens


@pytest.fixture(scope="module")
def open_services(demo_services: Services) -> Services:
    return build_services(demo_services.settings, policy=ReleaseEverything())


@pytest.fixture(scope="module")
def open_hub(open_services: Services, demo_workspace: Workspace) -> Iterator[Hub]:
    tokens = _tokens(demo_workspace)
    with TestClient(create_app(open_services)) as client:
        # Any caller: with access control off, each sees everything.
        yield Hub(client, next(iter(tokens.values())), open_services.settings.database_url, tokens)


@pytest.fixture(scope="module")
def plain() -> dict[str, dict[str, list[dict[str, Any]]]]:
    return generate(2026)


def searchable(catalog: Catalog) -> list[tuple[EntityInfo, str]]:
    """Every (entity, field) holding an encrypted resident ID number with its blind index."""
    return [
        (entity, item.name)
        for entity in catalog
        for item in entity.fields.values()
        if item.encrypted and item.blind_index == "resident_id"
    ]


def sample_ids(plain: dict[str, Any], count: int) -> list[str]:
    people = plain["population"]["pop_person"]
    ids = [p["id_number"] for p in people]
    rng = random.Random(7)
    chosen = rng.sample(ids, count)
    chosen.extend([i for i in ids if i.endswith("X")][:3])
    # Persons with records elsewhere are the interesting ones: add some assistance recipients.
    chosen.extend(c["recipient_id_number"] for c in plain["civil_affairs"]["ca_assistance_case"][:5])
    return list(dict.fromkeys(chosen))


def keys_of(hub: Hub, entity: EntityInfo, filter_text: str) -> set[str]:
    query = f"{{ {entity.list_field}(first: 10000, filter: {filter_text}) {{ nodes {{ {entity.key} }} }} }}"
    result = hub.query(query)
    assert "errors" not in result, result["errors"]
    return {str(n[entity.key]) for n in result["data"][entity.list_field]["nodes"]}


def scan(plain: dict[str, Any], entity: EntityInfo, column: str, wanted: set[str]) -> set[str]:
    key_column = entity.fields[entity.key].column
    rows = plain[entity.department][entity.table.name]
    return {str(r[key_column]) for r in rows if r[column] in wanted}


def test_eq_and_in_on_encrypted_id_numbers_match_a_plaintext_scan(
    open_hub: Hub, open_services: Services, plain: dict[str, Any]
) -> None:
    ids = sample_ids(plain, 12)
    checked = 0
    for entity, name in searchable(open_services.catalog):
        column = entity.fields[name].column
        for id_number in ids[:6]:
            # Lower-case x: the index compares normalised numbers.
            got = keys_of(open_hub, entity, f'{{{name}: {{eq: "{id_number.lower()}"}}}}')
            assert got == scan(plain, entity, column, {id_number}), (entity.id, name)
            checked += 1
        listed = ", ".join(f'"{i}"' for i in [*ids, "000000000000000000"])
        got = keys_of(open_hub, entity, f"{{{name}: {{in: [{listed}]}}}}")
        assert got == scan(plain, entity, column, set(ids)), (entity.id, name)
        checked += 1
    assert checked >= 7 * len(searchable(open_services.catalog)) >= 70


def test_lookup_by_encrypted_key_reads_the_one_person(open_hub: Hub, plain: dict[str, Any]) -> None:
    people = {p["id_number"]: p for p in plain["population"]["pop_person"]}
    for id_number in sample_ids(plain, 10):
        result = open_hub.query(f'{{ populationPerson(key: "{id_number}") {{ idNumber name mobile }} }}')
        person = people[id_number]
        assert result["data"]["populationPerson"] == {
            "idNumber": id_number,
            "name": person["name"],
            "mobile": person["mobile"],
        }


def test_relations_join_encrypted_id_numbers_like_a_plaintext_join(
    open_hub: Hub, open_services: Services, plain: dict[str, Any]
) -> None:
    person = open_services.catalog.entity("population.Person")
    relations = [
        r for r in person.relations.values() if open_services.catalog.entity(r.target).fields[r.target_field].encrypted
    ]
    assert len(relations) >= 5
    selection = " ".join(f"{r.name} {{ {open_services.catalog.entity(r.target).key} }}" for r in relations)
    ids = sample_ids(plain, 15)
    listed = ", ".join(f'"{i}"' for i in ids)
    result = open_hub.query(
        f"{{ populationPersons(first: 100, filter: {{idNumber: {{in: [{listed}]}}}}) {{ nodes {{ idNumber {selection} }} }} }}"
    )
    assert "errors" not in result, result["errors"]
    nodes = result["data"]["populationPersons"]["nodes"]
    assert sorted(n["idNumber"] for n in nodes) == sorted(ids)
    joined = 0
    for node in nodes:
        for relation in relations:
            target = open_services.catalog.entity(relation.target)
            column = target.fields[relation.target_field].column
            expected = scan(plain, target, column, {node["idNumber"]})
            value = node[relation.name]
            got = (
                {str(v[target.key]) for v in value} if relation.many else ({str(value[target.key])} if value else set())
            )
            assert got == expected, (node["idNumber"], relation.name)
            joined += len(got)
    assert joined > 0
