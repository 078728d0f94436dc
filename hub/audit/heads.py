"""Signed tree heads: (size, time, root) signed with the hub's Ed25519 key.

The signed message is fixed bytes, so any Ed25519 library checks it (docs/audit.md):

    b"hub-audit-tree-head/1\\n" || size (8 bytes, big-endian) || time in µs (8 bytes) || root (32)

The hub signs at an interval when the log has grown (`HeadSigner.run`) and on demand
(`hub audit head --sign`); the heads are kept, so a witness can ask for a consistency proof from
any size it saw.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hub.audit.models import AuditTreeHead
from hub.audit.tree import log_size, root_at
from hub.crypto.signing import TreeSigner, verify_signature

CONTEXT = b"hub-audit-tree-head/1\n"


def head_message(size: int, at_us: int, root: bytes) -> bytes:
    return CONTEXT + size.to_bytes(8, "big") + at_us.to_bytes(8, "big") + root


@dataclass(frozen=True)
class TreeHead:
    size: int
    at_us: int
    root: bytes
    signature: bytes
    key_id: str

    def verifies(self, public_raw: bytes) -> bool:
        return verify_signature(public_raw, head_message(self.size, self.at_us, self.root), self.signature)

    def exported(self) -> dict[str, Any]:
        return {
            "treeSize": self.size,
            "timestamp": self.at_us,
            "rootHash": base64.b64encode(self.root).decode(),
            "signature": base64.b64encode(self.signature).decode(),
            "keyId": self.key_id,
        }

    @classmethod
    def parse(cls, document: Any) -> TreeHead:
        """A head as `exported` wrote it; ValueError when it is not one."""
        try:
            return cls(
                int(document["treeSize"]),
                int(document["timestamp"]),
                base64.b64decode(document["rootHash"], validate=True),
                base64.b64decode(document["signature"], validate=True),
                str(document["keyId"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a tree head: {exc}") from None


def _head(row: AuditTreeHead) -> TreeHead:
    return TreeHead(row.size, row.at_us, bytes(row.root), bytes(row.signature), row.key_id)


async def latest_head(session: AsyncSession) -> TreeHead | None:
    row = await session.scalar(select(AuditTreeHead).order_by(AuditTreeHead.size.desc(), AuditTreeHead.id.desc()))
    return None if row is None else _head(row)


async def all_heads(session: AsyncSession) -> list[TreeHead]:
    rows = await session.scalars(select(AuditTreeHead).order_by(AuditTreeHead.size, AuditTreeHead.id))
    return [_head(row) for row in rows]


async def sign_head(session: AsyncSession, signer: TreeSigner, force: bool = False) -> TreeHead:
    """Sign the log's current size, unless the latest head has it already (and not `force`)."""
    size = await log_size(session)
    latest = await latest_head(session)
    if latest is not None and latest.size == size and not force:
        return latest
    root = await root_at(session, size)
    at_us = time.time_ns() // 1000
    head = TreeHead(size, at_us, root, signer.sign(head_message(size, at_us, root)), signer.key_id)
    session.add(AuditTreeHead(size=size, at_us=at_us, root=root, signature=head.signature, key_id=head.key_id))
    return head


class HeadSigner:
    """Signs a head every `interval_s` while the log grows (one task per process)."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], signer: Callable[[], TreeSigner], interval_s: float
    ) -> None:
        self._sessions = sessions
        self._signer = signer
        self._interval_s = interval_s

    async def sign(self) -> TreeHead:
        async with self._sessions() as session, session.begin():
            return await sign_head(session, self._signer())

    async def run(self) -> None:
        log = logging.getLogger("hub.audit")
        while True:
            await asyncio.sleep(self._interval_s)
            try:
                await self.sign()
            except Exception as exc:  # the next turn tries again; serving goes on
                log.warning("could not sign a tree head: %s", type(exc).__name__)
