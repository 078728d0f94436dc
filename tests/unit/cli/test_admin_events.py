"""Commands that change what callers may do leave an admin event in the access trail, written
in the transaction that makes the change: app tokens created, rotated and revoked, trusted
documents registered and removed, data keys rotated and rewrapped. A dry run or a refused command
leaves none, and the log still verifies."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
from click.testing import CliRunner
from sqlalchemy import select
from sqlalchemy.engine import URL

from hub.audit.models import AuditEvent
from hub.audit.verify import verify_log
from hub.cli import main
from hub.db.engine import hub_engine, sessions
from tests.conftest import FIXTURES
from tests.unit.cli.test_keys import env_of, keys_command, populate

PEOPLE = "query People { registryPersons(first: 2) { nodes { name } } }"


def cli(url: URL, *args: str) -> str:
    env = {
        "HUB_DATABASE_URL": url.render_as_string(hide_password=False),
        "HUB_MANIFESTS": str(FIXTURES / "manifests"),
    }
    result = CliRunner().invoke(main, list(args), env=env)
    assert result.exit_code == 0, result.output
    return result.output


def admin_events(url: URL) -> list[dict[str, Any]]:
    async def read() -> list[dict[str, Any]]:
        engine = hub_engine(url)
        try:
            async with sessions(engine)() as session:
                rows = await session.scalars(select(AuditEvent).order_by(AuditEvent.position))
                return [
                    {
                        "kind": r.kind,
                        "principal": r.principal,
                        "outcome": r.outcome,
                        "concerns": r.concerns,
                        **orjson.loads(r.action or "{}"),
                    }
                    for r in rows
                ]
        finally:
            await engine.dispose()

    return asyncio.run(read())


def verifies(url: URL) -> bool:
    async def check() -> bool:
        engine = hub_engine(url)
        try:
            return (await verify_log(sessions(engine), None)).ok
        finally:
            await engine.dispose()

    return asyncio.run(check())


def test_app_token_commands_are_admin_events_naming_the_app_and_its_department(hub_db: URL) -> None:
    created = cli(hub_db, "apps", "create", "trail-app", "--department", "registry", "--role", "department_app")
    rotated = cli(hub_db, "apps", "rotate", "trail-app", "--grace-hours", "1")
    tokens = [created.splitlines()[1].strip(), rotated.strip()]
    cli(hub_db, "apps", "revoke", "trail-app")
    found = admin_events(hub_db)
    assert [e["name"] for e in found] == ["app.create", "app.rotate", "app.revoke"]
    assert all(e["kind"] == "admin" and e["outcome"] == "applied" for e in found)
    assert all(e["principal"].startswith("cli:") and e["target"] == "trail-app" for e in found)
    # The app's department is concerned (its steward reads these), the platform too.
    assert all(e["concerns"] == ",platform,registry," for e in found)
    assert found[0]["edits"] == [
        {"op": "create", "department": "registry", "roles": ["department_app"], "attributes": {}, "days": 90}
    ]
    # No token is in the trail, nor its first characters (the hint `apps list` shows).
    assert all(len(t) > 20 and t[:8] not in str(found) for t in tokens)
    assert verifies(hub_db)


def test_trusted_documents_registered_and_removed_are_admin_events(hub_db: URL, tmp_path: Path) -> None:
    file = tmp_path / "people.graphql"
    file.write_text(PEOPLE, encoding="utf-8")
    document = cli(hub_db, "documents", "register", "--dry-run", str(file)).split("\t")[0]
    assert admin_events(hub_db) == []  # a dry run registers nothing and records nothing
    registered = cli(hub_db, "documents", "register", str(file)).split("\t")[0]
    assert registered == document
    cli(hub_db, "documents", "remove", document)
    found = admin_events(hub_db)
    assert [(e["name"], e["target"]) for e in found] == [
        ("document.register", document),
        ("document.remove", document),
    ]
    assert all(e["concerns"] == ",*," for e in found)
    assert verifies(hub_db)


def test_a_key_rotation_is_one_admin_event_naming_each_department_and_version(hub_db: URL) -> None:
    populate(hub_db)
    assert keys_command(env_of(hub_db), "rotate", "--dry-run").exit_code == 0
    assert admin_events(hub_db) == []
    assert keys_command(env_of(hub_db), "rotate", "--department", "health").exit_code == 0
    (event,) = admin_events(hub_db)
    assert event["name"] == "keys.rotate" and event["concerns"] == ",health,platform,"
    assert event["edits"] == [{"op": "rotate", "department": "health", "from": 1, "to": 2}]
    assert verifies(hub_db)
