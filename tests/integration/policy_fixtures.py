"""Hubs of their own for tests that change the access policy: the session's demo department
databases with a fresh, migrated hub database, so a policy edit never reaches another test.
The fresh database gets the demo's keys (a backup of the workspace's, restored), since the
department data is encrypted under them; it is served with the workspace's master key.

Also the admin API's documents and small helpers to call it as the demo callers do."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.engine import URL
from starlette.testclient import TestClient

from hub.app import create_app
from hub.config import load_settings
from hub.db.engine import hub_engine, sessions
from hub.demo.callers import ensure_callers
from hub.demo.workspace import Workspace, share_keys
from hub.migrate import upgrade
from hub.services import Services, build_services
from tests.conftest import Hub

ADMIN = "platform-admin"
STEWARD = "civil-affairs-steward"
CASES = "civil_affairs.AssistanceCase"

CHANGE = """
mutation($edits: [PolicyEditInput!]!, $reason: String!, $dryRun: Boolean! = false) {
  changePolicy(edits: $edits, reason: $reason, dryRun: $dryRun) {
    applied version exposures { department roles purpose field before after }
  }
}"""
GRANT = """
mutation($grant: GrantInput!, $reason: String!, $dryRun: Boolean! = false) {
  grantAccess(grant: $grant, reason: $reason, dryRun: $dryRun) {
    applied version exposures { department roles purpose field before after }
  }
}"""
REVOKE = "mutation($id: ID!, $reason: String!) { revokeGrant(id: $id, reason: $reason) { applied version } }"
ASSIGN = """
mutation($app: String!, $roles: [String!]!, $reason: String!) { assignRoles(app: $app, roles: $roles, reason: $reason) }
"""
POLICY = "{ accessPolicy { version grants { id department entity field purpose grantedBy } } }"
HISTORY = """
query($first: Int!) {
  policyChanges(first: $first) { id at actor actorDepartment reason edits outcome detail version repeats }
}"""
ROLES = "{ roleAssignments { app department roles } }"


def fresh_hub_database(folder: Path) -> tuple[URL, dict[str, str]]:
    """A new hub database in `folder`, migrated, with the demo callers and their tokens."""
    url = URL.create("sqlite+aiosqlite", database=str(folder / "hub.db"))
    upgrade(url)

    async def register() -> dict[str, str]:
        engine = hub_engine(url)
        try:
            return await ensure_callers(sessions(engine), folder / "demo-tokens.json")
        finally:
            await engine.dispose()

    return url, asyncio.run(register())


def hub_services(workspace: Workspace, url: URL, **settings_: object) -> Services:
    """The hub's services over the demo's department databases and the hub database at `url`,
    which gets the demo's keys unless it has keys already; `settings_` override settings."""
    asyncio.run(share_keys(workspace, url))
    settings = load_settings(
        {},
        database_url=url.render_as_string(),
        manifests_dir=workspace.manifests,
        master_key_file=workspace.master_key_file,
        **settings_,
    )
    return build_services(settings)


@contextmanager
def serving(services: Services, url: URL, tokens: dict[str, str]) -> Iterator[Hub]:
    """The hub over HTTP (its lifespan running), queried as the admin unless a test picks
    another caller."""
    with TestClient(create_app(services)) as client:
        yield Hub(client, tokens[ADMIN], url, tokens)


def own_hub(workspace: Workspace, folder: Path) -> Iterator[Hub]:
    """A hub with a hub database of its own, for a function-scoped fixture."""
    url, tokens = fresh_hub_database(folder)
    with serving(hub_services(workspace, url), url, tokens) as hub:
        yield hub


def grant(
    grant_id: str,
    department: str,
    entity: str,
    purpose: str,
    field: str | None = None,
    days: float = 30,
    **extra: Any,
) -> dict[str, Any]:
    """A GrantInput active from a minute ago for `days` days."""
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    return {
        "id": grant_id,
        "department": department,
        "entity": entity,
        "field": field,
        "purpose": purpose,
        "validFrom": start.isoformat(),
        "validUntil": (start + timedelta(days=days)).isoformat(),
        **extra,
    }


def rule(role: str, domain: str, obj: str, action: str, effect: str = "allow") -> dict[str, str]:
    return {"role": role, "domain": domain, "object": obj, "action": action, "effect": effect}


def data(result: dict[str, Any]) -> Any:
    """The data of a result that must have no errors."""
    assert "errors" not in result, result["errors"]
    return result["data"]


def error(result: dict[str, Any]) -> dict[str, Any]:
    """The single error of a refused operation (its data is null)."""
    assert result.get("data") is None, result
    (only,) = result["errors"]
    return dict(only)


def policy(hub: Hub) -> dict[str, Any]:
    return dict(data(hub.as_caller(ADMIN).query(POLICY))["accessPolicy"])


def version(hub: Hub) -> int:
    return int(policy(hub)["version"])


def history(hub: Hub, first: int = 50) -> list[dict[str, Any]]:
    return list(data(hub.as_caller(ADMIN).query(HISTORY, {"first": first}))["policyChanges"])


def change(hub: Hub, caller: str, edits: list[dict[str, Any]], reason: str, dry_run: bool = False) -> Any:
    return hub.as_caller(caller).query(CHANGE, {"edits": edits, "reason": reason, "dryRun": dry_run})
