"""`hub audit archive`: move the oldest events to a JSON-lines file and out of the tables.

The file's first line is a header: `{"format": "hub-audit-archive/1", "first": F, "end": E,
"heads": [tree heads whose size passes F]}`; then one line per event, in position order:
`{"position": P, "leaf": "<the event's leaf, as text>", "persons": [lines of its persons digest]}`
(format 1: hex blind indexes; format 2: each index, a space and its entities). The
leaf is kept as the exact bytes the tree hashed, so `hub audit verify --archive FILE` checks the
archived events against the stored leaf hashes and the signed roots as it does the table's.
The subtree hashes stay in the hub database: proofs and the tree's roots need them.

The archived part is always a prefix of the log: from the end of the last archive up to the
first event at or after `--before` (positions follow the order of writing, and times nearly so).
The file is written and flushed before a row is deleted; the rows go in one transaction that
also moves the log's `archived` mark, so an interrupted run leaves either the rows or nothing
to redo (run it again with a new output file).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson
from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hub.audit.event import stored_leaf
from hub.audit.heads import all_heads
from hub.audit.models import AuditEvent, AuditLog, AuditPerson, AuditPersonBacklog
from hub.audit.store import digest_lines, persons_between

FORMAT = "hub-audit-archive/1"
PAGE = 5_000


class ArchiveError(Exception):
    """The archive cannot be written or read; the message says why."""


@dataclass(frozen=True)
class Archived:
    first: int
    end: int

    @property
    def count(self) -> int:
        return self.end - self.first


async def archive_range(session: AsyncSession, before_us: int) -> Archived:
    """The events `archive` would move: [archived mark, first position at or after `before_us`)."""
    mark = await session.scalar(select(AuditLog.archived).where(AuditLog.id == 1))
    size = await session.scalar(select(AuditLog.size).where(AuditLog.id == 1))
    first = int(mark or 0)
    later = await session.scalar(
        select(func.min(AuditEvent.position)).where(AuditEvent.position >= first, AuditEvent.at_us >= before_us)
    )
    return Archived(first, int(size or 0) if later is None else int(later))


async def archive(
    sessions: async_sessionmaker[AsyncSession],
    before_us: int,
    output: IO[bytes],
    progress: Callable[[int, int], None] | None = None,
) -> Archived:
    """Write the events before `before_us` to `output` (then flushed to disk), and delete them."""
    async with sessions() as session:
        planned = await archive_range(session, before_us)
        heads = [h.exported() for h in await all_heads(session) if h.size > planned.first]
    if planned.count == 0:
        return planned
    header = {"format": FORMAT, "first": planned.first, "end": planned.end, "heads": heads}
    output.write(orjson.dumps(header) + b"\n")
    for start in range(planned.first, planned.end, PAGE):
        stop = min(start + PAGE, planned.end)
        async with sessions() as session:
            rows = (
                await session.scalars(
                    select(AuditEvent)
                    .where(AuditEvent.position >= start, AuditEvent.position < stop)
                    .order_by(AuditEvent.position)
                )
            ).all()
            persons = await persons_between(session, start, stop)
        if [row.position for row in rows] != list(range(start, stop)):
            raise ArchiveError(f"events between {start} and {stop} are missing: run `hub audit verify` first")
        output.write(
            b"".join(
                orjson.dumps(
                    {
                        "position": row.position,
                        "leaf": stored_leaf(row).decode(),
                        "persons": sorted(digest_lines(row.format, persons.get(row.position, []))),
                    }
                )
                + b"\n"
                for row in rows
            )
        )
        if progress is not None:
            progress(stop - planned.first, planned.count)
    output.flush()
    os.fsync(output.fileno())
    async with sessions() as session, session.begin():
        moved = await session.execute(
            update(AuditLog).where(AuditLog.id == 1, AuditLog.archived == planned.first).values(archived=planned.end)
        )
        if moved.rowcount != 1:  # type: ignore[attr-defined]
            raise ArchiveError("another archive ran meanwhile; nothing was deleted (this file is a copy)")
        span = (AuditEvent.position >= planned.first, AuditEvent.position < planned.end)
        # The backlog first: a move of these rows into the index that is under way finishes
        # before this delete goes on, and the person rows it made are then deleted below.
        await session.execute(
            delete(AuditPersonBacklog).where(
                AuditPersonBacklog.position >= planned.first, AuditPersonBacklog.position < planned.end
            )
        )
        await session.execute(
            delete(AuditPerson).where(AuditPerson.position >= planned.first, AuditPerson.position < planned.end)
        )
        await session.execute(delete(AuditEvent).where(*span))
    return planned


@dataclass(frozen=True)
class ArchivedEvent:
    position: int
    leaf: bytes
    persons: list[str]


def read_archive(lines: Iterator[bytes]) -> tuple[dict[str, Any], Iterator[ArchivedEvent]]:
    """The header of an archive file and its events (read lazily)."""
    try:
        header = orjson.loads(next(lines))
    except (StopIteration, orjson.JSONDecodeError):
        raise ArchiveError("not an archive of the access trail (no header line)") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ArchiveError(f"not an archive of the access trail (format {FORMAT} expected)")

    def events() -> Iterator[ArchivedEvent]:
        for number, line in enumerate(lines, 2):
            try:
                item = orjson.loads(line)
                yield ArchivedEvent(int(item["position"]), str(item["leaf"]).encode(), list(item["persons"]))
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                raise ArchiveError(f"line {number} of the archive is not an event") from None

    return header, events()


def open_archives(paths: list[Path]) -> list[tuple[dict[str, Any], Iterator[ArchivedEvent]]]:
    """Archive files in the order of their positions."""
    opened = []
    for path in paths:
        handle = path.open("rb")
        opened.append(read_archive(iter(handle)))
    return sorted(opened, key=lambda item: int(item[0]["first"]))
