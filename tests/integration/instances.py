"""Several `hub serve` processes on loopback over one PostgreSQL hub database, for the tests of
what instances share (tests/integration/test_instances.py) and bench/propagation.py.

The hub database is fresh, migrated, holds the demo's keys and callers; the department
databases are the demo workspace's SQLite files. Each instance is its own process, so nothing
is shared between them but the hub database.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.engine import URL

from hub.db.engine import hub_engine, sessions
from hub.demo.callers import ensure_callers
from hub.demo.workspace import Workspace, share_keys
from hub.migrate import upgrade


@dataclass
class Instance:
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


@dataclass
class Fleet:
    instances: list[Instance]
    url: URL
    tokens: dict[str, str]

    def query(
        self,
        index: int,
        caller: str,
        query: str,
        variables: dict[str, Any] | None = None,
        purpose: str | None = None,
        client: httpx.Client | None = None,
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.tokens[caller]}"}
        if purpose:
            headers["X-Hub-Purpose"] = purpose
        body: dict[str, Any] = {"variables": variables or {}}
        if query.startswith("sha256:"):
            body["documentId"] = query
        else:
            body["query"] = query
        post = client.post if client is not None else httpx.post
        return post(f"{self.instances[index].base}/graphql", json=body, headers=headers, timeout=30)

    def readyz(self, index: int) -> httpx.Response:
        return httpx.get(f"{self.instances[index].base}/readyz", timeout=10)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def prepare(workspace: Workspace, url: URL, folder: Path) -> dict[str, str]:
    """Migrate the (empty) hub database at `url`, give it the demo's keys and callers; the
    callers' tokens."""
    upgrade(url)
    asyncio.run(share_keys(workspace, url))

    async def register() -> dict[str, str]:
        engine = hub_engine(url)
        try:
            return await ensure_callers(sessions(engine), folder / "demo-tokens.json")
        finally:
            await engine.dispose()

    return asyncio.run(register())


@contextmanager
def fleet(
    workspace: Workspace, url: URL, tokens: dict[str, str], folder: Path, count: int = 3, **environ: str
) -> Iterator[Fleet]:
    """`count` instances serving the demo over the hub database at `url`, each a process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env.update(
        {
            "HUB_DATABASE_URL": url.render_as_string(hide_password=False),
            "HUB_MANIFESTS": str(workspace.manifests),
            "HUB_MASTER_KEY_FILE": str(workspace.master_key_file),
            # Many requests from one caller in a short time: limits far above the tests' load.
            "HUB_RATE_LIMIT_DEFAULT": "1000000/minute",
            "HUB_DEPARTMENT_RATE_LIMIT": "1000000/minute",
            **environ,
        }
    )
    hub = Path(sys.executable).with_name("hub")
    instances: list[Instance] = []
    try:
        for number in range(count):
            port = free_port()
            log = folder / f"hub-{number}.log"
            with log.open("wb") as out:
                process = subprocess.Popen(
                    [str(hub), "serve", "--port", str(port)], env=env, stdout=out, stderr=subprocess.STDOUT
                )
            instances.append(Instance(port, process, log))
        deadline = time.monotonic() + 120
        for instance in instances:
            while True:
                assert instance.process.poll() is None, instance.tail()
                assert time.monotonic() < deadline, f"an instance did not start within 120 s\n{instance.tail()}"
                try:
                    if httpx.get(f"{instance.base}/readyz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.2)
        yield Fleet(instances, url, tokens)
    finally:
        for instance in instances:
            instance.process.terminate()
        for instance in instances:
            try:
                instance.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                instance.process.kill()
