"""Fairness (issue 13): the heaviest request the bounds allow does not stall other callers.

Before, a heavy auditor's answer held the hub's one event loop for seconds at a time, and other
callers' lookups by key waited up to 7 s (finding 6 of the security review). Here the demo hub
runs as deployed (`hub demo`, one uvicorn worker, its own process), and the auditor sends the
heaviest list request the value budget answers (as many 10,000-row lists of civil affairs'
service deliveries by all 12 fields as fit under a million values: eight, 26.8 MB), two at once
(its concurrency limit allows four), each twice in a row. Meanwhile the civil affairs app looks
up one service delivery by its key every 100 ms, in the department and table the heavy requests
read.

No lookup may take 1.5 s. The bound is generous: this 2-core machine runs other suites beside
this one, so a lookup can lose the CPU for a while whatever the hub does. Measured here: the
slowest lookup 0.4 s; before the change 1.9 and 3.2 s (the typical figures are
bench/fairness.py's, in bench/README.md).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from hub.config import Settings
from hub.demo.workspace import Workspace
from tests.demo_copies import copy_workspace

ROWS, FIELDS = 10_000, 12
LISTS = Settings.max_values // (ROWS * FIELDS)
HEAVY = (
    "{ "
    + " ".join(
        f"l{n}: civilAffairsServiceDeliveries(first: {ROWS}) {{ nodes {{ deliveryId caseId recipientName "
        "recipientIdNumber recipientMobile serviceType deliveredAt amount districtCode status requestId "
        "expenditureId } }"
        for n in range(LISTS)
    )
    + " }"
)
LOOKUP = "query ($key: ID!) { civilAffairsServiceDelivery(key: $key) { deliveryId serviceType amount status } }"
# Two at once, each twice in a row: the auditor may have four requests in flight.
AT_ONCE = 2
SLOWEST_S = 1.5


@pytest.fixture(scope="module")
def served(demo_workspace: Workspace, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    """`hub demo` over a copy of the session's demo (its own process, so the test's clients
    share no interpreter with it); its base URL and the callers' tokens."""
    root = tmp_path_factory.mktemp("fair") / "demo"
    copy_workspace(demo_workspace.root, root)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    environ = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    log = (root.parent / "hub.log").open("wb")
    hub = Path(sys.executable).with_name("hub")
    process = subprocess.Popen(
        [str(hub), "demo", "--data-dir", str(root), "--port", str(port)], env=environ, stdout=log, stderr=log
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, (root.parent / "hub.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "the demo hub did not start within 120 s"
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        yield base, json.loads((root / "demo-tokens.json").read_text())
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def test_another_callers_lookups_by_key_are_answered_while_the_heaviest_allowed_request_runs(
    served: tuple[str, dict[str, str]],
) -> None:
    base, tokens = served
    auditor = {"Authorization": f"Bearer {tokens['auditor']}", "X-Hub-Purpose": "audit"}
    caller = {"Authorization": f"Bearer {tokens['civil-affairs-app']}", "X-Hub-Purpose": "social_assistance"}
    heavy: list[tuple[int, int]] = []

    def send_heavy() -> None:
        with httpx.Client(base_url=base, headers=auditor, timeout=300) as client:
            for _ in range(2):
                response = client.post("/graphql", json={"query": HEAVY})
                body = response.json()
                heavy.append(
                    (response.status_code, sum(len(found["nodes"]) for found in (body["data"] or {}).values()))
                )

    waits: list[float] = []
    with httpx.Client(base_url=base, headers=caller, timeout=60) as client:
        # Warm: the lookup's plan and statement are made before the heavy request starts.
        client.post("/graphql", json={"query": LOOKUP, "variables": {"key": "CASD000001"}})
        workers = [threading.Thread(target=send_heavy) for _ in range(AT_ONCE)]
        for worker in workers:
            worker.start()
        n = 0
        while any(worker.is_alive() for worker in workers):
            n += 1
            began = time.perf_counter()
            response = client.post("/graphql", json={"query": LOOKUP, "variables": {"key": f"CASD{n % 9000 + 1:06d}"}})
            waits.append(time.perf_counter() - began)
            assert response.status_code == 200, response.text
            assert response.json()["data"]["civilAffairsServiceDelivery"]["deliveryId"] == f"CASD{n % 9000 + 1:06d}"
            time.sleep(max(0.0, 0.1 - waits[-1]))
        for worker in workers:
            worker.join()
    # Every heavy request was answered in full: none was refused, nor cut short.
    assert heavy == [(200, LISTS * ROWS)] * 2 * len(workers)
    assert len(waits) >= 5
    assert max(waits) < SLOWEST_S, sorted(waits)[-5:]
