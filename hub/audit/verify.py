"""`hub audit verify`: the whole log recomputed from its rows.

Each event's leaf is recomputed from its columns (and its persons' digest from its person rows)
and compared with the leaf hash stored when it was written; the tree is rebuilt from the
recomputed leaves and its root compared, at every signed tree head's size, with the signed root
(whose signature is checked). So a row changed, deleted, inserted or moved is found, and so is
a change made to a row and its stored hash together: the signed roots no longer match.

Rows are read a page of positions at a time, so memory stays flat over millions of events.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import orjson
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hub.audit.event import LEAF_KEYS, canonical, persons_digest
from hub.audit.heads import TreeHead, all_heads
from hub.audit.merkle import Frontier, leaf_hash, range_nodes
from hub.audit.models import AuditEvent, AuditNode, AuditPerson
from hub.audit.store import read_nodes
from hub.audit.tree import log_size

PAGE = 10_000
COLUMNS = [getattr(AuditEvent, name) for name in LEAF_KEYS]


@dataclass
class Finding:
    position: int | None
    kind: str  # altered, deleted, inserted, reordered, head
    message: str


@dataclass
class Report:
    size: int = 0
    events: int = 0
    heads: int = 0
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings


async def verify_log(
    sessions: async_sessionmaker[AsyncSession],
    public_raw: bytes | None,
    progress: Callable[[int, int], None] | None = None,
) -> Report:
    report = Report()
    async with sessions() as session:
        report.size = size = await log_size(session)
        heads = await all_heads(session)
        highest = await session.scalar(select(AuditEvent.position).order_by(AuditEvent.position.desc()).limit(1))
    pending: list[TreeHead] = sorted(heads, key=lambda h: h.size)
    report.heads = len(pending)
    frontier = Frontier()
    _check_heads(report, pending, frontier, public_raw)
    end = max(size, (highest or 0) + 1)
    for start in range(0, end, PAGE):
        stop = min(start + PAGE, end)
        async with sessions() as session:
            await _page(
                session,
                report,
                frontier,
                start,
                stop,
                size,
                lambda: _check_heads(report, pending, frontier, public_raw),
            )
        if progress is not None:
            progress(min(stop, size), size)
    if frontier.size == size and size:
        async with sessions() as session:
            stored = await read_nodes(session, range_nodes(0, size))
        if [stored.get(node) for node in range_nodes(0, size)] != [h for _, h in frontier.nodes]:
            report.findings.append(Finding(None, "altered", "the stored right edge of the tree differs from the rows"))
    for head in pending:
        report.findings.append(Finding(None, "head", f"a tree head signs {head.size} events; the log holds {size}"))
    return report


async def _page(
    session: AsyncSession,
    report: Report,
    frontier: Frontier,
    start: int,
    stop: int,
    size: int,
    appended: Callable[[], None],
) -> None:
    rows = (
        await session.execute(
            select(AuditEvent.position, *COLUMNS)
            .where(AuditEvent.position >= start, AuditEvent.position < stop)
            .order_by(AuditEvent.position)
        )
    ).all()
    stored = dict(
        (
            await session.execute(
                # Level 0: a leaf's key is its position.
                select(AuditNode.node, AuditNode.hash).where(AuditNode.node >= start, AuditNode.node < stop)
            )
        ).all()
    )
    persons: dict[int, list[str]] = {}
    for position, person in await session.execute(
        select(AuditPerson.position, AuditPerson.person).where(
            AuditPerson.position >= start, AuditPerson.position < stop
        )
    ):
        persons.setdefault(position, []).append(person)
    by_position = {row[0]: row[1:] for row in rows}
    columns_of: dict[int, dict[str, object]] = {}
    leaves: dict[int, bytes] = {}
    for position, values in by_position.items():
        columns = dict(zip(LEAF_KEYS, values, strict=True))
        columns["released"] = orjson.loads(str(columns["released"]))
        columns_of[position] = columns
        leaves[position] = leaf_hash(canonical(position, columns))
        touched = persons.get(position, [])
        if position < size and (
            columns["persons"] != len(touched) or columns["persons_digest"] != persons_digest(touched)
        ):
            report.findings.append(Finding(position, "altered", f"the persons of event {position} were changed"))
    wrong = [p for p in range(start, min(stop, size)) if p in leaves and leaves[p] != bytes(stored.get(p, b""))]
    for position in range(start, min(stop, size)):
        if position not in by_position:
            report.findings.append(Finding(position, "deleted", f"event {position} is missing"))
            continue
        report.events += 1
        if position in wrong:
            moved = any(
                other != position and leaf_hash(canonical(other, columns_of[position])) == bytes(stored.get(other, b""))
                for other in wrong
            )
            kind = "reordered" if moved else "altered"
            report.findings.append(Finding(position, kind, f"event {position} is not the event written there ({kind})"))
        frontier.append(leaves[position])
        appended()
    for position in sorted(p for p in by_position if p >= size):
        report.findings.append(Finding(position, "inserted", f"event {position} lies beyond the log's size {size}"))


def _check_heads(report: Report, pending: list[TreeHead], frontier: Frontier, public_raw: bytes | None) -> None:
    while pending and pending[0].size <= frontier.size:
        head = pending.pop(0)
        if head.size == frontier.size:
            _check_head(report, head, frontier.root(), public_raw)


def _check_head(report: Report, head: TreeHead, root: bytes, public_raw: bytes | None) -> None:
    if public_raw is not None and not head.verifies(public_raw):
        report.findings.append(Finding(None, "head", f"the tree head of {head.size} events has a bad signature"))
    if root != head.root:
        report.findings.append(
            Finding(None, "head", f"the rows do not give the signed root of the tree head of {head.size} events")
        )
