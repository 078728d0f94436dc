"""Migration 0012 (the trail's person rows keep each blind index as its 32 raw bytes) on a hub
database holding a trail written at 0011, on SQLite and PostgreSQL: after `hub migrate` a citizen
still finds those events in their access history, with proofs that verify, and `hub audit
verify` passes; the downgrade to 0011 gives back the very hex that was written, each event's
persons digest still matching its person rows."""

from __future__ import annotations

import asyncio
import base64
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy.engine import URL
from starlette.testclient import TestClient

from hub.app import create_app
from hub.audit.event import Event, person_lines, persons_digest
from hub.audit.merkle import Frontier
from hub.audit.rows import rows_at, stage
from hub.audit.store import EVENTS, GROW, NODES
from hub.db.engine import hub_engine, sessions
from hub.demo.callers import ensure_callers
from hub.demo.workspace import Workspace, open_workspace_keyring
from hub.migrate import alembic_config
from hub.migrate import head as newest_revision
from tests.integration.policy_fixtures import hub_services
from tests.integration.test_person_history import HISTORY, included
from tests.servers import fresh_database

PORTAL, SERVICE = "citizen-portal", "citizen_service"
# Resident ID numbers of three persons; the first is in two events, the third in none.
NUMBERS = ("110101199003074518", "44030519851120632X", "320102197707153310")
# The person table as revision 0011 has it: the blind index as 64 hex characters.
PERSON_0011 = sa.table(
    "hub_audit_person",
    sa.column("position", sa.BigInteger),
    sa.column("person", sa.String),
    sa.column("at_us", sa.BigInteger),
    sa.column("entities", sa.Text),
)


def _event(n: int, persons: dict[str, str]) -> Event:
    return Event(
        at_us=1_796_000_000_000_000 + n,
        principal="civil-affairs-app",
        department="civil_affairs",
        purpose="social_assistance",
        operation_hash=f"{n:064x}",
        operation_name="People",
        document_id=None,
        outcome="served",
        status=200,
        code=None,
        policy_version="1",
        released={"fields": [["population.Person", "name", "PLAIN", len(persons)]], "rows": {"population.Person": 2}},
        persons=persons,
    )


async def _write_at_0011(url: URL, events: list[Event]) -> None:
    """Append `events` as the hub at revision 0011 stored them: person rows in hex."""
    staged = [stage(event) for event in events]
    engine = hub_engine(url)
    try:
        async with engine.begin() as connection:
            size = (await connection.execute(GROW, {"count": len(staged)})).scalar_one()
            assert size == len(staged), "a fresh log"
            rows = rows_at(staged, 0, Frontier())
            await connection.execute(EVENTS, rows.events)
            await connection.execute(PERSON_0011.insert(), [{**p, "person": p["person"].hex()} for p in rows.persons])
            await connection.execute(NODES, rows.nodes)
    finally:
        await engine.dispose()


async def _person_rows(url: URL) -> list[tuple[int, Any, str]]:
    engine = hub_engine(url)
    try:
        async with engine.connect() as connection:
            found = await connection.execute(
                sa.text("SELECT position, person, entities FROM hub_audit_person ORDER BY position, person")
            )
            return [(p, person, e) for p, person, e in found]
    finally:
        await engine.dispose()


async def _digests(url: URL) -> dict[int, str]:
    engine = hub_engine(url)
    try:
        async with engine.connect() as connection:
            found = await connection.execute(sa.text("SELECT position, persons_digest FROM hub_audit_event"))
            return {p: d for p, d in found}
    finally:
        await engine.dispose()


def _hub(command_args: list[str], url: URL, workspace: Workspace) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    environ.update(
        HUB_DATABASE_URL=url.render_as_string(hide_password=False),
        HUB_MASTER_KEY_FILE=str(workspace.master_key_file),
    )
    hub = str(Path(sys.executable).with_name("hub"))
    return subprocess.run([hub, *command_args], env=environ, capture_output=True, text=True, timeout=300)


@pytest.fixture(params=["sqlite", "postgresql"])
def at_0011(request: pytest.FixtureRequest, tmp_path: Path) -> URL:
    """A hub database at revision 0011."""
    if request.param == "sqlite":
        url = URL.create("sqlite+aiosqlite", database=str(tmp_path / "hub.db"))
    else:
        url = fresh_database("postgresql", "hub_it_person_migration")
    command.upgrade(alembic_config(url), "0011")
    return url


def test_a_trail_written_at_0011_is_found_and_verifies_after_the_migration_and_comes_back_as_hex(
    at_0011: URL, demo_workspace: Workspace, tmp_path: Path
) -> None:
    keyring, _ = asyncio.run(open_workspace_keyring(demo_workspace))
    index = keyring.blind_index("resident_id")
    hexed = [index.hex(number) for number in NUMBERS]
    events = [
        _event(0, {hexed[0]: "population.Person", hexed[1]: "population.Person"}),
        _event(1, {hexed[0]: "civil_affairs.AssistanceCase,population.Person"}),
        _event(2, {}),
    ]
    asyncio.run(_write_at_0011(at_0011, events))
    written = asyncio.run(_person_rows(at_0011))
    assert sorted(p for _, p, _ in written) == sorted([hexed[0], hexed[1], hexed[0]])

    migrated = _hub(["migrate"], at_0011, demo_workspace)
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    assert f"from revision 0011 to {newest_revision()}" in migrated.stdout
    assert all(isinstance(p, bytes) and len(p) == 32 for _, p, _ in asyncio.run(_person_rows(at_0011)))

    services = hub_services(demo_workspace, at_0011)
    tokens = asyncio.run(_register(at_0011, tmp_path))
    headers = {"Authorization": f"Bearer {tokens[PORTAL]}", "X-Hub-Purpose": SERVICE}
    with TestClient(create_app(services)) as client:
        # A request served at 0012 touches persons too: its rows must come back as hex as well.
        read = client.post(
            "/graphql",
            json={"query": "{ populationPersons(first: 3) { nodes { idNumber } } }"},
            headers={"Authorization": f"Bearer {tokens['civil-affairs-app']}", "X-Hub-Purpose": "social_assistance"},
        ).json()
        served = [index.hex(node["idNumber"]) for node in read["data"]["populationPersons"]["nodes"]]
        assert len(served) == 3, read
        answers = [
            client.post("/graphql", json={"query": HISTORY, "variables": {"id": number}}, headers=headers).json()
            for number in NUMBERS
        ]
    for answer in answers:
        assert "errors" not in answer, answer
    found = [answer["data"]["personAccessHistory"] for answer in answers]
    assert [[e["position"] for e in f["entries"]] for f in found] == [[1, 0], [0], []]
    assert found[0]["entries"][0]["entities"] == ["civil_affairs.AssistanceCase", "population.Person"]
    for history in found[:2]:
        head = history["treeHead"]
        for entry in history["entries"]:
            path = [base64.b64decode(p) for p in entry["auditPath"]]
            leaf = base64.b64decode(entry["leaf"])
            assert included(entry["position"], head["treeSize"], leaf, path, base64.b64decode(head["rootHash"]))

    verified = _hub(["audit", "verify"], at_0011, demo_workspace)
    assert verified.returncode == 0, verified.stdout + verified.stderr

    command.downgrade(alembic_config(at_0011), "0011")
    back = asyncio.run(_person_rows(at_0011))
    assert sorted(p for position, p, _ in back if position < 3) == sorted(p for _, p, _ in written)
    assert set(served) <= {p for position, p, _ in back if position >= 3}
    assert all(isinstance(p, str) and len(p) == 64 and p == p.lower() for _, p, _ in back)
    # Every event's persons digest (the 0011 verifier's check) still matches its person rows,
    # those of the requests served at 0012 included.
    lines: dict[int, list[tuple[str, str]]] = {}
    for position, person, entities in back:
        lines.setdefault(position, []).append((person, entities))
    for position, digest in asyncio.run(_digests(at_0011)).items():
        assert persons_digest(person_lines(lines.get(position, []))) == digest, position


async def _register(url: URL, folder: Path) -> dict[str, str]:
    engine = hub_engine(url)
    try:
        return await ensure_callers(sessions(engine), folder / "demo-tokens.json")
    finally:
        await engine.dispose()
