"""What an operator sets about the access trail. `audit_settings(environ)` is called by
`load_settings` with its snapshot of the environment: nothing here reads `os.environ`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

WRITERS = ("process", "thread")


class AuditSettingsError(ValueError):
    """A malformed trail setting; the message names the variable."""


@dataclass(frozen=True)
class AuditSettings:
    # HUB_AUDIT: off only to price the trail (the benches); a hub serving callers keeps it on.
    enabled: bool = True
    # HUB_AUDIT_UNLOGGED_L1_L2: when the trail cannot be written, L1 and L2 data may still be
    # served (L3 and L4 never are). Off by default: nothing leaves unrecorded.
    unlogged_low_tiers: bool = False
    # HUB_AUDIT_SIGN_SECONDS: how often a tree head is signed while the log grows.
    sign_interval_s: float = 60.0
    # HUB_AUDIT_BATCH: events written in one transaction at most (group commit).
    batch_max: int = 500
    # HUB_AUDIT_GATHER_MS: how long a flush waits, at most, for the events of requests still in
    # flight (hub/audit/writer.py); 0 writes what is queued at once. Unset, the writer decides:
    # 12 ms in the hub's process, none with the writer's process.
    gather_ms: float | None = None
    # HUB_AUDIT_WRITER: where flushes are written: "process" (a process of the hub's own,
    # hub/audit/flush_process.py) or "thread" (the hub's process). Unset, the command decides:
    # `hub serve` and `hub demo` take "process"; the library (tests, in-process benches) "thread".
    writer: str | None = None


def audit_settings(environ: Mapping[str, str]) -> AuditSettings:
    def flag(name: str, default: str) -> bool:
        text = environ.get(name, default).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("", "0", "false", "no", "off"):
            return False
        raise AuditSettingsError(f"{name} must be true or false")

    try:
        interval = float(environ.get("HUB_AUDIT_SIGN_SECONDS", "60"))
        batch = int(environ.get("HUB_AUDIT_BATCH", "500"))
        given = environ.get("HUB_AUDIT_GATHER_MS", "").strip()
        gather = float(given) if given else None
    except ValueError:
        raise AuditSettingsError(
            "HUB_AUDIT_SIGN_SECONDS, HUB_AUDIT_BATCH and HUB_AUDIT_GATHER_MS must be numbers"
        ) from None
    if not 1 <= interval <= 86_400:
        raise AuditSettingsError("HUB_AUDIT_SIGN_SECONDS must be seconds from 1 to 86400")
    if not 1 <= batch <= 10_000:
        raise AuditSettingsError("HUB_AUDIT_BATCH must be from 1 to 10000")
    if gather is not None and not 0 <= gather <= 100:
        raise AuditSettingsError("HUB_AUDIT_GATHER_MS must be milliseconds from 0 to 100")
    writer = environ.get("HUB_AUDIT_WRITER", "").strip().lower() or None
    if writer not in (None, *WRITERS):
        raise AuditSettingsError("HUB_AUDIT_WRITER must be process or thread")
    return AuditSettings(
        flag("HUB_AUDIT", "on"), flag("HUB_AUDIT_UNLOGGED_L1_L2", "off"), interval, batch, gather, writer
    )
