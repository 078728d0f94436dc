"""The full demo (seven departments, realistic scale) served by the hub over SQLite, and the
same data loaded into PostgreSQL and MariaDB, each created once per test session.

The demo's sensitive fields are stored encrypted: every hub here is served with the hub database
holding the keys they were encrypted under and the master key wrapping those (the workspace's
`master.key`). The PostgreSQL and MariaDB copies are encrypted under the same keys."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from starlette.testclient import TestClient

from hub.app import create_app
from hub.config import Settings, load_settings
from hub.db.engine import hub_engine, sessions
from hub.demo.callers import ensure_callers
from hub.demo.load import load_demo
from hub.demo.workspace import DEPARTMENTS, Workspace, create_workspace, open_workspace_keyring, retarget_manifests
from hub.services import Services, build_services
from tests.conftest import Hub
from tests.servers import fresh_database


@pytest.fixture(scope="session")
def demo_workspace(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    root = tmp_path_factory.mktemp("demo")
    # Makes the master key, and the hub database (migrated) with the keys the data is under.
    return asyncio.run(create_workspace(root))


def _tokens(workspace: Workspace) -> dict[str, str]:
    async def run() -> dict[str, str]:
        engine = hub_engine(workspace.hub_database)
        try:
            return await ensure_callers(sessions(engine), workspace.token_file)
        finally:
            await engine.dispose()

    return asyncio.run(run())


# The spine's integration tests read as the civil affairs app stating the purpose its grants
# name: the grants release the persons it needs plain, so filters and order may use them.
CALLER, PURPOSE = "civil-affairs-app", "social_assistance"


def _serve(services: Services, tokens: dict[str, str]) -> Iterator[Hub]:
    with TestClient(create_app(services)) as client:
        yield Hub(client, tokens[CALLER], services.settings.database_url, tokens, PURPOSE)


@pytest.fixture(scope="session")
def demo_services(demo_workspace: Workspace) -> Services:
    settings = load_settings(
        {},
        database_url=demo_workspace.hub_database.render_as_string(),
        manifests_dir=demo_workspace.manifests,
        master_key_file=demo_workspace.master_key_file,
    )
    return build_services(settings)


@pytest.fixture(scope="session")
def demo_hub(demo_services: Services, demo_workspace: Workspace) -> Iterator[Hub]:
    yield from _serve(demo_services, _tokens(demo_workspace))


def _loaded_demo(server: str, demo_workspace: Workspace) -> str:
    """The URL of a fresh database on `server` holding the demo's data, encrypted under the
    workspace's keys."""
    url = fresh_database(server, "hub_it_demo")
    rendered = url.render_as_string(hide_password=False)

    async def load() -> None:
        keyring, _ = await open_workspace_keyring(demo_workspace)
        await load_demo(dict.fromkeys(DEPARTMENTS, rendered), keyring)

    asyncio.run(load())
    return rendered


@pytest.fixture(scope="session")
def postgres_demo(demo_workspace: Workspace) -> str:
    return _loaded_demo("postgresql", demo_workspace)


@pytest.fixture(scope="session")
def mariadb_demo(demo_workspace: Workspace) -> str:
    return _loaded_demo("mariadb", demo_workspace)


def loaded_demo_settings(
    url: str, demo_workspace: Workspace, tmp: Path, environ: dict[str, str] | None = None
) -> Settings:
    """Settings of a hub over the demo loaded at `url` (every department in one database),
    with the workspace's hub database unless `environ` names another, and more settings from
    `environ`."""
    manifests = retarget_manifests(tmp, {"url_env": "HUB_IT_URL"})
    return load_settings(
        {"HUB_DATABASE_URL": demo_workspace.hub_database.render_as_string(), **(environ or {}), "HUB_IT_URL": url},
        manifests_dir=manifests,
        master_key_file=demo_workspace.master_key_file,
    )


@pytest.fixture(scope="session")
def postgres_hub(
    postgres_demo: str, demo_workspace: Workspace, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Hub]:
    settings = loaded_demo_settings(postgres_demo, demo_workspace, tmp_path_factory.mktemp("pg-manifests"))
    yield from _serve(build_services(settings), _tokens(demo_workspace))


@pytest.fixture(scope="session")
def mariadb_hub(
    mariadb_demo: str, demo_workspace: Workspace, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Hub]:
    settings = loaded_demo_settings(mariadb_demo, demo_workspace, tmp_path_factory.mktemp("maria-manifests"))
    yield from _serve(build_services(settings), _tokens(demo_workspace))


# Where the spread hub serves each department; the others stay on SQLite.
SPREAD = {"finance": "HUB_IT_PG", "population": "HUB_IT_PG", "hotline": "HUB_IT_MARIA", "health": "HUB_IT_MARIA"}


@pytest.fixture(scope="session")
def mixed_hub(
    postgres_demo: str, mariadb_demo: str, demo_workspace: Workspace, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Hub]:
    """The demo with finance and population on PostgreSQL, hotline and health on MariaDB, and
    civil affairs, human resources and education on SQLite: every relation filter below
    crosses databases of different kinds."""
    folder = tmp_path_factory.mktemp("spread-manifests")
    for source in sorted(demo_workspace.manifests.glob("*.yaml")):
        document = yaml.safe_load(source.read_text(encoding="utf-8"))
        connection = document["connection"]
        kept = {k: v for k, v in connection.items() if k not in ("sqlite_path", "url_env")}
        if document["department"] in SPREAD:
            kept["url_env"] = SPREAD[document["department"]]
        else:
            kept["sqlite_path"] = str((demo_workspace.manifests / connection["sqlite_path"]).resolve())
        document["connection"] = kept
        (folder / source.name).write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    settings = load_settings(
        {
            "HUB_DATABASE_URL": demo_workspace.hub_database.render_as_string(),
            "HUB_IT_PG": postgres_demo,
            "HUB_IT_MARIA": mariadb_demo,
        },
        manifests_dir=folder,
        master_key_file=demo_workspace.master_key_file,
    )
    yield from _serve(build_services(settings), _tokens(demo_workspace))
