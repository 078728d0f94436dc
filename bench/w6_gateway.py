"""W6 through a Federation gateway against direct, in the same run: one civil affairs service
delivery by its key (W6's operation, 12 fields), 32 closed-loop clients (wrk), sent (a) to the
hub directly with the app's bearer token and (b) to Hive Gateway, which signs an assertion for
the same app and forwards the operation to the hub as a subgraph.

    .venv/bin/python -m bench.w6_gateway [--duration 10] [--runs 3]

Needs the bench database and keys (bench/README.md), wrk, Node 20 and the gateway installed in
tests/federation (`npm ci` there). The hub serves the bench data with one entity shared
(`Resident`, so that it is a subgraph); the gateway's supergraph is composed from the hub's own
`_service` SDL. Both contenders rotate through the same 1,000 keys; their data is compared
first. Runs interleave, rotating who goes first (bench/load_wrk.py). CPU per request is read
for the hub (direct) and for the gateway process (through the gateway: the hub's share is
measured alongside and printed too).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

from bench import w6
from bench.database import bench_url
from bench.hub_setup import KEYS, URL_ENV, hub_env, prepare_hub, register_app
from bench.load_wrk import WrkTarget, measure_wrk, process_cpu_s, wrk_version
from bench.servers import Server, start, stop, wait_ready
from hub.crypto.assertion import sign_assertion
from hub.crypto.keyring import load_keyring
from hub.crypto.master import read_master_key_file
from hub.db.engine import hub_engine, sessions

REPO = Path(__file__).resolve().parent.parent
FEDERATION = REPO / "tests" / "federation"
GATEWAY_TOKEN = "bench-gateway-caller"
NAMES = ("hub, direct", "hub through Hive Gateway")


def _share_resident(manifests: Path, fingerprint: str) -> None:
    path = manifests / "civil_affairs.yaml"
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    document["shared"] = [
        {
            "type": "Resident",
            "key": "residentIndex",
            "index_domain": "resident_id",
            "index_fingerprint": fingerprint,
            "members": [{"entity": "AssistanceCase", "field": "recipientIdNumber", "name": "cases", "many": True}],
        }
    ]
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")


async def _fingerprint() -> str:
    """The bench data's resident_id index key's fingerprint, read from the bench's keys without
    migrating their hub database (another checkout may have migrated it further)."""
    master = read_master_key_file(KEYS.master_key_file)
    engine = hub_engine(KEYS.hub_database)
    try:
        async with sessions(engine)() as session:
            found = (await load_keyring(session, master)).index_fingerprint("resident_id")
    finally:
        await engine.dispose()
    if found is None:
        raise RuntimeError("the bench keys hold no resident_id index key: load the bench data first")
    return found


def _gateway_keys() -> tuple[bytes, str, str]:
    private = Ed25519PrivateKey.generate()
    raw = private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    pem = private.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode()
    public = base64.b64encode(private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()
    return raw, pem, public


def _supergraph(folder: Path, hub: Server, private: bytes) -> Path:
    answer = httpx.post(
        f"{hub.base_url}/graphql",
        json={"query": "{ _service { sdl } }"},
        headers={"X-Hub-Gateway-Assertion": sign_assertion(private, "bench")},
        timeout=30,
        trust_env=False,
    ).json()
    sdl = folder / "hub.graphql"
    sdl.write_text(answer["data"]["_service"]["sdl"], encoding="utf-8")
    out = folder / "supergraph.graphql"
    node = shutil.which("node") or "node"
    subprocess.run(
        [node, "compose.mjs", str(out), f"hub={hub.base_url}/graphql={sdl}"], cwd=FEDERATION, check=True, timeout=120
    )
    return out


def _check(direct: str, gateway: str, token: str, keys: list[str]) -> int:
    """Both contenders send the same data for every 40th key."""
    checked = 0
    with httpx.Client(trust_env=False, timeout=30) as client:
        for key in keys[:: w6.SAMPLE_EVERY]:
            body = {"query": w6.QUERY, "variables": {"key": key}}
            a = client.post(f"{direct}/graphql", json=body, headers=_headers(token)).json()
            b = client.post(f"{gateway}/graphql", json=body, headers=_headers(GATEWAY_TOKEN)).json()
            if a.get("data") != b.get("data") or a.get("errors") or b.get("errors"):
                raise RuntimeError(f"direct and gateway differ for {key}: {a!r} / {b!r}")
            checked += 1
    return checked


def _headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "X-Hub-Purpose": w6.PURPOSE, "Content-Type": "application/json"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    wrk = wrk_version()
    keys = asyncio.run(w6.delivery_ids(bench_url()))
    fingerprint = asyncio.run(_fingerprint())
    servers: list[Server] = []
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="hub-bench-gw-") as tmp:
        folder = Path(tmp)
        try:
            manifests, database_url = prepare_hub(folder)
            _share_resident(manifests, fingerprint)
            token = asyncio.run(register_app(database_url))
            private, pem, public = _gateway_keys()
            env = {
                "HUB_DATABASE_URL": database_url.render_as_string(hide_password=False),
                "HUB_MANIFESTS": str(manifests),
                URL_ENV: bench_url().render_as_string(hide_password=False),
                "HUB_GATEWAY_PUBLIC_KEYS": public,
                **hub_env(),
            }
            hub_cmd = [str(Path(sys.executable).parent / "hub"), "serve", "--port", "{port}"]
            hub = start("hub", hub_cmd, env, folder / "hub.log", REPO)
            servers.append(hub)
            wait_ready(hub, "/healthz")
            supergraph = _supergraph(folder, hub, private)
            gateway_env = {
                "HUB_SUPERGRAPH": str(supergraph),
                "HUB_GATEWAY_PRIVATE_KEY": pem,
                "HUB_GATEWAY_CALLERS": json.dumps({GATEWAY_TOKEN: "bench"}),
            }
            binary = str(FEDERATION / "node_modules" / ".bin" / "hive-gateway")
            gw_cmd = [binary, "supergraph", str(supergraph), "--port", "{port}"]
            gateway = start("gateway", gw_cmd, gateway_env, folder / "gateway.log", FEDERATION)
            servers.append(gateway)
            wait_ready(gateway, "/healthcheck")
            checked = _check(hub.base_url, gateway.base_url, token, keys)
            bodies = [("/graphql", orjson.dumps({"query": w6.QUERY, "variables": {"key": k}}).decode()) for k in keys]
            targets = [
                WrkTarget(NAMES[0], hub.base_url, "POST", bodies, _headers(token), hub.process.pid),
                WrkTarget(NAMES[1], gateway.base_url, "POST", bodies, _headers(GATEWAY_TOKEN), gateway.process.pid),
            ]
            hub_cpu_before = process_cpu_s(hub.process.pid)
            started = time.monotonic()
            series = measure_wrk(targets, 1, args.runs, args.duration, w6.CONNECTIONS, w6.THREADS, progress=print)
            elapsed = time.monotonic() - started
            hub_cpu = process_cpu_s(hub.process.pid) - hub_cpu_before
        finally:
            for server in reversed(servers):
                stop(server)
    load_after = os.getloadavg()
    report: dict[str, Any] = {
        "workload": "W6 via Federation gateway",
        "when": datetime.now(UTC).isoformat(),
        "wrk": wrk,
        "connections": w6.CONNECTIONS,
        "duration_s": args.duration,
        "runs": args.runs,
        "keys_checked": checked,
        "load_average_before": load_before,
        "load_average_after": load_after,
        "hub_cpu_s_all_runs": hub_cpu,
        "elapsed_s": elapsed,
        "series": {s.name: [r.as_dict() for r in s.runs] for s in series},
    }
    out = REPO / "bench" / "results" / f"w6-gateway-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2), encoding="utf-8")
    print(f"load average before {load_before}, after {load_after}; {checked} keys checked alike")
    print(f"{'contender':32} {'req/s (median, min-max)':>28} {'p50 ms':>8} {'p99 ms':>8} {'CPU us/req':>11}")
    for s in series:
        median, low, high = s.rps
        cpu = s.cpu_us
        cpu_text = "-" if cpu is None else f"{cpu[0]:,.0f}"
        print(
            f"{s.name:32} {median:>12,.0f} ({low:,.0f}-{high:,.0f})"
            f" {s.latency_ms('p50'):>8.1f} {s.latency_ms('p99'):>8.1f} {cpu_text:>11}"
        )
    print("CPU us/req: the hub's process for direct, the gateway's process through the gateway")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
