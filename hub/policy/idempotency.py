"""Idempotency keys of policy changes: a change retried under the key it was first sent with
applies once.

A client that lost the answer to a change (a timeout, a dropped connection) cannot tell whether
it was applied; sending it again must not apply it twice (a second version, a second record).
The key is the caller's, scoped to the caller (two callers may use the same key); it is kept
with the applied change's record, with a digest of what was asked, so the same key sent with a
different change is refused instead of answered with the first one's result.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hub.errors import BadUserInput
from hub.policy.models import PolicyChangeRow

# Printable, no spaces, bounded: the key is stored and compared, never interpreted.
KEY = re.compile(r"[A-Za-z0-9._:-]{1,100}")


@dataclass(frozen=True)
class RequestKey:
    """An idempotency key and the digest of the change asked under it."""

    key: str
    digest: str


def request_key(key: str | None, kind: str, asked: Any) -> RequestKey | None:
    """The key of a change (`kind`: what sort, `asked`: its edits and reason as JSON values);
    None without a key. BadUserInput for a key that is not 1-100 of `A-Z a-z 0-9 . _ : -`."""
    if key is None:
        return None
    if not KEY.fullmatch(key):
        raise BadUserInput("an idempotency key is 1 to 100 characters of A-Z, a-z, 0-9, '.', '_', ':' and '-'")
    canonical = json.dumps([kind, asked], sort_keys=True, separators=(",", ":"), default=str)
    return RequestKey(key, hashlib.sha256(canonical.encode()).hexdigest())


async def earlier(session: AsyncSession, actor: str, key: RequestKey) -> PolicyChangeRow | None:
    """The change `actor` applied under `key` before, if any. BadUserInput if that change was
    a different one: a key names one change, and answering another's result would mislead."""
    row = await session.scalar(
        select(PolicyChangeRow).where(PolicyChangeRow.actor == actor, PolicyChangeRow.idempotency_key == key.key)
    )
    if row is not None and row.request_digest != key.digest:
        raise BadUserInput(
            f"the idempotency key {key.key!r} was used for a different change (version {row.version}); "
            "use a new key for a new change"
        )
    return row
