"""A person's access history, for a citizen-facing app: which departments and apps received
the person's data, when, which fields, for what purpose; each entry with its inclusion proof
against a signed tree head, so the app (or anyone) can check it is in the log the hub signed
(docs/audit.md, "Inclusion proofs for citizens").

Only a caller with role `citizen_portal` stating purpose `citizen_service` may ask. The
resident ID number is looked up through its blind index (hub_audit_person, indexed by person and
time: one index range) and counts against the caller's lookup quota, as `auditEvents`' person
filter does. The newest entries come first, at most MAX_ENTRIES a call.

When the latest signed head does not yet cover the newest entry, a head is signed for the
log's current size first: a citizen sees every entry with its proof, not only those older than
the last interval.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hub.audit.backlog import backlog_positions
from hub.audit.event import stored_leaf
from hub.audit.heads import TreeHead, latest_head, sign_head
from hub.audit.merkle import inclusion_spans, proof_nodes, range_hash
from hub.audit.models import AuditEvent, AuditPerson
from hub.audit.query import AuditQuery, EventView, FieldRelease, micros, view
from hub.audit.store import read_nodes
from hub.auth.principal import Principal
from hub.crypto.signing import TreeSigner
from hub.errors import Forbidden

CITIZEN_PORTAL = "citizen_portal"
CITIZEN_SERVICE = "citizen_service"
MAX_ENTRIES = 200
# Subtree keys read per statement.
CHUNK = 5_000


@dataclass(frozen=True)
class Entry:
    event: EventView
    leaf: bytes
    path: list[bytes]
    # The entities whose released rows were this person's, and the fields released of them:
    # exactly what of the person's records left (events of format 1, which kept one set of
    # persons per request, give the request's entities and fields as a whole).
    entities: list[str]
    fields: list[FieldRelease]


@dataclass(frozen=True)
class History:
    head: TreeHead | None
    entries: list[Entry]
    # More entries than MAX_ENTRIES in the range: narrow it (`until` = the oldest entry's time).
    truncated: bool


class PersonHistory:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], query: AuditQuery, signer: Callable[[], TreeSigner]
    ) -> None:
        self.sessions = sessions
        self.query = query
        self.signer = signer

    async def history(
        self,
        actor: Principal,
        purpose: str | None,
        id_number: str,
        since: datetime | None,
        until: datetime | None,
    ) -> History:
        if CITIZEN_PORTAL not in actor.roles or purpose != CITIZEN_SERVICE:
            raise Forbidden(
                f"a person's access history is for citizen-facing apps (role {CITIZEN_PORTAL}) "
                f"stating purpose {CITIZEN_SERVICE}"
            )
        person = await self.query.person(actor, id_number)
        positions = select(AuditPerson.position, AuditPerson.entities).where(AuditPerson.person == person)
        if since is not None:
            positions = positions.where(AuditPerson.at_us >= micros(since))
        if until is not None:
            positions = positions.where(AuditPerson.at_us < micros(until))
        positions = positions.order_by(AuditPerson.at_us.desc()).limit(MAX_ENTRIES + 1)
        async with self.sessions() as session:
            # The index's not-yet-indexed tail first, then the index: a row moved between the two
            # reads is found twice (one position), never missed (hub/audit/backlog.py).
            found = await backlog_positions(
                session, person, None if since is None else micros(since), None if until is None else micros(until)
            )
            found.update((await session.execute(positions)).all())
            truncated = len(found) > MAX_ENTRIES
            wanted = sorted(found, reverse=True)[:MAX_ENTRIES]
            rows = list(await session.scalars(select(AuditEvent).where(AuditEvent.position.in_(wanted))))
        rows.sort(key=lambda r: r.position, reverse=True)
        if not rows:
            return History(None, [], False)
        head = await self._head(max(r.position for r in rows))
        async with self.sessions() as session:
            spans = {r.position: inclusion_spans(r.position, head.size) for r in rows}
            keys = sorted(proof_nodes(s for each in spans.values() for s in each))
            nodes = {}
            for start in range(0, len(keys), CHUNK):
                nodes.update(await read_nodes(session, keys[start : start + CHUNK]))
        entries = []
        for row in rows:
            shown = view(row)
            entities = found[row.position].split(",") if found[row.position] else sorted(shown.rows)
            fields = [f for f in shown.fields if not found[row.position] or f.entity in entities]
            path = [range_hash(s, nodes) for s in spans[row.position]]
            entries.append(Entry(shown, stored_leaf(row), path, entities, fields))
        return History(head, entries, truncated)

    async def _head(self, newest: int) -> TreeHead:
        """The latest signed head, signed anew when it does not cover position `newest`."""
        async with self.sessions() as session:
            head = await latest_head(session)
        if head is not None and head.size > newest:
            return head
        async with self.sessions() as session, session.begin():
            return await sign_head(session, self.signer())
