"""Two hubs made from the demo for the Federation tests: civil affairs in one, every other
department in the other, each with a hub database of its own (a copy of the demo's, so both
hold the blind-index key the data is indexed under and the demo's apps), sharing `Resident`
under the blind index of the resident ID number, and trusting one gateway key."""

from __future__ import annotations

import asyncio
import base64
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from hub.config import Settings, load_settings
from hub.demo.workspace import Workspace, open_workspace_keyring
from tests.demo_copies import copy_demo_manifests, copy_hub_database

# Hub B serves these departments; hub A the others.
HUB_B = frozenset({"civil_affairs"})


@dataclass(frozen=True)
class HubPair:
    a: Settings
    b: Settings
    # The gateway's Ed25519 private key (raw), whose public half both hubs trust.
    gateway_key: bytes
    fingerprint: str


def shared_resident(department: str, fingerprint: str) -> list[dict[str, Any]]:
    """The `shared` declaration of each department that holds persons' resident IDs."""
    members = {
        "population": [{"entity": "Person", "field": "idNumber", "name": "person"}],
        "civil_affairs": [
            {"entity": "AssistanceCase", "field": "recipientIdNumber", "name": "assistanceCases", "many": True}
        ],
    }.get(department)
    if members is None:
        return []
    declared = {"type": "Resident", "key": "residentIndex", "index_domain": "resident_id"}
    return [{**declared, "index_fingerprint": fingerprint, "members": members}]


def _manifests(workspace: Workspace, folder: Path, departments: frozenset[str], fingerprint: str) -> Path:
    def edit(document: dict[str, Any]) -> None:
        for entity in document["entities"]:
            # Relations to departments of the other hub leave: the gateway joins those.
            entity["relations"] = [
                r
                for r in entity.get("relations", [])
                if "." not in r["target"] or r["target"].split(".", 1)[0] in departments
            ]
            # So do lineage edges to them: each hub traces within its own departments.
            entity["lineage"] = [
                e
                for e in entity.get("lineage", [])
                if "." not in e.get("to", "") or e["to"].split(".", 1)[0] in departments
            ]
        demand = document.get("demand")
        if demand is not None:
            # Demand answered by the other hub's departments is that hub's to report on.
            demand["answers"] = [a for a in demand["answers"] if a["department"] in departments]
            demand["bases"] = {d: f for d, f in demand.get("bases", {}).items() if d in departments}
            if not demand["answers"]:
                del document["demand"]
        shared = shared_resident(document["department"], fingerprint)
        if shared:
            document["shared"] = shared

    manifests = copy_demo_manifests(workspace, folder / "manifests", edit)
    for copied in manifests.glob("*.yaml"):
        if copied.stem not in departments:
            copied.unlink()
    return manifests


def hub_pair(workspace: Workspace, root: Path, environ: dict[str, str] | None = None) -> HubPair:
    """Settings of the two hubs, in folders under `root`."""
    keyring, _ = asyncio.run(open_workspace_keyring(workspace))
    fingerprint = keyring.index_fingerprint("resident_id")
    assert fingerprint is not None
    gateway_key = os.urandom(32)
    public = _public_b64(gateway_key)
    everything = frozenset(p.stem for p in workspace.manifests.glob("*.yaml"))
    settings = []
    for name, departments in (("a", everything - HUB_B), ("b", HUB_B)):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        manifests = _manifests(workspace, folder, departments, fingerprint)
        database = folder / "hub.db"
        # Without what a hub serving every department stored there when another test served
        # the demo first (its policy, seeded over the whole catalog, and its catalog hash):
        # each hub of the pair seeds its own over its own departments.
        copy_hub_database(workspace, database, ("hub_policy_change", "hub_policy_snapshot", "hub_catalog"))
        settings.append(
            load_settings(
                {
                    "HUB_DATABASE_URL": f"sqlite+aiosqlite:///{database}",
                    "HUB_GATEWAY_PUBLIC_KEYS": public,
                    "HUB_TOKEN_CACHE_SECONDS": "0",
                    **(environ or {}),
                },
                manifests_dir=manifests,
                master_key_file=workspace.master_key_file,
            )
        )
    return HubPair(settings[0], settings[1], gateway_key, fingerprint)


def _public_b64(private: bytes) -> str:
    raw = Ed25519PrivateKey.from_private_bytes(private).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return base64.b64encode(raw).decode()
