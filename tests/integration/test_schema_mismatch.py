"""A hub whose manifest does not match one department's database (a typo in a column) serves
that department as DEPARTMENT_UNAVAILABLE, names the mismatch in /readyz, and serves the other
departments as before."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from hub.app import create_app
from hub.config import load_settings
from hub.demo.workspace import Workspace
from hub.services import build_services
from tests.demo_copies import copy_demo_manifests, copy_hub_database
from tests.integration.conftest import CALLER, PURPOSE, _tokens

QUERY = "{ populationPersons(first: 2) { nodes { name } } hotlineRequests(first: 2) { nodes { requestId } } }"


@pytest.fixture
def client(demo_workspace: Workspace, tmp_path: Path) -> Iterator[tuple[TestClient, str]]:
    def typo(document: dict[str, Any]) -> None:
        if document["department"] == "hotline":
            request = next(item for item in document["entities"] if item["name"] == "Request")
            field = next(item for item in request["fields"] if item["name"] == "receivedAt")
            field["column"] = "recieved_at"

    copy_demo_manifests(demo_workspace, tmp_path, typo)
    token = _tokens(demo_workspace)[CALLER]
    # A hub database of its own: the shared one records the demo's catalog hash (hub/instances),
    # against which these manifests would leave the whole hub not ready.
    database = copy_hub_database(demo_workspace, tmp_path / "hub.db")
    settings = load_settings(
        {},
        database_url=f"sqlite+aiosqlite:///{database}",
        manifests_dir=tmp_path,
        master_key_file=demo_workspace.master_key_file,
    )
    with TestClient(create_app(build_services(settings))) as test_client:
        yield test_client, token


def test_mismatched_department_is_unavailable_and_the_others_are_served(client: tuple[TestClient, str]) -> None:
    test_client, token = client
    headers = {"Authorization": f"Bearer {token}", "X-Hub-Purpose": PURPOSE}
    answer = test_client.post("/graphql", json={"query": QUERY}, headers=headers).json()
    assert len(answer["data"]["populationPersons"]["nodes"]) == 2
    assert answer["data"]["hotlineRequests"] is None
    [error] = answer["errors"]
    assert error["path"] == ["hotlineRequests"]
    assert error["extensions"]["code"] == "DEPARTMENT_UNAVAILABLE"
    # The caller learns nothing of the department's tables.
    assert "recieved_at" not in str(answer) and "hl_request" not in str(answer)


def test_readyz_names_the_mismatch(client: tuple[TestClient, str]) -> None:
    test_client, _ = client
    body = test_client.get("/readyz").json()
    hotline = body["departments"]["hotline"]
    assert (hotline["state"], hotline["schema"]) == ("schema_mismatch", "mismatch")
    # The mismatch, not the table's other columns: anyone may read /readyz.
    assert hotline["mismatches"] == [
        "hotline.yaml: entity Request, field receivedAt: column recieved_at is not in table hl_request"
    ]
    assert body["departments"]["population"]["schema"] == "matches"
    assert body["status"] == "ready"
