"""`hub audit verify`: the whole log recomputed from its rows (and its archive files).

Each event's leaf is recomputed from its columns (and its persons' digest from its person rows)
and compared with the leaf hash stored when it was written; the tree is rebuilt from the
recomputed leaves and its root compared, at every signed tree head's size, with the signed root
(whose signature is checked). So a row changed, deleted, inserted or moved is found, and so is
a change made to a row and its stored hash together: the signed roots no longer match.

Archived events (`hub audit archive`) are read from their files, given in any order, and checked
the same way. Without them the archived prefix is taken from its stored subtree hashes, so the
events still in the tables are checked against the signed roots all the same.

Rows are read a page of positions at a time, so memory stays flat over millions of events.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hub.audit.archive import ArchivedEvent
from hub.audit.event import LEAF_COLUMNS, canonical, parsed, persons_digest
from hub.audit.heads import TreeHead, all_heads
from hub.audit.merkle import Frontier, leaf_hash, range_nodes
from hub.audit.models import AuditEvent, AuditLog, AuditNode
from hub.audit.store import TrailUnavailable, digest_lines, frontier_at, persons_between, read_nodes

PAGE = 10_000
COLUMNS = [getattr(AuditEvent, name) for name in LEAF_COLUMNS]


@dataclass
class Finding:
    position: int | None
    kind: str  # altered, deleted, inserted, reordered, head, archive
    message: str


@dataclass
class Report:
    size: int = 0
    events: int = 0
    heads: int = 0
    archived: int = 0
    # Archived events read from files (the rest of the archived prefix was taken as stored).
    from_archives: int = 0
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings


@dataclass(frozen=True)
class _Leaf:
    position: int
    leaf: bytes
    persons_ok: bool


class _Checker:
    """Feeds recomputed leaves, a page at a time, into the tree and compares them."""

    def __init__(self, report: Report, heads: list[TreeHead], public_raw: bytes | None) -> None:
        self.report = report
        self.pending = sorted(heads, key=lambda h: h.size)
        self.public_raw = public_raw
        self.frontier = Frontier()

    def resume(self, frontier: Frontier) -> None:
        self.frontier = frontier
        self.pending = [h for h in self.pending if h.size > frontier.size]

    def page(self, start: int, stop: int, leaves: dict[int, _Leaf], stored: dict[int, bytes]) -> None:
        report, size = self.report, self.report.size
        hashes = {p: leaf_hash(item.leaf) for p, item in leaves.items()}
        wrong = [p for p in range(start, min(stop, size)) if p in hashes and hashes[p] != stored.get(p)]
        for position in range(start, min(stop, size)):
            item = leaves.get(position)
            if item is None:
                report.findings.append(Finding(position, "deleted", f"event {position} is missing"))
                continue
            report.events += 1
            if not item.persons_ok:
                report.findings.append(Finding(position, "altered", f"the persons of event {position} were changed"))
            if position in wrong:
                moved = any(o != position and leaf_hash(_moved(item.leaf, o)) == stored.get(o) for o in wrong)
                kind = "reordered" if moved else "altered"
                report.findings.append(
                    Finding(position, kind, f"event {position} is not the event written there ({kind})")
                )
            self.frontier.append(hashes[position])
            self._heads()
        for position in sorted(p for p in leaves if p >= size):
            report.findings.append(Finding(position, "inserted", f"event {position} lies beyond the log's size {size}"))

    def _heads(self) -> None:
        while self.pending and self.pending[0].size <= self.frontier.size:
            head = self.pending.pop(0)
            if head.size != self.frontier.size:
                continue
            if self.public_raw is not None and not head.verifies(self.public_raw):
                self.report.findings.append(
                    Finding(None, "head", f"the tree head of {head.size} events has a bad signature")
                )
            if self.frontier.root() != head.root:
                self.report.findings.append(
                    Finding(
                        None, "head", f"the rows do not give the signed root of the tree head of {head.size} events"
                    )
                )


def _moved(leaf: bytes, position: int) -> bytes:
    """The leaf as it would read at another position (to tell a swap from a change)."""
    document: dict[str, Any] = orjson.loads(leaf)
    document["position"] = position
    return orjson.dumps(document, option=orjson.OPT_SORT_KEYS)


async def verify_log(
    sessions: async_sessionmaker[AsyncSession],
    public_raw: bytes | None,
    archives: Sequence[tuple[dict[str, Any], Iterator[ArchivedEvent]]] = (),
    progress: Callable[[int, int], None] | None = None,
) -> Report:
    report = Report()
    async with sessions() as session:
        log = (await session.execute(select(AuditLog.size, AuditLog.archived).where(AuditLog.id == 1))).one()
        report.size, report.archived = size, archived = int(log.size), int(log.archived)
        heads = await all_heads(session)
        highest = await session.scalar(select(AuditEvent.position).order_by(AuditEvent.position.desc()).limit(1))
    report.heads = len(heads)
    checker = _Checker(report, heads, public_raw)
    position = await _archived(sessions, checker, archives, archived)
    if position < archived:
        # The rest of the archived prefix as stored: the table's events still meet the signed roots.
        try:
            async with sessions() as session:
                checker.resume(await frontier_at(session, archived))
        except TrailUnavailable:
            report.findings.append(Finding(None, "altered", "the stored hashes of the archived events are missing"))
            return report
        position = archived
    end = max(size, (highest or 0) + 1)
    for start in range(position, end, PAGE):
        stop = min(start + PAGE, end)
        async with sessions() as session:
            leaves = await _table_page(session, start, stop)
            stored = await _stored(session, start, stop)
        checker.page(start, stop, leaves, stored)
        if progress is not None:
            progress(min(stop, size), size)
    frontier = checker.frontier
    if frontier.size == size and size:
        async with sessions() as session:
            edge = await read_nodes(session, range_nodes(0, size))
        if [edge.get(node) for node in range_nodes(0, size)] != [h for _, h in frontier.nodes]:
            report.findings.append(Finding(None, "altered", "the stored right edge of the tree differs from the rows"))
    for head in checker.pending:
        report.findings.append(Finding(None, "head", f"a tree head signs {head.size} events; the log holds {size}"))
    return report


async def _archived(
    sessions: async_sessionmaker[AsyncSession],
    checker: _Checker,
    archives: Sequence[tuple[dict[str, Any], Iterator[ArchivedEvent]]],
    archived: int,
) -> int:
    """Check the archive files, in order from position 0; the position they reach."""
    position = 0
    for header, events in archives:
        first, end = int(header["first"]), int(header["end"])
        if first != position or end > archived:
            checker.report.findings.append(
                Finding(first, "archive", f"the archive of events {first} to {end - 1} does not follow on {position}")
            )
            return position
        while position < end:
            stop = min(position + PAGE, end)
            leaves = {}
            for item in islice(events, stop - position):
                persons_ok = orjson.loads(item.leaf).get("personsDigest") == persons_digest(item.persons)
                leaves[item.position] = _Leaf(item.position, item.leaf, persons_ok)
            async with sessions() as session:
                stored = await _stored(session, position, stop)
            checker.page(position, stop, leaves, stored)
            checker.report.from_archives += len(leaves)
            position = stop
    return position


async def _stored(session: AsyncSession, start: int, stop: int) -> dict[int, bytes]:
    # Level 0: a leaf's key is its position.
    rows = await session.execute(
        select(AuditNode.node, AuditNode.hash).where(AuditNode.node >= start, AuditNode.node < stop)
    )
    return {node: bytes(digest) for node, digest in rows}


async def _table_page(session: AsyncSession, start: int, stop: int) -> dict[int, _Leaf]:
    rows = (
        await session.execute(
            select(AuditEvent.position, *COLUMNS)
            .where(AuditEvent.position >= start, AuditEvent.position < stop)
            .order_by(AuditEvent.position)
        )
    ).all()
    persons = await persons_between(session, start, stop)
    leaves = {}
    for row in rows:
        columns = parsed(dict(zip(LEAF_COLUMNS, row[1:], strict=True)))
        touched = persons.get(row[0], [])
        lines = digest_lines(columns["format"], touched)
        persons_ok = columns["persons"] == len(touched) and columns["persons_digest"] == persons_digest(lines)
        leaves[row[0]] = _Leaf(row[0], canonical(row[0], columns), persons_ok)
    return leaves
