"""One department's outage stays that department's: on PostgreSQL and MariaDB, the welfare
department is reached through a TCP proxy written here, which is made to drop every connection
and then to deliver bytes too late, mid-run. Throughout, the registry department is served in
full; welfare's fields are null with DEPARTMENT_UNAVAILABLE errors at their paths; no answer is
a 5xx; no request waits much past the department's timeout; the breaker opens, answers at once
without touching the database, lets one probe through at a time, and closes once welfare is
back."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import yaml
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import create_async_engine

from hub.access.plan import ReleaseEverything
from hub.app import create_app
from hub.config import load_settings
from hub.health.guard import DEADLINE_MARGIN_S
from hub.services import build_services
from tests.conftest import CASES, FIXTURES, PEOPLE, TEST_MASTER_KEY, register
from tests.servers import fresh_database

TIMEOUT_MS = 1000
DEADLINE_S = TIMEOUT_MS / 1000 + DEADLINE_MARGIN_S
# What a loaded two-core machine may add to a request bounded by the deadline.
SLACK_S = 1.0
COOLDOWN_S = 1.0
FAILURES = 3

BOTH = "{ registryPersons { totalCount nodes { idNumber name cases { caseId } } } welfareCases { nodes { caseId } } }"
WELFARE = "{ welfareCases { nodes { caseId } } registryPersons { totalCount } }"
REGISTRY = "{ registryPersons { nodes { idNumber name district income } } }"


class Proxy:
    """A TCP proxy on the loopback in front of one database server. `pass` relays bytes as
    they come, `drop` cuts every connection and accepts new ones only to close them, `slow`
    holds each chunk for `delay` seconds before relaying it."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.mode = "pass"
        self.delay = 0.0
        self.accepted = 0
        self.listening = 0
        self._server: asyncio.Server | None = None
        self._transports: set[asyncio.BaseTransport] = set()
        self._pipes: set[asyncio.Task[None]] = set()
        self._links: set[asyncio.Task[Any]] = set()

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.listening = self._server.sockets[0].getsockname()[1]
        return self.listening

    def drop(self) -> None:
        self.mode = "drop"
        self._cut()

    def slow(self, delay: float) -> None:
        self.mode, self.delay = "slow", delay

    def restore(self) -> None:
        # Connections that were slowed still carry late bytes: cut, the pool makes new ones.
        self.mode = "pass"
        self._cut()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        self._cut()
        for pipe in list(self._pipes):
            pipe.cancel()
        # Each link's handler ends by itself once its pipes have: cancelling it instead would
        # have asyncio's server log the cancellation as an error.
        await asyncio.gather(*self._links, return_exceptions=True)

    def _cut(self) -> None:
        for transport in list(self._transports):
            transport.abort()
        self._transports.clear()

    async def _accept(self, client_in: asyncio.StreamReader, client_out: asyncio.StreamWriter) -> None:
        self.accepted += 1
        link = asyncio.current_task()
        assert link is not None
        self._links.add(link)
        link.add_done_callback(self._links.discard)
        if self.mode == "drop":
            client_out.transport.abort()
            return
        try:
            server_in, server_out = await asyncio.open_connection(self.host, self.port)
        except OSError:
            client_out.transport.abort()
            return
        self._transports.update((client_out.transport, server_out.transport))
        pipes = {
            asyncio.create_task(self._pipe(client_in, server_out)),
            asyncio.create_task(self._pipe(server_in, client_out)),
        }
        self._pipes.update(pipes)
        # Either side closing ends the link: the other pipe is cancelled, both sockets cut.
        await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
        for pipe in pipes:
            pipe.cancel()
        await asyncio.gather(*pipes, return_exceptions=True)
        self._pipes.difference_update(pipes)
        for writer in (client_out, server_out):
            writer.transport.abort()
            self._transports.discard(writer.transport)

    async def _pipe(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await source.read(65536):
                if self.mode == "slow":
                    await asyncio.sleep(self.delay)
                if self.mode == "drop" or sink.transport.is_closing():
                    return
                sink.write(data)
                await sink.drain()


_METADATA = sa.MetaData()
_PERSON = sa.Table(
    "person",
    _METADATA,
    sa.Column("id_number", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(64)),
    sa.Column("birth_date", sa.Date),
    sa.Column("district", sa.String(64)),
    sa.Column("income", sa.Numeric(18, 2)),
    sa.Column("registered_at", sa.DateTime),
    sa.Column("children", sa.Integer),
    sa.Column("active", sa.Boolean),
    mysql_charset="utf8mb4",
)
_CASE = sa.Table(
    "welfare_case",
    _METADATA,
    sa.Column("case_id", sa.String(32), primary_key=True),
    sa.Column("recipient_id_number", sa.String(32)),
    sa.Column("amount", sa.Numeric(18, 2)),
    sa.Column("status", sa.String(32)),
    mysql_charset="utf8mb4",
)


@pytest.fixture(scope="module", params=["postgresql", "mariadb"])
def departments(request: pytest.FixtureRequest) -> URL:
    """A database on the server holding the registry's and welfare's tables with the fixture rows."""
    url = fresh_database(request.param, "hub_it_outage")

    async def load() -> None:
        engine = create_async_engine(url)
        try:
            async with engine.begin() as conn:
                await conn.run_sync(_METADATA.create_all)
                await conn.execute(_PERSON.insert(), PEOPLE)
                await conn.execute(_CASE.insert(), CASES)
        finally:
            await engine.dispose()

    asyncio.run(load())
    return url


@pytest.fixture
def manifests(tmp_path: Path) -> Path:
    """The fixture manifests, each department reading the database its variable names, with a
    short statement timeout."""
    folder = tmp_path / "manifests"
    folder.mkdir()
    for name in ("registry", "welfare"):
        document = yaml.safe_load((FIXTURES / "manifests" / f"{name}.yaml").read_text(encoding="utf-8"))
        document["connection"] = {"url_env": f"HUB_OI_{name.upper()}_URL", "statement_timeout_ms": TIMEOUT_MS}
        (folder / f"{name}.yaml").write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    return folder


@pytest.fixture
def token(hub_db: URL) -> str:
    return register(hub_db)


@dataclass
class Answer:
    status: int
    body: dict[str, Any]
    seconds: float


@dataclass
class Served:
    client: httpx.AsyncClient
    token: str
    proxy: Proxy
    statuses: list[int]

    async def query(self, query: str) -> Answer:
        started = time.monotonic()
        response = await self.client.post(
            "/graphql", json={"query": query}, headers={"Authorization": f"Bearer {self.token}"}
        )
        self.statuses.append(response.status_code)
        leaks = (f":{self.proxy.port}", f":{self.proxy.listening}", "127.0.0.1", "SELECT", "asyncpg", "asyncmy")
        for leak in (*leaks, "Traceback"):
            assert leak not in response.text, response.text
        return Answer(response.status_code, response.json(), time.monotonic() - started)

    async def welfare(self) -> dict[str, str]:
        response = await self.client.get("/readyz")
        self.statuses.append(response.status_code)
        departments = response.json()["departments"]
        assert departments["registry"] == {"state": "up", "circuit": "closed", "schema": "matches"}
        # Welfare's schema was checked at start, through the proxy still passing bytes.
        assert departments["welfare"].pop("schema") == "matches"
        state: dict[str, str] = departments["welfare"]
        return state


@pytest.fixture
async def served(departments: URL, manifests: Path, hub_db: URL, token: str) -> AsyncIterator[Served]:
    proxy = Proxy(departments.host or "127.0.0.1", departments.port or 0)
    listening = await proxy.start()
    direct = departments.render_as_string(hide_password=False)
    proxied = departments.set(port=listening).render_as_string(hide_password=False)
    settings = load_settings(
        {"HUB_OI_REGISTRY_URL": direct, "HUB_OI_WELFARE_URL": proxied},
        database_url=hub_db.render_as_string(),
        manifests_dir=manifests,
        master_key=TEST_MASTER_KEY,
        breaker_failures=FAILURES,
        breaker_cooldown_seconds=COOLDOWN_S,
    )
    app = create_app(build_services(settings, policy=ReleaseEverything()))
    try:
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://hub", timeout=30) as client,
        ):
            yield Served(client, token, proxy, [])
    finally:
        await proxy.close()


def registry_part(body: dict[str, Any]) -> list[tuple[str, str]]:
    return [(node["idNumber"], node["name"]) for node in body["data"]["registryPersons"]["nodes"]]


def assert_welfare_unavailable(answer: Answer, baseline: dict[str, Any]) -> None:
    """Registry served in full; welfare's list and every person's cases null, the list with its
    DEPARTMENT_UNAVAILABLE error and the cases with one between them, counting the persons; a
    200 within the deadline."""
    assert answer.status == 200
    assert answer.seconds < DEADLINE_S + SLACK_S, answer.seconds
    data = answer.body["data"]
    assert data["welfareCases"] is None
    assert data["registryPersons"]["totalCount"] == 3
    assert registry_part(answer.body) == registry_part(baseline)
    assert all(node["cases"] is None for node in data["registryPersons"]["nodes"])
    errors = answer.body["errors"]
    assert {error["extensions"]["code"] for error in errors} == {"DEPARTMENT_UNAVAILABLE"}
    assert {error["extensions"]["department"] for error in errors} == {"welfare"}
    located = sorted((tuple(error["path"]), error["extensions"].get("count")) for error in errors)
    assert located == [(("registryPersons", "nodes", "*", "cases"), 3), (("welfareCases",), None)]


async def until_open(served: Served, baseline: dict[str, Any], at_least: float = 0.0) -> None:
    """Requests until welfare's circuit opens, each answered as an outage after `at_least`
    seconds (a slow department's reads wait out their deadline)."""
    for _ in range(FAILURES):
        answer = await served.query(BOTH)
        assert_welfare_unavailable(answer, baseline)
        assert answer.seconds >= at_least, answer.seconds
        if (await served.welfare())["state"] == "open":
            return
    raise AssertionError(f"the circuit did not open after {FAILURES} failing requests")


async def assert_open_answers_at_once(served: Served, baseline: dict[str, Any]) -> None:
    accepted = served.proxy.accepted
    answer = await served.query(BOTH)
    assert_welfare_unavailable(answer, baseline)
    assert answer.seconds < 0.5, answer.seconds
    assert served.proxy.accepted == accepted  # welfare's database was not asked
    registry = await served.query(REGISTRY)
    assert "errors" not in registry.body


async def recover(served: Served, baseline: dict[str, Any]) -> None:
    """Welfare back: after the cool-down the probe gets through and the circuit closes."""
    served.proxy.restore()
    await asyncio.sleep(COOLDOWN_S)
    assert await served.welfare() == {"state": "open", "circuit": "half_open"}
    # One read of welfare: the probe (a request reading welfare twice would have its second
    # read refused while the first probes).
    probe = await served.query(WELFARE)
    assert probe.status == 200 and "errors" not in probe.body, probe.body
    assert await served.welfare() == {"state": "up", "circuit": "closed"}
    answer = await served.query(BOTH)
    assert answer.body == baseline


async def test_one_department_down_then_slow_leaves_the_others_served(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    first = await served.query(BOTH)
    assert first.status == 200 and "errors" not in first.body, first.body
    baseline = first.body
    assert len(baseline["data"]["welfareCases"]["nodes"]) == 3
    assert await served.welfare() == {"state": "up", "circuit": "closed"}

    # Unreachable: every connection to welfare's server is cut, new ones refused.
    served.proxy.drop()
    await until_open(served, baseline)
    await assert_open_answers_at_once(served, baseline)
    await recover(served, baseline)

    # Slow: welfare's answers come too late (after the deadline), on connections already open.
    served.proxy.slow(delay=DEADLINE_S + 3)
    await until_open(served, baseline, at_least=TIMEOUT_MS / 1000)
    await assert_open_answers_at_once(served, baseline)
    # Half-open, three requests at once: one probes (and waits out the deadline), two are
    # answered at once; the failed probe opens the circuit again.
    await asyncio.sleep(COOLDOWN_S)
    probes = await asyncio.gather(*(served.query(WELFARE) for _ in range(3)))
    for answer in probes:
        assert answer.status == 200
        assert answer.body["data"] == {"welfareCases": None, "registryPersons": {"totalCount": 3}}
        assert [error["path"] for error in answer.body["errors"]] == [["welfareCases"]]
    seconds = sorted(answer.seconds for answer in probes)
    assert seconds[1] < 0.5 and DEADLINE_S - 0.1 < seconds[2] < DEADLINE_S + SLACK_S, seconds
    assert await served.welfare() == {"state": "open", "circuit": "open"}
    await recover(served, baseline)

    assert set(served.statuses) == {200}
    logged = [record.getMessage() for record in caplog.records if record.name == "hub.access"]
    assert logged and all(line.startswith("department welfare unavailable reading welfare.Case") for line in logged)
    assert any("circuit open" in record.getMessage() for record in caplog.records if record.name == "hub.health")
