"""The recovery attack of finding 2, scripted against the demo with its manifests and policy.

The health app reads a person from the population registry: the ID number and mobile masked,
the birth year, sex and district released. It lists every ID number (and mobile) consistent
with what it sees, then probes them by key, thirty aliases a request, as the attacker did.
What must hold: the expected number of probes to hit the real one exceeds what the most
generous role may ask in a day, and the hub stops the probing at the caller's hourly quota."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest

from hub.config import load_settings
from hub.demo.workspace import Workspace
from tests.conftest import Hub
from tests.integration.policy_fixtures import own_hub
from tests.resident_ids import check_digit

HEALTH = "health-app"
PERSON = """
{ populationPersons(first: 1) {
    nodes { idNumber mobile birthDate gender districtCode } } }"""
ALIASES = 30


@pytest.fixture
def hub(demo_workspace: Workspace, tmp_path: Path) -> Iterator[Hub]:
    yield from own_hub(demo_workspace, tmp_path)


def id_candidates(masked: str, year: int, district: str, male: bool) -> Iterator[str]:
    """Every valid ID number the masked one could be, given the released fields."""
    shown = masked.rstrip("*")
    assert district.startswith(shown)
    day = date(year, 1, 1)
    while day.year == year:
        for sequence in range(1000):
            if (sequence % 2 == 1) is not male:
                continue
            body = f"{district}{day:%Y%m%d}{sequence:03d}"
            yield body + check_digit(body)
        day += timedelta(days=1)


def mobile_candidates(masked: str) -> Iterator[str]:
    first, last = masked[:3], masked[-4:]
    hidden = len(masked) - 7
    for middle in itertools.product("0123456789", repeat=hidden):
        yield first + "".join(middle) + last


def test_recovering_a_masked_id_number_or_mobile_takes_more_probes_than_a_day_of_any_quota(hub: Hub) -> None:
    health = hub.as_caller(HEALTH, "health_care")
    (person,) = health.query(PERSON)["data"]["populationPersons"]["nodes"]
    assert set(person["idNumber"][3:]) == {"*"}  # masked: three digits shown
    year = int(str(person["birthDate"])[:4])
    male = person["gender"] in ("男", "M", "male")
    ids = list(id_candidates(person["idNumber"], year, person["districtCode"], male))
    mobiles = list(mobile_candidates(person["mobile"])) if person["mobile"] else []

    daily = load_settings({}).max_daily_lookups()
    # On average the real value is found half way through its candidates.
    assert len(ids) / 2 > daily, (len(ids), daily)
    if mobiles:
        assert len(mobiles) / 2 > daily, (len(mobiles), daily)

    # Probing as the attacker did: by key, thirty aliases a request, until the hub says stop.
    answered = 0
    refusal = None
    for start in range(0, len(ids), ALIASES):
        batch = ids[start : start + ALIASES]
        query = (
            "{ " + " ".join(f'p{i}: populationPerson(key: "{key}") {{ gender }}' for i, key in enumerate(batch)) + " }"
        )
        response = hub.client.post(
            "/graphql",
            json={"query": query},
            headers={"Authorization": f"Bearer {hub.tokens[HEALTH]}", "X-Hub-Purpose": "health_care"},
        )
        if response.status_code == 429:
            refusal = response
            break
        assert response.status_code == 200
        answered += len(batch)
    assert refusal is not None, "the probing was never stopped"
    assert refusal.headers["Retry-After"].isdigit()
    assert refusal.json()["errors"][0]["extensions"]["code"] == "LIMIT_EXCEEDED"
    hourly = load_settings({}).lookup_quota(["department_app"])
    assert answered <= hourly
    # A day of such hours still falls short of the expected number of probes.
    assert 24 * hourly < len(ids) / 2
