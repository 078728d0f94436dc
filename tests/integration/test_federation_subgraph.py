"""A hub as a Federation subgraph, asked directly as a gateway would ask it (and as an attacker
would): the trust between gateway and hub, `_entities` through the same plan, release and
audit as any read, batched, and a shared key this hub's index key cannot serve.

The hubs are tests/federation_hubs.py's pair, served in-process; the gateway's signature is
made here with the pair's gateway key (tests/integration/test_federation_gateway.py runs the
real gateway)."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import os
import re
import shutil
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from sqlalchemy import event
from starlette.testclient import TestClient

from hub.app import create_app
from hub.auth.registry import revoke_tokens
from hub.cli.main import main
from hub.crypto.assertion import sign_assertion
from hub.db.engine import hub_engine, sessions
from hub.demo.callers import ensure_callers
from hub.demo.workspace import Workspace
from hub.policy.terms import TermsError
from hub.services import Services, build_services
from tests.demo_copies import copy_sqlite
from tests.federation_hubs import HubPair, hub_pair
from tests.integration.policy_fixtures import ADMIN, GRANT, grant

CALLER, PURPOSE = "civil-affairs-app", "social_assistance"
HEADER = "X-Hub-Gateway-Assertion"
ENTITIES = """
query($r: [_Any!]!) {
  _entities(representations: $r) {
    ... on Resident { residentIndex person { name idNumber healthVisits { patientName diagnosis } } }
  }
}
"""


@dataclass
class Subgraph:
    client: TestClient
    services: Services
    pair: HubPair
    tokens: dict[str, str]

    def ask(self, query: str, variables: dict[str, Any] | None = None, **headers: str) -> Any:
        sent = {"X-Hub-Purpose": PURPOSE, **{k.replace("_", "-"): v for k, v in headers.items()}}
        return self.client.post("/graphql", json={"query": query, "variables": variables or {}}, headers=sent)

    def as_gateway(self, query: str, variables: dict[str, Any] | None = None, app: str = CALLER) -> Any:
        return self.ask(query, variables, **{HEADER.replace("-", "_"): sign_assertion(self.pair.gateway_key, app)})


def _tokens(services: Services) -> dict[str, str]:
    async def run() -> dict[str, str]:
        engine = hub_engine(services.settings.database_url)
        try:
            path = Path(f"{services.settings.database_url.database}.tokens")
            return await ensure_callers(sessions(engine), path)
        finally:
            await engine.dispose()

    return asyncio.run(run())


@pytest.fixture(scope="module")
def pair(demo_workspace: Workspace, tmp_path_factory: pytest.TempPathFactory) -> HubPair:
    return hub_pair(demo_workspace, tmp_path_factory.mktemp("subgraph"))


def _serve(settings: Any, pair: HubPair) -> Iterator[Subgraph]:
    services = build_services(settings)
    tokens = _tokens(services)
    with TestClient(create_app(services)) as client:
        yield Subgraph(client, services, pair, tokens)


@pytest.fixture(scope="module")
def hub_a(pair: HubPair) -> Iterator[Subgraph]:
    yield from _serve(pair.a, pair)


@pytest.fixture(scope="module")
def hub_b(pair: HubPair) -> Iterator[Subgraph]:
    yield from _serve(pair.b, pair)


def _keys(hub_b: Subgraph, count: int) -> list[str]:
    query = f"{{ civilAffairsAssistanceCases(first: {count}) {{ nodes {{ resident {{ residentIndex }} }} }} }}"
    nodes = hub_b.as_gateway(query).json()["data"]["civilAffairsAssistanceCases"]["nodes"]
    return [n["resident"]["residentIndex"] for n in nodes]


def _representations(keys: list[str]) -> dict[str, Any]:
    return {"r": [{"__typename": "Resident", "residentIndex": k} for k in keys]}


# --- trust between gateway and hub -------------------------------------------------------


def test_a_gateway_assertion_acts_as_the_app_it_names_with_this_hubs_roles(hub_a: Subgraph, hub_b: Subgraph) -> None:
    answer = hub_a.as_gateway(ENTITIES, _representations(_keys(hub_b, 2))).json()
    assert answer["extensions"]["access"]["masked"]  # civil affairs reads population masked
    assert [e["person"] is not None for e in answer["data"]["_entities"]] == [True, True]


def test_an_expired_assertion_is_refused(hub_a: Subgraph) -> None:
    old = sign_assertion(hub_a.pair.gateway_key, CALLER, now=time.time() - 120, lifetime=30)
    answer = hub_a.ask("{ __typename }", **{"X_Hub_Gateway_Assertion": old})
    assert answer.status_code == 401
    assert "expired" in answer.json()["errors"][0]["message"]


def test_a_future_dated_assertion_is_refused(hub_a: Subgraph) -> None:
    later = sign_assertion(hub_a.pair.gateway_key, CALLER, now=time.time() + 120, lifetime=30)
    answer = hub_a.ask("{ __typename }", **{"X_Hub_Gateway_Assertion": later})
    assert answer.status_code == 401
    assert "future" in answer.json()["errors"][0]["message"]


def test_an_assertion_valid_longer_than_sixty_seconds_is_refused(hub_a: Subgraph) -> None:
    long = sign_assertion(hub_a.pair.gateway_key, CALLER, lifetime=3600)
    assert hub_a.ask("{ __typename }", **{"X_Hub_Gateway_Assertion": long}).status_code == 401


def test_an_assertion_signed_with_another_key_is_refused(hub_a: Subgraph) -> None:
    forged = sign_assertion(os.urandom(32), CALLER)
    answer = hub_a.ask(ENTITIES, {"r": []}, **{"X_Hub_Gateway_Assertion": forged})
    assert answer.status_code == 401
    assert "signature" in answer.json()["errors"][0]["message"]


def test_an_assertion_replayed_after_it_expired_is_refused(hub_a: Subgraph) -> None:
    # Issued 57 s ago for 60 s: good now, expired in 3 s.
    assertion = sign_assertion(hub_a.pair.gateway_key, CALLER, now=time.time() - 57, lifetime=60)
    assert hub_a.ask("{ __typename }", **{"X_Hub_Gateway_Assertion": assertion}).status_code == 200
    time.sleep(3.5)
    assert hub_a.ask("{ __typename }", **{"X_Hub_Gateway_Assertion": assertion}).status_code == 401


def test_an_assertion_whose_app_name_was_altered_is_refused(hub_a: Subgraph) -> None:
    version, payload, signature = sign_assertion(hub_a.pair.gateway_key, CALLER).split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["app"] = "platform-admin"
    altered = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    answer = hub_a.ask("{ __typename }", **{"X_Hub_Gateway_Assertion": f"{version}.{altered}.{signature}"})
    assert answer.status_code == 401


def test_an_app_token_sent_as_an_assertion_is_refused(hub_a: Subgraph) -> None:
    token = hub_a.tokens[CALLER]
    answer = hub_a.ask(ENTITIES, {"r": []}, **{"X_Hub_Gateway_Assertion": token})
    assert answer.status_code == 401


def test_an_assertion_beside_a_bearer_token_is_refused(hub_a: Subgraph) -> None:
    assertion = sign_assertion(hub_a.pair.gateway_key, CALLER)
    answer = hub_a.ask(
        "{ __typename }", Authorization=f"Bearer {hub_a.tokens[CALLER]}", **{"X_Hub_Gateway_Assertion": assertion}
    )
    assert answer.status_code == 400


def test_an_assertion_naming_an_app_this_hub_does_not_know_is_unauthenticated(hub_a: Subgraph) -> None:
    answer = hub_a.as_gateway("{ __typename }", app="someone-else")
    assert answer.status_code == 401
    assert answer.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


def test_an_assertion_naming_an_app_whose_tokens_are_revoked_is_unauthenticated(hub_b: Subgraph) -> None:
    async def revoke() -> None:
        engine = hub_engine(hub_b.services.settings.database_url)
        try:
            async with sessions(engine)() as session, session.begin():
                await revoke_tokens(session, "public")
        finally:
            await engine.dispose()

    assert hub_b.as_gateway("{ __typename }", app="public").status_code == 200
    asyncio.run(revoke())
    assert hub_b.as_gateway("{ __typename }", app="public").status_code == 401


@pytest.mark.parametrize(
    "query",
    [
        '{ _entities(representations: [{__typename: "Resident", residentIndex: "00"}]) { __typename } }',
        "{ _service { sdl } }",
        "{ s: _service { sdl } }",
        "query { ...F } fragment F on Query { _service { sdl } }",
    ],
)
def test_entities_and_service_are_refused_to_an_app_token(hub_a: Subgraph, query: str) -> None:
    answer = hub_a.ask(query, Authorization=f"Bearer {hub_a.tokens[CALLER]}")
    assert answer.status_code == 403
    assert "gateway" in answer.json()["errors"][0]["message"]


def test_service_answers_the_subgraph_sdl_with_link_and_key_to_a_gateway(hub_a: Subgraph) -> None:
    sdl = hub_a.as_gateway("{ _service { sdl } }").json()["data"]["_service"]["sdl"]
    assert '@link(url: "https://specs.apollo.dev/federation/v2.3"' in sdl
    assert 'type Resident @key(fields: "residentIndex")' in sdl
    # The hub's administration and trail are asked of each hub directly, never composed.
    assert "auditEvents" not in sdl and "type Mutation" not in sdl


# --- _entities: the same plan, release and audit, batched ---------------------------------


def test_entities_are_released_as_any_read_masked_and_withheld_by_this_hubs_policy(
    hub_a: Subgraph, hub_b: Subgraph
) -> None:
    answer = hub_a.as_gateway(ENTITIES, _representations(_keys(hub_b, 3))).json()
    persons = [e["person"] for e in answer["data"]["_entities"]]
    assert all("*" in p["name"] and p["idNumber"].startswith("330*") for p in persons)
    assert "_entities/*/person/healthVisits/*/diagnosis" in answer["extensions"]["access"]["withheld"]


def test_entities_of_one_gateway_call_take_one_statement_per_entity_type(hub_a: Subgraph, hub_b: Subgraph) -> None:
    keys = _keys(hub_b, 40)
    seen: list[tuple[str, str]] = []
    listeners = []
    for department, connector in hub_a.services.connectors.items():
        engine = connector.engine.sync_engine  # type: ignore[attr-defined]

        def listen(conn: Any, cursor: Any, statement: str, *args: Any, department: str = department) -> None:
            seen.append((department, statement))

        event.listen(engine, "before_cursor_execute", listen)
        listeners.append((engine, listen))
    try:
        answer = hub_a.as_gateway(ENTITIES, _representations(keys)).json()
    finally:
        for engine, listen in listeners:
            event.remove(engine, "before_cursor_execute", listen)
    assert len(answer["data"]["_entities"]) == 40
    selects = [(d, s) for d, s in seen if s.lstrip().upper().startswith("SELECT")]
    # One for the 40 persons, one for their visits.
    assert [d for d, _ in selects] == ["population", "health"]


def test_a_representation_of_another_type_or_a_malformed_key_answers_an_error_at_its_place(
    hub_a: Subgraph, hub_b: Subgraph
) -> None:
    good = _keys(hub_b, 1)[0]
    representations = [
        {"__typename": "Resident", "residentIndex": good},
        {"__typename": "PopulationPerson", "idNumber": "330102199001011234"},
        {"__typename": "Resident", "residentIndex": "330102199001011234"},
        {"__typename": "Resident", "residentIndex": good, "extra": 1},
    ]
    answer = hub_a.as_gateway(ENTITIES, {"r": representations}).json()
    assert answer["data"]["_entities"][0]["person"] is not None
    assert answer["data"]["_entities"][1:] == [None, None, None]
    places = sorted(e["path"][1] for e in answer["errors"] if e["path"][:1] == ["_entities"] and len(e["path"]) == 2)
    assert places == [1, 2, 3]
    assert all(e["extensions"]["code"] == "BAD_USER_INPUT" for e in answer["errors"] if len(e["path"]) == 2)


def test_more_representations_than_the_bound_are_refused(hub_a: Subgraph) -> None:
    many = [{"__typename": "Resident", "residentIndex": "0" * 64}] * 1001
    answer = hub_a.as_gateway(ENTITIES, {"r": many}).json()
    assert answer["data"] is None or answer["data"]["_entities"] is None
    assert answer["errors"][0]["extensions"]["code"] == "LIMIT_EXCEEDED"


def test_entities_are_audited_by_the_hub_that_released_them_as_the_real_caller(
    hub_a: Subgraph, hub_b: Subgraph
) -> None:
    path = str(hub_a.services.settings.database_url.database)
    with sqlite3.connect(path) as db:
        before = db.execute("SELECT max(position) FROM hub_audit_event").fetchone()[0] or 0
    hub_a.as_gateway(ENTITIES, _representations(_keys(hub_b, 2)))
    time.sleep(1.5)
    with sqlite3.connect(path) as db:
        rows = db.execute(
            "SELECT principal, department, released FROM hub_audit_event WHERE position > ?", (before,)
        ).fetchall()
    assert rows and {(r[0], r[1]) for r in rows} == {(CALLER, "civil_affairs")}
    assert any("population.Person" in r[2] for r in rows)


# --- a shared key this hub cannot serve ---------------------------------------------------


def _declaring(pair: HubPair, folder: Path, fingerprint: str) -> Any:
    """Hub A's settings with manifests declaring another `index_fingerprint`, over a copy of
    its hub database without its published catalog (these manifests are another catalog, which
    alone would make the instance not ready, and hub A's own tests keep theirs)."""
    manifests = folder / "manifests"
    shutil.copytree(pair.a.manifests_dir, manifests)
    population = manifests / "population.yaml"
    document = yaml.safe_load(population.read_text(encoding="utf-8"))
    document["shared"][0]["index_fingerprint"] = fingerprint
    population.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    database = folder / "hub.db"
    copy_sqlite(Path(str(pair.a.database_url.database)), database)
    with sqlite3.connect(database) as copy:
        copy.execute("DELETE FROM hub_catalog")
    return dataclasses.replace(
        pair.a, manifests_dir=manifests, database_url=pair.a.database_url.set(database=str(database))
    )


def test_a_hub_whose_index_key_differs_from_the_declared_one_refuses_the_shared_key_and_says_why(
    pair: HubPair, tmp_path: Path
) -> None:
    for hub in _serve(_declaring(pair, tmp_path, "f" * 32), pair):
        answer = hub.as_gateway(ENTITIES, _representations(["0" * 64])).json()
        assert answer["data"]["_entities"][0]["person"] is None
        error = answer["errors"][0]
        assert error["extensions"]["code"] == "DATA_INTEGRITY"
        assert "blind-index key for resident_id" in error["message"] and "import-index" in error["message"]


def _key_material(hub: Subgraph, declared: str) -> list[str]:
    """Every spelling of the index key, and both fingerprints, that must never reach /readyz."""
    key = hub.services.keys.keyring.index_key("resident_id")
    held = hub.services.keys.keyring.index_fingerprint("resident_id")
    assert held is not None
    return [
        key.hex(),
        key.hex().upper(),
        base64.b64encode(key).decode().rstrip("="),
        base64.urlsafe_b64encode(key).decode().rstrip("="),
        held,
        declared,
    ]


def test_readyz_says_the_shared_index_key_matches_the_federations_without_naming_it(hub_a: Subgraph) -> None:
    response = hub_a.client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["shared_keys"] == {"resident_id": {"state": "matches", "types": ["Resident"]}}
    for material in _key_material(hub_a, hub_a.pair.fingerprint):
        assert material not in response.text


def test_readyz_names_a_refused_shared_domain_and_why_but_no_key_or_fingerprint_and_stays_ready(
    pair: HubPair, tmp_path: Path
) -> None:
    """Every instance of a hub reads one hub database's keys, so all would differ alike: the
    hub stays in the balancer for everything else, and /readyz is where monitoring sees it."""
    declared = "e" * 32
    for hub in _serve(_declaring(pair, tmp_path, declared), pair):
        response = hub.client.get("/readyz")
        assert response.status_code == 200
        body = response.json()
        assert body["status"] == "ready"
        entry = body["shared_keys"]["resident_id"]
        assert (entry["state"], entry["types"]) == ("differs", ["Resident"])
        assert "differs from the federation's recorded fingerprint" in entry["refused"]
        assert "hub keys import-index" in entry["refused"]
        for material in _key_material(hub, declared):
            assert material not in response.text
        # Nothing that looks like a fingerprint or a key at all: no run of 16 hex digits
        # outside the catalog's hash (a digest of the manifest files, which are no secret).
        body.pop("catalog", None)
        assert re.search(r"[0-9a-fA-F]{16}", json.dumps(body)) is None
        # What /readyz reports is what the gateway meets.
        refused = hub.as_gateway(ENTITIES, _representations(["0" * 64])).json()
        assert refused["errors"][0]["extensions"]["code"] == "DATA_INTEGRITY"


# --- a department that lives in another hub -----------------------------------------------

FOREIGN_APP = "province-population-app"
NAMES = "{ civilAffairsAssistanceCases(first: 3, orderBy: [CASE_ID_ASC]) { nodes { caseId recipientName } } }"
KNOWN_BEFORE = "known: audit, citizen_portal, civil_affairs, platform, public"


def _hub_b_copy(pair: HubPair, folder: Path, departments_file: Path | None) -> Any:
    """Hub B's settings over a copy of its hub database (what these tests grant stays here)."""
    database = folder / "hub-b.db"
    if not database.exists():
        copy_sqlite(Path(str(pair.b.database_url.database)), database)
    return dataclasses.replace(
        pair.b, database_url=pair.b.database_url.set(database=str(database)), departments_file=departments_file
    )


def _register(settings: Any, departments_file: Path | None) -> Any:
    """`hub apps create` on hub B for the other hub's population app, as its operator runs it."""
    env = {
        "HUB_DATABASE_URL": settings.database_url.render_as_string(hide_password=False),
        "HUB_MANIFESTS": str(settings.manifests_dir),
        "HUB_MASTER_KEY_FILE": str(settings.master_key_file),
    }
    if departments_file is not None:
        env["HUB_DEPARTMENTS_FILE"] = str(departments_file)
    command = ["apps", "create", FOREIGN_APP, "--department", "population", "--role", "department_app"]
    return CliRunner().invoke(main, command, env=env)


def _names(hub: Subgraph) -> list[Any]:
    answer = hub.as_gateway(NAMES, app=FOREIGN_APP).json()
    return [node["recipientName"] for node in answer["data"]["civilAffairsAssistanceCases"]["nodes"]]


def test_a_grant_to_another_hubs_department_is_refused_with_the_known_ones_until_this_hub_declares_it(
    pair: HubPair, tmp_path: Path
) -> None:
    """Hub B (civil affairs only) knows nothing of population, which lives in hub A: it neither
    registers its app nor takes a grant to it, and says which departments it knows. Declared in
    hub B's departments file, the app is registered in hub B's database, a grant to it is
    accepted, and through the gateway the app reads what the grant gives, under hub B's policy."""
    refused_app = _register(_hub_b_copy(pair, tmp_path, None), None)
    assert refused_app.exit_code != 0
    assert "'population' is not a known department" in refused_app.output and KNOWN_BEFORE in refused_app.output

    given = grant("population-visits", "population", "civil_affairs.AssistanceCase", PURPOSE, "recipientName")
    for hub in _serve(_hub_b_copy(pair, tmp_path, None), pair):
        admin = {"Authorization": f"Bearer {hub.tokens[ADMIN]}"}
        refused = hub.ask(GRANT, {"grant": given, "reason": "home visits"}, **admin).json()
        assert refused["data"] is None
        assert refused["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
        assert "'population' is not a known department" in refused["errors"][0]["message"]
        assert KNOWN_BEFORE in refused["errors"][0]["message"]
        # An app it never registered is nobody here, whatever the gateway vouches for.
        unknown = hub.as_gateway(NAMES, app=FOREIGN_APP)
        assert unknown.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"

    declared = tmp_path / "departments.yaml"
    declared.write_text('population: {title: "Population registry, served by hub A", public: false}\n')
    registered = _register(_hub_b_copy(pair, tmp_path, declared), declared)
    assert registered.exit_code == 0, registered.output
    for hub in _serve(_hub_b_copy(pair, tmp_path, declared), pair):
        plain = [
            node["recipientName"]
            for node in hub.as_gateway(NAMES).json()["data"]["civilAffairsAssistanceCases"]["nodes"]
        ]
        masked = _names(hub)
        assert all(plain) and all(m != p for m, p in zip(masked, plain, strict=True))
        admin = {"Authorization": f"Bearer {hub.tokens[ADMIN]}"}
        accepted = hub.ask(GRANT, {"grant": given, "reason": "home visits"}, **admin).json()
        assert accepted["data"]["grantAccess"]["applied"] is True, accepted
        assert _names(hub) == plain


@pytest.mark.parametrize(
    ("entry", "refusal"),
    [
        ("civil_affairs", "civil_affairs is a catalog department"),
        ("audit", "audit is already declared in policies/departments.yaml"),
        ("population", "population needs {title: ..., public: true|false}"),
    ],
)
def test_a_departments_file_that_redeclares_a_known_department_or_is_malformed_stops_the_hub(
    pair: HubPair, tmp_path: Path, entry: str, refusal: str
) -> None:
    declared = tmp_path / "departments.yaml"
    body = "population: {public: maybe}\n" if entry == "population" else f"{entry}: {{title: x, public: false}}\n"
    declared.write_text(body)
    with pytest.raises(TermsError) as stopped:
        build_services(_hub_b_copy(pair, tmp_path, declared))
    assert refusal in str(stopped.value)
    assert "departments.yaml (HUB_DEPARTMENTS_FILE)" in str(stopped.value)
    assert str(tmp_path) not in str(stopped.value)
