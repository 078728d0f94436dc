"""The hub killed (SIGKILL) in the middle of a burst of concurrent requests: afterwards the log
verifies, and every answer a client received with data has its event in the log.

`hub demo` runs in its own process over a copy of the session's demo; twelve clients send
lookups by key, each request with an operation name of its own (which the event records), and
the process is killed while they run. Answers cut off by the kill are not counted; each one
that arrived with data must be in the log: the event is written before the answer leaves. The
hub's trail writer process (hub/audit/flush_process.py) stops by itself once its hub is gone.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
from sqlalchemy import select

from hub.audit.models import AuditEvent
from hub.audit.verify import verify_log
from hub.db.engine import hub_engine, sessions
from hub.demo.workspace import Workspace
from tests.demo_copies import copy_workspace

CLIENTS = 12
KEYS = "{ civilAffairsServiceDeliveries(first: 50) { nodes { deliveryId } } }"


def _port() -> int:
    # The range this suite's hubs use, so parallel checkouts' servers do not meet.
    for port in range(18600, 18700):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 18600-18699")


def _writer_processes(pid: int) -> list[int]:
    """The trail's writer processes among `pid`'s children."""
    children = [
        int(child) for task in Path(f"/proc/{pid}/task").glob("*/children") for child in task.read_text().split()
    ]
    found = []
    for child in children:
        try:
            command = Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:
            continue
        if b"hub.audit.flush_server" in command:
            found.append(child)
    return found


def _wait_gone(pid: int, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return
        if state == "Z":  # ended, waiting for whoever adopted it to reap it
            return
        time.sleep(0.05)
    raise AssertionError(f"the trail's writer process {pid} was still running {seconds:.0f} s after the hub's kill")


def test_after_a_kill_the_log_verifies_and_every_answer_with_data_is_in_it(
    demo_workspace: Workspace, tmp_path: Path
) -> None:
    root = tmp_path / "demo"
    copy_workspace(demo_workspace.root, root)
    port = _port()
    environ = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    log = (tmp_path / "hub.log").open("wb")
    hub = Path(sys.executable).with_name("hub")
    process = subprocess.Popen(
        [str(hub), "demo", "--data-dir", str(root), "--port", str(port)], env=environ, stdout=log, stderr=log
    )
    base = f"http://127.0.0.1:{port}"
    received: list[str] = []
    stop = threading.Event()
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, (tmp_path / "hub.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "the demo hub did not start within 120 s"
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        tokens = json.loads((root / "demo-tokens.json").read_text())
        headers = {"Authorization": f"Bearer {tokens['civil-affairs-app']}", "X-Hub-Purpose": "social_assistance"}
        listed = httpx.post(f"{base}/graphql", json={"query": KEYS}, headers=headers, timeout=30).json()
        keys = [n["deliveryId"] for n in listed["data"]["civilAffairsServiceDeliveries"]["nodes"]]
        lock = threading.Lock()

        def client(number: int) -> None:
            with httpx.Client(base_url=base, headers=headers, timeout=10) as http:
                n = 0
                while not stop.is_set():
                    name = f"Q{number}x{n}"
                    query = (
                        f"query {name}($key: ID!) {{ civilAffairsServiceDelivery(key: $key) {{ deliveryId amount }} }}"
                    )
                    n += 1
                    try:
                        response = http.post(
                            "/graphql", json={"query": query, "variables": {"key": keys[n % len(keys)]}}
                        )
                    except httpx.HTTPError:
                        return  # the hub is gone
                    if response.status_code == 200 and (response.json().get("data") or {}).get(
                        "civilAffairsServiceDelivery"
                    ):
                        with lock:
                            received.append(name)

        threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
        for thread in threads:
            thread.start()
        # Kill once the burst is well under way.
        while len(received) < 200 and all(t.is_alive() for t in threads):
            time.sleep(0.01)
        # `hub demo` writes its trail from a process of its own (hub/audit/flush_process.py).
        writers = _writer_processes(process.pid)
        assert len(writers) == 1, writers
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=20)
        # With the hub gone, its writer finishes the flush under way and stops.
        _wait_gone(writers[0], 30)
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    finally:
        stop.set()
        if process.poll() is None:
            process.kill()
        log.close()
    assert len(received) >= 200

    async def check() -> tuple[set[str], bool, list[object]]:
        url = Workspace(root).hub_database
        engine = hub_engine(url)
        try:
            async with sessions(engine)() as session:
                names = set(await session.scalars(select(AuditEvent.operation_name)))
            report = await verify_log(sessions(engine), None)
            return {n for n in names if n}, report.ok, report.findings[:3]
        finally:
            await engine.dispose()

    names, ok, findings = asyncio.run(check())
    assert ok, findings
    missing = [name for name in received if name not in names]
    assert missing == []
