"""Two hubs composed by Hive Gateway (npm `@graphql-hive/gateway`, composition by
`@theguild/federation-composition`), on loopback: civil affairs in one hub, the other demo
departments in the other, sharing `Resident` under the blind index of the resident ID number.

The set-up installs the gateway with `npm ci` from tests/federation/package-lock.json (the
registry is needed the first time), serves both hubs with `hub serve`, asks each for its subgraph
SDL through `_service` (as the gateway, with a signed assertion), composes the supergraph and
starts the gateway with tests/federation/gateway.config.ts, which signs an assertion for each
subgraph request. Without Node or npm the test fails under CI=true and skips locally.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from hub.config import Settings
from hub.crypto.assertion import sign_assertion
from hub.db.engine import hub_engine, sessions
from hub.demo.callers import ensure_callers
from hub.demo.workspace import Workspace
from tests.federation_hubs import HubPair, hub_pair

FOLDER = Path(__file__).resolve().parents[1] / "federation"
CALLER, PURPOSE = "civil-affairs-app", "social_assistance"
# The gateway's own credential for the caller (tests/federation/gateway.config.ts maps it).
GATEWAY_TOKEN = "gw-test-civil-affairs"


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def _npm_ci() -> None:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        _unavailable("node and npm are needed for the gateway test")
        return
    installed = FOLDER / "node_modules" / ".package-lock.json"
    lock = FOLDER / "package-lock.json"
    if installed.exists() and installed.stat().st_mtime >= lock.stat().st_mtime:
        return  # installed from this lock already
    done = subprocess.run(
        [str(npm), "ci", "--prefer-offline", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=FOLDER,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode != 0:
        _unavailable(f"npm ci failed: {done.stderr[-2000:]}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(url: str, process: subprocess.Popen[bytes], seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: the server exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url}: not up within {seconds} s")


def _environ(settings: Settings, pair: HubPair) -> dict[str, str]:
    public = Ed25519PrivateKey.from_private_bytes(pair.gateway_key).public_key().public_bytes_raw()
    return {
        **os.environ,
        "HUB_DATABASE_URL": settings.database_url.render_as_string(hide_password=False),
        "HUB_MANIFESTS": str(settings.manifests_dir),
        "HUB_MASTER_KEY_FILE": str(settings.master_key_file),
        "HUB_GATEWAY_PUBLIC_KEYS": base64.b64encode(public).decode(),
        "HUB_TOKEN_CACHE_SECONDS": "1",
    }


def _register_callers(settings: Settings) -> dict[str, str]:
    async def run() -> dict[str, str]:
        engine = hub_engine(settings.database_url)
        try:
            return await ensure_callers(sessions(engine), Path(f"{settings.database_url.database}.tokens"))
        finally:
            await engine.dispose()

    return asyncio.run(run())


@dataclass
class Composition:
    pair: HubPair
    hubs: dict[str, str]  # name -> base URL
    gateway: str
    tokens: dict[str, dict[str, str]]  # hub name -> demo tokens

    def ask(self, query: str, variables: dict[str, Any] | None = None, token: str = GATEWAY_TOKEN) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}", "X-Hub-Purpose": PURPOSE}
        return httpx.post(
            f"{self.gateway}/graphql", json={"query": query, "variables": variables or {}}, headers=headers, timeout=60
        )


@pytest.fixture(scope="module")
def composition(demo_workspace: Workspace, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Composition]:
    _npm_ci()
    root = tmp_path_factory.mktemp("federation")
    pair = hub_pair(demo_workspace, root)
    processes: list[subprocess.Popen[bytes]] = []
    try:
        hubs: dict[str, str] = {}
        tokens: dict[str, dict[str, str]] = {}
        sdl_files = []
        for name, settings in (("hub_a", pair.a), ("hub_b", pair.b)):
            tokens[name] = _register_callers(settings)
            port = _free_port()
            log = (root / f"{name}.log").open("wb")
            process = subprocess.Popen(
                [sys.executable, "-m", "hub.cli", "serve", "--port", str(port)],
                env=_environ(settings, pair),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            processes.append(process)
            hubs[name] = f"http://127.0.0.1:{port}"
            _wait(f"{hubs[name]}/healthz", process)
            # The subgraph's SDL as the gateway's tooling reads it: `_service`, asked as the gateway.
            answer = httpx.post(
                f"{hubs[name]}/graphql",
                json={"query": "{ _service { sdl } }"},
                headers={"X-Hub-Gateway-Assertion": sign_assertion(pair.gateway_key, CALLER)},
                timeout=30,
            ).json()
            path = root / f"{name}.graphql"
            path.write_text(answer["data"]["_service"]["sdl"], encoding="utf-8")
            sdl_files.append(f"{name}={hubs[name]}/graphql={path}")
        supergraph = root / "supergraph.graphql"
        composed = subprocess.run(
            [str(shutil.which("node")), "compose.mjs", str(supergraph), *sdl_files],
            cwd=FOLDER,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert composed.returncode == 0, composed.stderr
        pem = (
            Ed25519PrivateKey.from_private_bytes(pair.gateway_key)
            .private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
            .decode()
        )
        port = _free_port()
        gateway_env = {
            **os.environ,
            "HUB_SUPERGRAPH": str(supergraph),
            "HUB_GATEWAY_PRIVATE_KEY": pem,
            "HUB_GATEWAY_CALLERS": json.dumps({GATEWAY_TOKEN: CALLER}),
        }
        log = (root / "gateway.log").open("wb")
        gateway = subprocess.Popen(
            [
                str(FOLDER / "node_modules" / ".bin" / "hive-gateway"),
                "supergraph",
                str(supergraph),
                "--port",
                str(port),
            ],
            cwd=FOLDER,
            env=gateway_env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        processes.append(gateway)
        _wait(f"http://127.0.0.1:{port}/healthcheck", gateway)
        yield Composition(pair, hubs, f"http://127.0.0.1:{port}", tokens)
    finally:
        for process in reversed(processes):
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()


JOIN = """
query Join {
  civilAffairsAssistanceCases(first: 3, orderBy: [CASE_ID_ASC]) {
    nodes {
      caseId
      recipientName
      resident { person { name healthVisits { patientName diagnosis } } }
    }
  }
}
"""


def _events(settings: Settings) -> list[tuple[str, str, str]]:
    with sqlite3.connect(str(settings.database_url.database)) as db:
        rows = db.execute("SELECT principal, operation_name, released FROM hub_audit_event ORDER BY position")
        return [(str(p), str(o), str(r)) for p, o, r in rows]


def test_a_query_through_the_gateway_joins_rows_of_both_hubs(composition: Composition) -> None:
    answer = composition.ask(JOIN).json()
    nodes = answer["data"]["civilAffairsAssistanceCases"]["nodes"]
    assert [n["caseId"] for n in nodes] == ["CA0000001", "CA0000002", "CA0000003"]
    # Hub A's rows, found by the blind index hub B's rows carry.
    persons = [n["resident"]["person"] for n in nodes]
    assert all(p is not None for p in persons)
    assert any(p["healthVisits"] for p in persons)


def test_each_hubs_policy_holds_through_the_gateway(composition: Composition) -> None:
    answer = composition.ask(JOIN).json()
    nodes = answer["data"]["civilAffairsAssistanceCases"]["nodes"]
    # Hub B: the caller's own department, its recipients' names plain.
    assert all("*" not in n["recipientName"] for n in nodes)
    # Hub A: another department's persons, their names masked; health's diagnoses withheld.
    assert all("*" in n["resident"]["person"]["name"] for n in nodes)
    visits = [v for n in nodes for v in n["resident"]["person"]["healthVisits"]]
    assert visits and all("*" in v["patientName"] for v in visits)
    assert all(v["diagnosis"] is None for v in visits)
    withheld = [e for e in answer["errors"] if e["extensions"].get("code") == "FORBIDDEN"]
    assert withheld and "diagnosis is withheld" in withheld[0]["message"]


def test_each_hub_audits_its_part_of_a_gateway_query_as_the_real_caller(composition: Composition) -> None:
    before = {name: len(_events(s)) for name, s in (("a", composition.pair.a), ("b", composition.pair.b))}
    assert composition.ask(JOIN).status_code == 200
    time.sleep(1.5)  # the trail commits in groups
    new_a = _events(composition.pair.a)[before["a"] :]
    new_b = _events(composition.pair.b)[before["b"] :]
    assert new_a and new_b
    # The caller, never the gateway, in each hub's own trail, for its own fields.
    assert {p for p, _, _ in new_a} == {CALLER} == {p for p, _, _ in new_b}
    assert any("population.Person" in released for _, _, released in new_a)
    assert not any("civil_affairs" in released for _, _, released in new_a)
    assert any("civil_affairs.AssistanceCase" in released for _, _, released in new_b)


def test_the_gateway_refuses_a_caller_it_cannot_authenticate(composition: Composition) -> None:
    answer = composition.ask(JOIN, token="not-a-caller")
    assert answer.status_code == 401


def test_a_hub_refuses_entities_asked_directly_with_an_app_token(composition: Composition) -> None:
    token = composition.tokens["hub_a"][CALLER]
    answer = httpx.post(
        f"{composition.hubs['hub_a']}/graphql",
        json={
            "query": '{ _entities(representations: [{__typename: "Resident", residentIndex: "00"}]) { __typename } }'
        },
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert answer.status_code == 403
    assert answer.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
