"""`hub lineage verify`: the recorded links against their hash chain and the access trail.

The chain finds a row changed in place (its hash no longer matches) or removed or moved from
the middle (the next row no longer follows it). The trail finds the rest: every recording's
row hash is in the audit event of its request (protected by the log's Merkle tree), so a
removed last row, or a row rewritten with a recomputed chain, no longer matches the trail.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import orjson
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hub.audit.models import AuditEvent
from hub.lineage.links import GENESIS, columns_of, row_hash
from hub.lineage.models import LineageLink

PAGE = 1000


@dataclass
class LinkReport:
    links: int = 0
    events: int = 0
    findings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings


async def verify_links(sessions: async_sessionmaker[AsyncSession]) -> LinkReport:
    report = LinkReport()
    hashes: dict[int, str] = {}
    previous = GENESIS
    async with sessions() as session:
        after = 0
        while True:
            rows = list(
                await session.scalars(
                    select(LineageLink).where(LineageLink.id > after).order_by(LineageLink.id).limit(PAGE)
                )
            )
            if not rows:
                break
            for row in rows:
                report.links += 1
                if row.prev_hash != previous:
                    report.findings.append(
                        f"link {row.id}: does not follow the link before it (a link was removed or moved)"
                    )
                if row_hash(columns_of(row)) != row.row_hash:
                    report.findings.append(f"link {row.id}: changed since it was recorded")
                hashes[row.id] = row.row_hash
                previous = row.row_hash
            after = rows[-1].id
        named: dict[int, tuple[str, int]] = {}
        events = select(AuditEvent.position, AuditEvent.released).where(AuditEvent.released.like('%"links"%'))
        for position, released in await session.execute(events):
            links = orjson.loads(released).get("links", [])
            report.events += 1
            for _, link_id, digest in links:
                named[int(link_id)] = (str(digest), position)
    for link_id, (digest, position) in sorted(named.items()):
        stored = hashes.get(link_id)
        if stored is None:
            report.findings.append(f"link {link_id}: recorded in audit event {position} but missing from the table")
        elif stored != digest:
            report.findings.append(f"link {link_id}: differs from its recording in audit event {position}")
    for link_id in sorted(set(hashes) - set(named)):
        report.findings.append(f"link {link_id}: no audit event records it")
    return report
