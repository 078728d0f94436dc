"""What /readyz reports: whether the hub can serve (its own database answers) and how each
department stands (up, degraded, open circuit), from its breaker.

A department's state comes from the reads requests made, not from probing it here: a readiness
poll every few seconds must not load department databases, and an outage shows in the breaker
as soon as reads meet it; a department's schema from its last check against its manifest. The
body names departments, states and schema mismatches only, never a URL or an error.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from hub.health.breaker import Breaker
from hub.health.schema_gate import SchemaGate, SchemaState

log = logging.getLogger("hub.health")

# How long the hub database may take to answer `SELECT 1` before the hub counts as not ready.
HUB_CHECK_TIMEOUT_S = 2.0


async def readiness(
    engine: AsyncEngine, breakers: Mapping[str, Breaker], gates: Mapping[str, SchemaGate] | None = None
) -> tuple[int, dict[str, Any]]:
    """The status code and body of /readyz: 200 while the hub database answers, whatever the
    departments' states (the hub serves the others), 503 when it does not. A department whose
    database does not match its manifest is `schema_mismatch`, with the mismatches (manifest file,
    entity, field and what the database has: no URL, no error text)."""
    hub_up = await hub_database_answers(engine)
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
    body = {
        "status": "ready" if hub_up else "unavailable",
        "hub_database": "up" if hub_up else "down",
        "departments": departments,
    }
    return (200 if hub_up else 503), body


async def hub_database_answers(engine: AsyncEngine) -> bool:
    try:
        async with asyncio.timeout(HUB_CHECK_TIMEOUT_S), engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception as error:
        # The class only: a driver's message may carry the database's address.
        log.warning("the hub database does not answer: %s", type(error).__name__)
        return False
    return True
