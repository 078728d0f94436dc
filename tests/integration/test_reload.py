"""`hub reload` (the admin mutation `reloadManifests`; SIGHUP to `hub serve`): manifests read
again and served without a restart. Under a steady load no request fails across the swap, and
the new field is served afterwards; a bad manifest leaves the old catalog serving and the
answer names the file, the entity and the field; only admins may reload."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from click.testing import CliRunner
from sqlalchemy.engine import URL

from hub.app import create_app, invalid_trusted_documents
from hub.catalog import load_catalog
from hub.cli.main import main
from hub.config import Settings, load_settings
from hub.db.engine import hub_engine, sessions
from hub.demo.workspace import Workspace
from hub.reload import Reloadable
from hub.services import build_services
from hub.trusted.service import register_document
from tests.conftest import Hub
from tests.demo_copies import copy_demo_manifests, copy_hub_database
from tests.integration.conftest import _tokens

LIST = "{ financeBudgetLines(first: 20) { nodes { lineId amount } } }"
WITH_APPROVED = "{ financeBudgetLines(first: 3) { nodes { lineId approvedAt } } }"
RELOAD = "mutation { reloadManifests { reloaded entities error invalidDocuments } }"


def _without_approval_date(document: dict[str, Any]) -> None:
    if document["department"] == "finance":
        line = document["entities"][0]
        line["fields"] = [f for f in line["fields"] if f["name"] != "approvedAt"]


@pytest.fixture
def folder(demo_workspace: Workspace, tmp_path: Path) -> Path:
    return copy_demo_manifests(demo_workspace, tmp_path / "manifests", _without_approval_date)


@pytest.fixture
def settings(demo_workspace: Workspace, folder: Path) -> Settings:
    return load_settings(
        {},
        database_url=demo_workspace.hub_database.render_as_string(),
        manifests_dir=folder,
        master_key_file=demo_workspace.master_key_file,
    )


def _hub(settings: Settings) -> Reloadable:
    return Reloadable(
        lambda: load_catalog(settings.manifests_dir),
        lambda c: build_services(settings, c),
        create_app,
        invalid_trusted_documents,
    )


def _client(hub: Reloadable) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=hub), base_url="http://hub")


async def _ask(client: httpx.AsyncClient, token: str, query: str) -> tuple[int, Any]:
    response = await client.post("/graphql", json={"query": query}, headers={"Authorization": f"Bearer {token}"})
    return response.status_code, response.json()


def _restore_approval_date(folder: Path, demo_workspace: Workspace) -> None:
    source = yaml.safe_load((demo_workspace.manifests / "finance.yaml").read_text(encoding="utf-8"))
    copied = yaml.safe_load((folder / "finance.yaml").read_text(encoding="utf-8"))
    copied["entities"][0]["fields"] = source["entities"][0]["fields"]
    (folder / "finance.yaml").write_text(yaml.safe_dump(copied, allow_unicode=True), encoding="utf-8")


def test_a_reload_under_load_fails_no_request_and_serves_the_new_field(
    settings: Settings, folder: Path, demo_workspace: Workspace
) -> None:
    tokens = _tokens(demo_workspace)
    reader, admin = tokens["auditor"], tokens["platform-admin"]

    async def scenario() -> tuple[list[tuple[int, Any]], Any, Any, Any]:
        async with _hub(settings) as hub, _client(hub) as client:
            _, before = await _ask(client, reader, WITH_APPROVED)
            counted = (hub.services.rates, hub.services.in_flight)
            assert None not in counted
            answers: list[tuple[int, Any]] = []
            stop = asyncio.Event()

            async def load() -> None:
                while not stop.is_set():
                    answers.append(await _ask(client, reader, LIST))

            workers = [asyncio.create_task(load()) for _ in range(8)]
            await asyncio.sleep(0.5)
            _restore_approval_date(folder, demo_workspace)
            _, reloaded = await _ask(client, admin, RELOAD)
            await asyncio.sleep(0.5)
            stop.set()
            await asyncio.gather(*workers)
            _, after = await _ask(client, reader, WITH_APPROVED)
            # Counted per caller in memory: carried over, not started again.
            assert (hub.services.rates, hub.services.in_flight) == counted
            assert "approvedAt" in {f.name for f in hub.services.catalog.entity("finance.BudgetLine").fields.values()}
        return answers, before, reloaded, after

    answers, before, reloaded, after = asyncio.run(scenario())
    assert before["errors"][0]["message"].startswith("Cannot query field 'approvedAt'")
    assert reloaded["data"] == {
        "reloadManifests": {"reloaded": True, "entities": 15, "error": None, "invalidDocuments": []}
    }
    assert len(answers) > 20
    assert [status for status, _ in answers] == [200] * len(answers)
    assert all("errors" not in body and len(body["data"]["financeBudgetLines"]["nodes"]) == 20 for _, body in answers)
    dates = [node["approvedAt"] for node in after["data"]["financeBudgetLines"]["nodes"]]
    assert len(dates) == 3 and all(isinstance(d, str) and d for d in dates)


@pytest.mark.parametrize(
    ("old", "new", "error"),
    [
        ("type: Decimal", "type: Money", "finance.yaml: entity BudgetLine, field amount, type: Input should be"),
        (
            "column: fiscal_year",
            "column: fiscal_yaer",
            "finance.yaml: entity BudgetLine, field fiscalYear: column fiscal_yaer is not in table fin_budget_line",
        ),
    ],
)
def test_a_bad_manifest_keeps_the_old_catalog_serving_and_says_where(
    settings: Settings, folder: Path, demo_workspace: Workspace, old: str, new: str, error: str
) -> None:
    tokens = _tokens(demo_workspace)
    reader, admin = tokens["auditor"], tokens["platform-admin"]
    manifest = folder / "finance.yaml"

    async def scenario() -> tuple[Any, Any]:
        async with _hub(settings) as hub, _client(hub) as client:
            manifest.write_text(manifest.read_text(encoding="utf-8").replace(old, new, 1), encoding="utf-8")
            _, reloaded = await _ask(client, admin, RELOAD)
            _, still = await _ask(client, reader, LIST.replace("amount", "amount fiscalYear"))
        return reloaded, still

    reloaded, still = asyncio.run(scenario())
    report = reloaded["data"]["reloadManifests"]
    assert report["reloaded"] is False
    assert report["error"].startswith(error)
    assert str(folder) not in report["error"]
    assert "errors" not in still
    assert all(isinstance(node["fiscalYear"], int) for node in still["data"]["financeBudgetLines"]["nodes"])


def test_only_an_admin_may_reload(settings: Settings, demo_workspace: Workspace) -> None:
    tokens = _tokens(demo_workspace)

    async def scenario() -> Any:
        async with _hub(settings) as hub, _client(hub) as client:
            return (await _ask(client, tokens["auditor"], RELOAD))[1]

    refused = asyncio.run(scenario())
    assert refused["data"] is None
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert refused["errors"][0]["message"] == "only admins reload the manifests"


def test_sighup_and_hub_reload_reach_a_real_hub_serve(
    settings: Settings, folder: Path, demo_workspace: Workspace
) -> None:
    tokens = _tokens(demo_workspace)
    port = 18871
    environ = {
        **os.environ,
        "HUB_DATABASE_URL": settings.database_url.render_as_string(hide_password=False),
        "HUB_MANIFESTS": str(folder),
        "HUB_MASTER_KEY_FILE": str(demo_workspace.master_key_file),
    }
    environ.pop("HUB_MASTER_KEY", None)
    server = subprocess.Popen(
        [sys.executable, "-m", "hub.cli", "serve", "--port", str(port)],
        env=environ,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}/graphql"

    def ask(query: str, token: str) -> Any:
        for _ in range(240):
            assert server.poll() is None, "the hub stopped"
            try:
                return httpx.post(
                    endpoint, json={"query": query}, headers={"Authorization": f"Bearer {token}"}, timeout=30
                ).json()
            except httpx.TransportError:
                time.sleep(0.25)
        raise AssertionError("the hub did not answer within a minute")

    try:
        assert "errors" in ask(WITH_APPROVED, tokens["auditor"])
        _restore_approval_date(folder, demo_workspace)
        os.kill(server.pid, signal.SIGHUP)
        for _ in range(240):
            served = ask(WITH_APPROVED, tokens["auditor"])
            if "errors" not in served:
                break
            time.sleep(0.25)
        assert all(node["approvedAt"] for node in served["data"]["financeBudgetLines"]["nodes"])
        manifest = folder / "finance.yaml"
        manifest.write_text(manifest.read_text(encoding="utf-8").replace("type: Decimal", "type: Money", 1))
        refused = CliRunner().invoke(
            main, ["reload", "--url", endpoint], env={"HUB_ADMIN_TOKEN": tokens["platform-admin"]}
        )
        assert refused.exit_code == 1
        assert refused.stderr.startswith(
            "error: the manifests were not taken, the previous ones still serve: finance.yaml: entity BudgetLine, "
            "field amount, type:"
        )
        assert "errors" not in ask(WITH_APPROVED, tokens["auditor"])
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_a_reload_lists_the_trusted_documents_the_new_schema_refuses(
    settings: Settings, folder: Path, demo_workspace: Workspace, tmp_path: Path
) -> None:
    tokens = _tokens(demo_workspace)
    # A copy of the demo's hub database (its callers registered first): the document
    # registered here stays out of other tests.
    # By SQLite's backup: a file copy would miss what the write-ahead log holds.
    copy = copy_hub_database(demo_workspace, tmp_path / "hub.db")
    settings = replace(settings, database_url=URL.create("sqlite+aiosqlite", database=str(copy)))
    text = "{ financeExpenditures(first: 1) { nodes { expenditureId payee } } }"

    async def scenario() -> tuple[str, Any, Any, Any]:
        engine = hub_engine(settings.database_url)
        try:
            async with sessions(engine)() as session, session.begin():
                found = await register_document(session, text, name="expenditure-payees")
        finally:
            await engine.dispose()
        async with _hub(settings) as hub, _client(hub) as client:
            headers = {"Authorization": f"Bearer {tokens['auditor']}"}
            ran = (await client.post("/graphql", json={"documentId": found}, headers=headers)).json()
            manifest = folder / "finance.yaml"
            document = yaml.safe_load(manifest.read_text(encoding="utf-8"))
            expenditure = document["entities"][1]
            expenditure["fields"] = [f for f in expenditure["fields"] if f["name"] != "payee"]
            manifest.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
            _, reloaded = await _ask(client, tokens["platform-admin"], RELOAD)
            refused = (await client.post("/graphql", json={"documentId": found}, headers=headers)).json()
        return found, ran, reloaded, refused

    found, ran, reloaded, refused = asyncio.run(scenario())
    assert "errors" not in ran
    assert reloaded["data"]["reloadManifests"]["reloaded"] is True, reloaded
    assert reloaded["data"]["reloadManifests"]["invalidDocuments"] == [f"expenditure-payees ({found})"]
    assert refused["errors"][0]["message"].startswith("Cannot query field 'payee'")


def test_a_hub_not_started_by_hub_serve_answers_that_it_cannot_reload(demo_hub: Hub) -> None:
    # An embedded hub (the tests' own, an app made by create_app alone) has nothing to swap to:
    # the admin gets a plain answer saying so, never an internal error.
    answer = demo_hub.as_caller("platform-admin").query(RELOAD)
    assert "errors" not in answer, answer
    report = answer["data"]["reloadManifests"]
    assert report["reloaded"] is False
    assert report["entities"] > 0
    assert "hub serve" in report["error"]
