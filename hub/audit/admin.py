"""Admin actions as events of the trail: policy changes and refused attempts (grants and
revocations among their edits), role assignments, policy imports, app tokens created, rotated
and revoked, data-key rotations and rewraps, trusted documents registered and removed.

Each is one event of kind `admin` in the same Merkle log as the requests, written in the
transaction that makes the change (`record_admin`), so neither lands without the other. The
event says who (the principal and its department; `cli:<user>` for the command line, which runs
with the hub database's own credentials), what (the action's name, its target and its edits, or
why it was refused), why (the reason given) and which departments it concerns, so a data steward
reads the admin events about its department (hub/audit/query.py) and no other's.

Free text (a reason, a refusal's detail, a target, the edits) never brings a personal identifier
into the trail: a resident ID number (valid check character) or a mobile number in it is kept as
`[redacted]`, so the trail holds no plain identifier whatever an admin types.

What an action keeps is bounded: a reason and a refusal's detail at most KEPT_TEXT characters,
edits at most KEPT_EDITS characters of JSON (else their kinds only), at most MAX_CONCERNS
departments named (else all, `*`). Refused attempts are written only as often as the policy
store keeps them whole (hub/policy/store.py), so a caller cannot flood the log with refusals.
"""

from __future__ import annotations

import getpass
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from hub.audit.event import Event
from hub.audit.store import append_in
from hub.onboarding.guesses import is_resident_id

# The actions recorded; a name outside this list is a programming error, refused.
ACTIONS = frozenset(
    {
        "policy.change",
        "policy.import",
        "roles.assign",
        "app.create",
        "app.rotate",
        "app.revoke",
        "keys.rotate",
        "keys.rewrap",
        "document.register",
        "document.remove",
    }
)
ALL = "*"
REDACTED = "[redacted]"
_ID_LIKE = re.compile(r"(?<![0-9A-Za-z])[1-9]\d{16}[\dXx](?![0-9A-Za-z])")
_MOBILE_LIKE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")
# The department the command line acts as (the hub's own).
CLI_DEPARTMENT = "platform"
KEPT_TEXT = 500
KEPT_EDITS = 20_000
MAX_CONCERNS = 50
OUTCOMES = ("applied", "refused")


@dataclass(frozen=True)
class AdminAction:
    name: str
    actor: str
    department: str
    # applied | refused
    outcome: str
    reason: str = ""
    # What it acted on: an app's name, a document's id, a department, "policy".
    target: str | None = None
    # Why it was refused (a refusal's message), empty when applied.
    detail: str = ""
    edits: list[dict[str, Any]] = field(default_factory=list)
    # The departments whose data, apps or keys it concerns (ALL for the whole policy).
    concerns: frozenset[str] = frozenset()
    code: str | None = None
    policy_version: str | None = None

    def event(self) -> Event:
        if self.name not in ACTIONS:
            raise ValueError(f"not an admin action: {self.name}")
        if self.outcome not in OUTCOMES:
            raise ValueError(f"an admin action is applied or refused, not {self.outcome}")
        refused = self.outcome == "refused"
        # A request's status is HTTP's; an admin event's says the same: applied, forbidden, bad input.
        status = (403 if self.code == "FORBIDDEN" else 400) if refused else 200
        action = {
            "name": self.name,
            "target": None if self.target is None else scrubbed(self.target[:KEPT_TEXT]),
            "reason": scrubbed(self.reason[:KEPT_TEXT]),
            "detail": scrubbed(self.detail[:KEPT_TEXT]),
            "edits": bounded(self.edits),
        }
        return Event(
            at_us=time.time_ns() // 1000,
            principal=self.actor[:100],
            department=self.department[:100],
            purpose=None,
            operation_hash=None,
            # The action's name is the event's operation: `auditEvents` filters by it exactly.
            operation_name=self.name,
            document_id=None,
            outcome=self.outcome,
            status=status,
            code=(self.code or "BAD_USER_INPUT") if refused else None,
            policy_version=self.policy_version,
            released={"fields": [], "rows": {}},
            kind="admin",
            action=action,
            concerns=concerns(self.concerns),
        )


def concerns(departments: Iterable[str]) -> str:
    """The stored form: ",a,b," (sorted), or ",*," for all or too many to name."""
    names = sorted(set(departments))
    if ALL in names or len(names) > MAX_CONCERNS:
        return f",{ALL},"
    return "," + ",".join(names) + "," if names else ","


def scrubbed(text: str) -> str:
    """`text` with every resident ID number and mobile number in it replaced by REDACTED."""
    text = _ID_LIKE.sub(lambda m: REDACTED if is_resident_id(m.group()) else m.group(), text)
    return _MOBILE_LIKE.sub(REDACTED, text)


def bounded(edits: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Edits as kept: whole when small, else their kinds only; identifiers in them redacted
    (the replacement holds no quote or backslash, so the JSON stays JSON)."""
    text = orjson.dumps(edits, default=str).decode()
    if len(text) <= KEPT_EDITS:
        return orjson.loads(scrubbed(text))  # type: ignore[no-any-return]
    return [{"op": scrubbed(str(e.get("op", "?"))[:40]), "omitted": "too large to keep"} for e in edits[:100]]


def cli_actor() -> str:
    """Who runs a command: the operating-system user (the command line has no token)."""
    try:
        user = getpass.getuser()
    except Exception:  # no user name in this environment: say so rather than guess
        user = "unknown"
    return f"cli:{user}"[:100]


async def record_admin(session: AsyncSession, action: AdminAction, enabled: bool = True) -> None:
    """Write `action`'s event in `session`'s transaction (which must have begun)."""
    if not enabled:
        return
    await append_in(await session.connection(), [action.event()])
