"""What /readyz reports: whether the hub can serve (its own database answers) and how each
department stands (up, degraded, open circuit), from its breaker.

A department's state comes from the reads requests made, not from probing it here: a readiness
poll every few seconds must not load department databases, and an outage shows in the breaker
as soon as reads meet it; a department's schema from its last check against its manifest. The
body names departments, states and schema mismatches only, never a URL or an error.

With several instances (hub/instances) it also reports the catalog's hash against the one the
hub database records, and whether the instance has confirmed it holds every change: an instance
serving other manifests, or one that cannot confirm (and so withholds L3 and L4 fields), is not
ready.

In a Federation composition it lists, per blind-index domain the manifests share, whether this
hub holds the composition's key (shared_keys.py). A domain whose key differs leaves the instance
ready: every instance of a hub reads its keys from the one hub database, so all of them differ
alike, and taking them all out of the balancer would stop everything the hub serves for the one
type it already refuses (with DATA_INTEGRITY, saying why); an instance that missed an import
of the key is unconfirmed, and that already makes it not ready.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from hub.health.breaker import Breaker
from hub.health.schema_gate import SchemaGate, SchemaState
from hub.instances.feed import ChangeFeed
from hub.instances.models import PublishedCatalog

log = logging.getLogger("hub.health")

# How long the hub database may take to answer `SELECT 1` before the hub counts as not ready.
HUB_CHECK_TIMEOUT_S = 2.0


async def readiness(
    engine: AsyncEngine,
    breakers: Mapping[str, Breaker],
    gates: Mapping[str, SchemaGate] | None = None,
    changes: ChangeFeed | None = None,
    catalog_hash: str | None = None,
    shared_keys: dict[str, dict[str, Any]] | None = None,
) -> tuple[int, dict[str, Any]]:
    """The status code and body of /readyz: 200 while the hub database answers, whatever the
    departments' states (the hub serves the others), 503 when it does not. A department whose
    database does not match its manifest is `schema_mismatch`, with the mismatches (manifest file,
    entity, field and what the database has: no URL, no error text)."""
    hub_up, published = await hub_database_answers(engine)
    departments: dict[str, dict[str, Any]] = {
        name: {"state": breaker.health().value, "circuit": breaker.circuit.value}
        for name, breaker in sorted(breakers.items())
    }
    for name, gate in (gates or {}).items():
        entry = departments.setdefault(name, {})
        entry["schema"] = gate.state.value
        if gate.state is SchemaState.MISMATCH:
            entry["state"] = "schema_mismatch"
            entry["mismatches"] = list(gate.mismatches)
    ready = hub_up
    body: dict[str, Any] = {"hub_database": "up" if hub_up else "down", "departments": departments}
    if catalog_hash:
        matches = published is None or published == catalog_hash
        body["catalog"] = {
            "hash": catalog_hash,
            "published": published,
            "state": "matches" if published == catalog_hash else "unpublished" if published is None else "differs",
        }
        ready = ready and matches
    if shared_keys:
        # Reported, not counted against readiness (the module's docstring says why).
        body["shared_keys"] = shared_keys
    if changes is not None:
        body["changes"] = changes.report()
        ready = ready and changes.confirmed()
    return (200 if ready else 503), {"status": "ready" if ready else "unavailable", **body}


async def hub_database_answers(engine: AsyncEngine) -> tuple[bool, str | None]:
    """Whether the hub database answers, and the catalog hash it records (None if none)."""
    try:
        async with asyncio.timeout(HUB_CHECK_TIMEOUT_S), engine.connect() as connection:
            published = (await connection.execute(select(PublishedCatalog.hash))).scalar_one_or_none()
    except Exception as error:
        # The class only: a driver's message may carry the database's address.
        log.warning("the hub database does not answer: %s", type(error).__name__)
        return False, None
    return True, published
