"""Registered apps and their tokens: stored hashed, with expiry, rotation and revocation, and
HTTP 401 with a GraphQL error body for anything but a live token."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import select, update
from sqlalchemy.engine import URL

from hub.auth.models import AppToken
from hub.auth.registry import AppError, digest
from hub.cli import main
from hub.db.engine import hub_engine, sessions
from tests.conftest import Hub, register


def run_sql(url: URL, work: Any) -> Any:
    async def go() -> Any:
        engine = hub_engine(url)
        try:
            async with sessions(engine)() as session, session.begin():
                return await work(session)
        finally:
            await engine.dispose()

    return asyncio.run(go())


def post(hub: Hub, headers: dict[str, str]) -> Any:
    return hub.client.post("/graphql", json={"query": "{ registryPersons { totalCount } }"}, headers=headers)


def assert_unauthenticated(response: Any) -> None:
    assert response.status_code == 401
    body = response.json()
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert "data" not in body


def test_missing_token_gets_401_with_graphql_error(hub: Hub) -> None:
    assert_unauthenticated(post(hub, {}))
    assert_unauthenticated(post(hub, {"Authorization": "Basic abc"}))


def test_unknown_token_gets_401(hub: Hub) -> None:
    assert_unauthenticated(post(hub, {"Authorization": "Bearer hub_not-a-real-token"}))


def test_expired_token_gets_401(hub: Hub) -> None:
    past = datetime.now(UTC) - timedelta(seconds=1)
    run_sql(hub.url, lambda s: s.execute(update(AppToken).values(expires_at=past)))
    assert_unauthenticated(post(hub, {"Authorization": f"Bearer {hub.token}"}))


def test_tokens_are_stored_hashed_never_plain(hub: Hub) -> None:
    stored = run_sql(hub.url, lambda s: s.scalar(select(AppToken.digest)))
    assert stored == digest(hub.token)
    assert hub.token not in stored


def test_healthz_answers_without_token(hub: Hub) -> None:
    response = hub.client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


DEMO_MANIFESTS = str(Path(__file__).resolve().parents[3] / "hub" / "demo" / "manifests")


def test_cli_create_list_rotate_revoke(hub: Hub, monkeypatch: Any) -> None:
    env = {"HUB_DATABASE_URL": hub.url.render_as_string(), "HUB_MANIFESTS": DEMO_MANIFESTS}
    runner = CliRunner()
    created = runner.invoke(
        main,
        [
            "apps",
            "create",
            "district-app",
            "--department",
            "civil_affairs",
            "--role",
            "district_office",
            "--attribute",
            "district=330102",
        ],
        env=env,
    )
    assert created.exit_code == 0, created.output
    first = created.stdout.strip().splitlines()[-1]
    assert post(hub, {"Authorization": f"Bearer {first}"}).status_code == 200

    listing = runner.invoke(main, ["apps", "list"], env=env)
    assert "district-app\tcivil_affairs\troles=district_office\tattributes=district=330102" in listing.output
    assert first not in listing.output

    rotated = runner.invoke(main, ["apps", "rotate", "district-app"], env=env)
    second = rotated.output.strip()
    assert_unauthenticated(post(hub, {"Authorization": f"Bearer {first}"}))
    assert post(hub, {"Authorization": f"Bearer {second}"}).status_code == 200

    revoked = runner.invoke(main, ["apps", "revoke", "district-app"], env=env)
    assert revoked.output.strip() == "revoked 1 token(s) of district-app"
    assert_unauthenticated(post(hub, {"Authorization": f"Bearer {second}"}))


def test_rotation_with_grace_keeps_the_old_token_working_for_a_while(hub: Hub) -> None:
    env = {"HUB_DATABASE_URL": hub.url.render_as_string()}
    runner = CliRunner()
    runner.invoke(main, ["apps", "rotate", "test-app", "--grace-hours", "1"], env=env)
    assert post(hub, {"Authorization": f"Bearer {hub.token}"}).status_code == 200


def test_cli_errors_are_one_line_without_traceback(hub: Hub) -> None:
    env = {"HUB_DATABASE_URL": hub.url.render_as_string()}
    runner = CliRunner()
    result = runner.invoke(main, ["apps", "revoke", "nobody"], env=env)
    assert result.exit_code == 1
    assert result.output.strip() == "error: no app named 'nobody' is registered"
    env["HUB_MANIFESTS"] = DEMO_MANIFESTS
    duplicate = runner.invoke(main, ["apps", "create", "test-app", "--department", "health"], env=env)
    assert duplicate.output.strip() == "error: an app named 'test-app' is already registered"


@pytest.mark.parametrize(
    ("options", "says"),
    [
        (
            ["--department", "healthh"],
            "'healthh' is not a known department; known: audit, citizen_portal, civil_affairs",
        ),
        (["--department", "Health"], "'Health' is not a known department"),
        (["--department", "health", "--role", "superuser"], "'superuser' is not a known role; known: admin"),
        (["--department", "health", "--role", "department_app", "--role", "Admin"], "'Admin' is not a known role"),
    ],
)
def test_cli_registration_with_an_unknown_department_or_role_is_refused_with_the_known_ones(
    hub: Hub, options: list[str], says: str
) -> None:
    env = {"HUB_DATABASE_URL": hub.url.render_as_string(), "HUB_MANIFESTS": DEMO_MANIFESTS}
    result = CliRunner().invoke(main, ["apps", "create", "new-app", *options], env=env)
    assert result.exit_code == 1
    assert says in result.output
    listing = CliRunner().invoke(main, ["apps", "list"], env=env)
    assert "new-app" not in listing.output


def test_registering_the_same_name_twice_is_refused(hub_db: URL) -> None:
    register(hub_db, "one")
    with pytest.raises(AppError, match="already registered"):
        register(hub_db, "one")
