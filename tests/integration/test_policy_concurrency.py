"""Requests running while the admin edits the policy never see a half-applied change.

The admin moves health's grant between two fields of the civil affairs cases, as one change
(revoke + grant), over and over, while health's app reads the cases concurrently through the
same ASGI app. Every response must show exactly one of the two states, and the policy version
it reports must be the version that produced that state."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from hub.app import create_app
from hub.demo.workspace import Workspace
from hub.services import Services
from tests.integration.policy_fixtures import ADMIN, CASES, CHANGE, GRANT, fresh_hub_database, grant, hub_services

READERS, IN_FLIGHT = 200, 16
CASE_LIST = (
    "{ civilAffairsAssistanceCases(first: 20, orderBy: [CASE_ID_ASC]) "
    "{ nodes { caseId recipientName recipientIdNumber } } }"
)
FIELDS = {"A": "recipientName", "B": "recipientIdNumber"}
MASKED_PATH = "civilAffairsAssistanceCases/nodes/*/{}"


@dataclass
class Running:
    services: Services
    tokens: dict[str, str]


@pytest.fixture
def running(demo_workspace: Workspace, tmp_path: Path) -> Running:
    url, tokens = fresh_hub_database(tmp_path)
    return Running(hub_services(demo_workspace, url), tokens)


def rows(response: httpx.Response) -> list[dict[str, Any]]:
    return list(response.json()["data"]["civilAffairsAssistanceCases"]["nodes"])


def state_of(body: dict[str, Any], plain: list[dict[str, Any]]) -> str:
    """Which field the response got plain: `A`, `B`, `both` or `neither`; checked against the
    values civil affairs reads, and against the masked paths the response reports."""
    got = body["data"]["civilAffairsAssistanceCases"]["nodes"]
    assert [n["caseId"] for n in got] == [p["caseId"] for p in plain]
    released = set()
    for label, name in FIELDS.items():
        values = [n[name] for n in got]
        if values == [p[name] for p in plain]:
            released.add(label)
        else:
            assert all("*" in v for v in values), values  # masked, not something else
    masked = {
        label for label, name in FIELDS.items() if MASKED_PATH.format(name) in body["extensions"]["access"]["masked"]
    }
    assert masked == set(FIELDS) - released, body["extensions"]["access"]
    return {frozenset("A"): "A", frozenset("B"): "B", frozenset(): "neither"}.get(frozenset(released), "both")


async def serve_and_race(running: Running) -> tuple[dict[int, str], list[tuple[int, str]], int]:
    """Run the app's lifespan, race readers against the admin's moves; return the state each
    version stands for, what each reader saw, and how many moves were made."""
    app = create_app(running.services)
    headers = {name: {"Authorization": f"Bearer {token}"} for name, token in running.tokens.items()}
    reader_headers = {**headers["health-app"], "X-Hub-Purpose": "health_care"}
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://hub", timeout=30) as client:

            async def admin(query: str, variables: dict[str, Any]) -> dict[str, Any]:
                response = await client.post(
                    "/graphql", json={"query": query, "variables": variables}, headers=headers[ADMIN]
                )
                assert response.status_code == 200, response.text
                body: dict[str, Any] = response.json()
                assert "errors" not in body, body["errors"]
                return body

            plain_response = await client.post(
                "/graphql", json={"query": CASE_LIST}, headers=headers["civil-affairs-app"]
            )
            plain = rows(plain_response)
            first = await admin(
                GRANT, {"grant": grant("move-0", "health", CASES, "health_care", FIELDS["A"]), "reason": "start at A"}
            )
            states = {int(first["data"]["grantAccess"]["version"]): "A"}
            done = asyncio.Event()
            moves = 0

            async def move() -> None:
                nonlocal moves
                current = "A"
                while not done.is_set():
                    target = "B" if current == "A" else "A"
                    edits = [
                        {"op": "REVOKE", "grantId": f"move-{moves}"},
                        {
                            "op": "GRANT",
                            "grant": grant(f"move-{moves + 1}", "health", CASES, "health_care", FIELDS[target]),
                        },
                    ]
                    body = await admin(CHANGE, {"edits": edits, "reason": f"move to {target}"})
                    states[int(body["data"]["changePolicy"]["version"])] = target
                    moves += 1
                    current = target
                    await asyncio.sleep(0.01)

            limit = asyncio.Semaphore(IN_FLIGHT)
            seen: list[tuple[int, str]] = []

            async def read() -> None:
                async with limit:
                    response = await client.post("/graphql", json={"query": CASE_LIST}, headers=reader_headers)
                assert response.status_code == 200, response.text
                body = response.json()
                assert "errors" not in body, body["errors"]
                seen.append((int(body["extensions"]["access"]["policyVersion"]), state_of(body, plain)))

            mover = asyncio.create_task(move())
            try:
                await asyncio.gather(*(read() for _ in range(READERS)))
                # On a loaded machine the reads can outrun the edits: keep reading (bounded)
                # until a few edits have run among them, so the race is really run.
                deadline = time.monotonic() + 15
                while moves < 3 and time.monotonic() < deadline:
                    await asyncio.gather(*(read() for _ in range(IN_FLIGHT)))
            finally:
                done.set()
                await mover
    return states, seen, moves


def test_requests_during_edits_see_exactly_one_consistent_state(running: Running) -> None:
    began = time.monotonic()

    states, seen, moves = asyncio.run(serve_and_race(running))

    # Every read answered (more than READERS where the edits were slow to start).
    assert len(seen) >= READERS
    assert {s for _, s in seen} <= {"A", "B"}, [s for _, s in seen if s not in ("A", "B")]
    mismatched = [(v, s, states.get(v)) for v, s in seen if states.get(v) != s]
    assert not mismatched, mismatched
    # The race happened: changes were applied while the reads ran, and they saw several.
    assert moves >= 3, f"only {moves} changes ran during the reads"
    assert len({v for v, _ in seen}) >= 3, "the reads did not span several policy versions"
    assert time.monotonic() - began < 60
