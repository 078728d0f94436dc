"""`hub audit verify`: the whole log recomputed from its rows (and its archive files).

Each event's leaf is recomputed from its columns (and its persons' digest from its person rows)
and compared with the leaf hash stored when it was written; the tree is rebuilt from the
recomputed leaves and its root compared, at every signed tree head's size, with the signed root
(whose signature is checked). So a row changed, deleted, inserted or moved is found, and so is
a change made to a row and its stored hash together: the signed roots no longer match.

Archived events (`hub audit archive`) are read from their files, given in any order, and checked
the same way. Without them the archived prefix is taken from its stored subtree hashes, so the
events still in the tables are checked against the signed roots all the same.

Rows are read a block of 2**LEVEL positions at a time (the next block read while this one is
hashed), so memory stays flat over millions of events. A whole block is compared with the
stored hash of its subtree: when the root of its recomputed leaves is that hash (and its persons
match), every one of its leaves is the one stored, and the block enters the tree as one node.
Only a block that differs is compared leaf by leaf, to name the event and the kind of change.
What this does not re-read is the stored leaf and inner hashes below a block that matches: a
change to those alone (no row changed) breaks proofs, not the log, and is found by `verify`
only where it reaches a block's hash or a signed root.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hub.audit.archive import ArchivedEvent
from hub.audit.event import LEAF_COLUMNS, canonical, embedded, persons_digest
from hub.audit.heads import TreeHead, all_heads
from hub.audit.merkle import Frontier, leaf_hash, range_nodes, subtree_root
from hub.audit.models import AuditEvent, AuditLog, AuditNode
from hub.audit.store import TrailUnavailable, digest_lines, frontier_at, persons_between, read_nodes

# Events are read and checked a block at a time: 2**LEVEL, a complete subtree whose stored hash
# the recomputed leaves are compared with at once (leaf by leaf only when it differs).
LEVEL = 14
PAGE = 1 << LEVEL
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

    def block(self, start: int, stop: int, leaves: dict[int, _Leaf], hashes: dict[int, bytes], root: bytes) -> bool:
        """Take a complete, aligned block of events whole when the root of their recomputed leaves
        is the stored hash of that subtree (`root`) and their persons match; False (nothing
        taken) otherwise, and the block is checked leaf by leaf against the stored leaf hashes."""
        count = stop - start
        if stop > self.report.size or len(leaves) != count or self.frontier.size != start:
            return False
        if self.pending and self.pending[0].size < stop:
            return False  # a signed head inside the block needs the tree at its size
        if not all(item.persons_ok for item in leaves.values()):
            return False
        if subtree_root([hashes[p] for p in range(start, stop)]) != root:
            return False
        self.frontier.append_subtree(count.bit_length() - 1, root)
        self.report.events += count
        self._heads()
        return True

    def page(
        self,
        start: int,
        stop: int,
        leaves: dict[int, _Leaf],
        stored: dict[int, bytes],
        hashes: dict[int, bytes] | None = None,
    ) -> None:
        report, size = self.report, self.report.size
        if hashes is None:
            hashes = {p: leaf_hash(item.leaf) for p, item in leaves.items()}
        wrong = {p for p in range(start, min(stop, size)) if p in hashes and hashes[p] != stored.get(p)}
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
    spans = _blocks(position, end)
    # The next block's rows are read while this one is hashed (the database works meanwhile).
    reading = asyncio.create_task(_read_block(sessions, *spans[0])) if spans else None
    for number, (start, stop) in enumerate(spans):
        assert reading is not None
        rows, persons, root = await reading
        if number + 1 < len(spans):
            reading = asyncio.create_task(_read_block(sessions, *spans[number + 1]))
        leaves = _leaves(rows, persons)
        hashes = {p: leaf_hash(item.leaf) for p, item in leaves.items()}
        if root is None or not checker.block(start, stop, leaves, hashes, root):
            async with sessions() as session:
                stored = await _stored(session, start, stop)
            checker.page(start, stop, leaves, stored, hashes)
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


def _blocks(start: int, end: int) -> list[tuple[int, int]]:
    """[start, end) cut at multiples of PAGE: every whole block is a complete stored subtree."""
    spans = []
    while start < end:
        stop = min(end, (start // PAGE + 1) * PAGE)
        spans.append((start, stop))
        start = stop
    return spans


async def _read_block(
    sessions: async_sessionmaker[AsyncSession], start: int, stop: int
) -> tuple[Sequence[Any], dict[int, list[tuple[str, str]]], bytes | None]:
    """The event rows and persons of [start, stop), and the stored hash of the block's subtree
    (None unless it is a whole block): three statements, on the connection (Core rows, no ORM)."""
    async with sessions() as session:
        connection = await session.connection()
        rows = (
            await connection.execute(
                select(AuditEvent.position, *COLUMNS)
                .where(AuditEvent.position >= start, AuditEvent.position < stop)
                .order_by(AuditEvent.position)
            )
        ).all()
        persons = await persons_between(connection, start, stop)
        root = None
        if stop - start == PAGE:
            found = await read_nodes(connection, [(LEVEL, start >> LEVEL)])
            root = found.get((LEVEL, start >> LEVEL))
    return rows, persons, root


def _leaves(rows: Sequence[Any], persons: dict[int, list[tuple[str, str]]]) -> dict[int, _Leaf]:
    """Each row's leaf recomputed, and whether its person rows give its persons digest."""
    leaves = {}
    for row in rows:
        columns = embedded(dict(zip(LEAF_COLUMNS, row[1:], strict=True)))
        touched = persons.get(row[0], [])
        lines = digest_lines(columns["format"], touched)
        persons_ok = columns["persons"] == len(touched) and columns["persons_digest"] == persons_digest(lines)
        leaves[row[0]] = _Leaf(row[0], canonical(row[0], columns), persons_ok)
    return leaves
