"""Recording and retracting links, with every check before anything is written.

A link is refused unless: its kind is known and fits the lineage roles of its two records
(`fulfils` joins a service delivery to a citizen input ...); the caller's department owns the
`from` record; both records exist and the caller may read both (under its row rules: the
answer is the same for a record that does not exist and one hidden from the caller); the
reason is given and short; the idempotency key is well formed. A retried key applies once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from hub.access.matching import read_matching
from hub.access.read import JOIN, Reader, RequestAccess
from hub.catalog import Catalog, EntityInfo
from hub.catalog.lineage import KINDS
from hub.crypto.cells import index_bytes
from hub.errors import BadUserInput, Forbidden
from hub.lineage.links import Link, LinkStore, NewRow
from hub.lineage.refs import RecordRef, stored_key
from hub.lineage.trace import Tracer

MAX_REASON = 500
IDEMPOTENCY_KEY = re.compile(r"^[A-Za-z0-9._:-]{1,100}$")


@dataclass(frozen=True)
class Recorded:
    link: Link
    applied: bool  # False: a retried idempotency key, the earlier recording returned
    source: tuple[EntityInfo, dict[Any, Any] | None]  # the records as the caller reads them
    target: tuple[EntityInfo, dict[Any, Any] | None]


class Lineage:
    """The lineage services a request uses: traces and recorded links."""

    def __init__(self, catalog: Catalog, reader: Reader, store: LinkStore) -> None:
        self.catalog = catalog
        self.reader = reader
        self.store = store
        self.tracer = Tracer(catalog, reader, store.touching)

    async def record(
        self, request: RequestAccess, source: str, target: str, kind: str, reason: str, idempotency_key: str
    ) -> Recorded:
        plan = request.plan
        principal = plan.principal
        reason = _reason(reason)
        _key(idempotency_key)
        if kind not in KINDS:
            raise BadUserInput(f"unknown link kind; one of {', '.join(sorted(KINDS))}")
        parse = self.reader.refs.parse
        from_ref, to_ref = parse(self.catalog, plan, source), parse(self.catalog, plan, target)
        if from_ref.entity.department != principal.department:
            raise Forbidden("a link is recorded by the department that owns its `from` record")
        spec = KINDS[kind]
        if not spec.fits(from_ref.entity.lineage_role, to_ref.entity.lineage_role):
            sources = ", ".join(sorted(r.value for r in spec.sources))
            targets = ", ".join(sorted(r.value for r in spec.targets))
            raise BadUserInput(f"{kind} links a record of role {sources} to one of role {targets}")
        from_row = await self.read(request, from_ref, "from")
        to_row = await self.read(request, to_ref, "to")
        new = NewRow(
            kind,
            (from_ref.entity.id, stored_key(from_row[(JOIN, from_ref.entity.key)])),
            (to_ref.entity.id, stored_key(to_row[(JOIN, to_ref.entity.key)])),
            reason,
            principal.subject,
            principal.department,
            idempotency_key,
        )
        link, applied = await self.store.append(new)
        request.record.links.append(["record", link.id, link.row_hash])
        return Recorded(link, applied, (from_ref.entity, from_row), (to_ref.entity, to_row))

    async def retract(self, request: RequestAccess, link_id: int, reason: str, idempotency_key: str) -> Recorded:
        principal = request.plan.principal
        reason = _reason(reason)
        _key(idempotency_key)
        found = await self.store.get(link_id)
        if found is None or found[0].department != principal.department:
            # The same answer for a link of another department: ids tell nothing.
            raise BadUserInput("no link of your department has that id")
        link, retracted = found
        if retracted:
            raise BadUserInput("that link is already retracted")
        new = NewRow(
            link.kind,
            link.source,
            link.target,
            reason,
            principal.subject,
            principal.department,
            idempotency_key,
            retracts=link.id,
        )
        written, applied = await self.store.append(new)
        request.record.links.append(["retract", written.id, written.row_hash])
        source, target = self.catalog.entities.get(link.source[0]), self.catalog.entities.get(link.target[0])
        if source is None or target is None:
            raise BadUserInput("the link names an entity this hub no longer serves")
        return Recorded(written, applied, (source, None), (target, None))

    async def read(self, request: RequestAccess, ref: RecordRef, which: str) -> dict[Any, Any]:
        """The record `ref` names, released to the caller (no field selected), or refused."""
        entity = ref.entity
        raw = ref.raw
        if raw is None:
            raw = index_bytes(self.reader._index_value(entity.fields[entity.key], str(ref.plain)))
        matched = await read_matching(self.reader, request, entity, {entity.key: [raw]}, [], [entity.key], 2)
        if not matched.released.rows:
            raise BadUserInput(f"no record you may see has the `{which}` reference")
        return matched.released.rows[0]


def _reason(reason: str) -> str:
    text = reason.strip()
    if not text:
        raise BadUserInput("give the reason for the link")
    if len(text) > MAX_REASON:
        raise BadUserInput(f"the reason may be at most {MAX_REASON} characters")
    return text


def _key(key: str) -> None:
    if not IDEMPOTENCY_KEY.fullmatch(key):
        raise BadUserInput("an idempotency key is 1 to 100 letters, digits, `.`, `_`, `:` or `-`")
