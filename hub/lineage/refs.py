"""Global references to records: `department:Entity:key`, or sealed where the key is not plain.

A reference is released at the level of the record's key. A caller who reads the key plain
gets the plain form; any other caller gets an opaque token sealed like a page cursor (AES-GCM,
hub/crypto/sealing.py) that names the entity, the caller it was issued to and the key as the
department stores it (for an encrypted key, its blind index: the token holds no ID number,
not even inside the seal). Such a token works as a trace's `from` for that caller only.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from hub.access.plan import AccessPlan, Decision
from hub.catalog import Catalog, EntityInfo
from hub.crypto.sealing import Sealer, SealError
from hub.errors import BadUserInput, Forbidden

VERSION = 1
# Bounds on what a caller may send as a reference: checked before anything is looked up.
MAX_REF_LENGTH = 512
PLAIN_REF = re.compile(r"^([a-z][a-z0-9_]{0,62}):([A-Za-z][A-Za-z0-9]{0,62}):(.{1,256})$", re.DOTALL)


@dataclass(frozen=True)
class RecordRef:
    """A record named by a caller: its entity and its key as stored (`raw`: the key column's
    value, the blind index of an encrypted key), or the plain key still to be indexed."""

    entity: EntityInfo
    raw: Any = None
    plain: str | int | None = None


def plain_ref(entity: EntityInfo, key: Any) -> str:
    return f"{entity.department}:{entity.name}:{key}"


def stored_key(raw: Any) -> str:
    """A stored key as text, for the hub database (recorded links): a blind index in hex, so
    no ID number is written there."""
    if isinstance(raw, bytes | bytearray | memoryview):
        return "x:" + bytes(raw).hex()
    if isinstance(raw, int):
        return f"i:{raw}"
    return f"s:{raw}"


def from_stored(text: str) -> Any:
    kind, _, value = text.partition(":")
    if kind == "x":
        return bytes.fromhex(value)
    if kind == "i":
        return int(value)
    return value


class References:
    """Makes and reads references for one hub (the key is the cursors' key: tokens of one kind
    are refused as the other by the seal's associated data)."""

    def __init__(self, key: bytes | None = None) -> None:
        self._sealer = Sealer(key or secrets.token_bytes(32), b"hub lineage ref v1")

    def of_row(self, plan: AccessPlan, entity: EntityInfo, row: Mapping[Any, Any], raw: Any) -> str | None:
        """The reference of a released row whose stored key is `raw`, at the caller's level."""
        if raw is None:
            return None
        key = entity.fields[entity.key]
        if plan.field(entity.id, entity.key).decision is Decision.PLAIN:
            if not key.encrypted:
                return plain_ref(entity, raw)
            # The plain key of an encrypted field is only at hand when it was selected and
            # decrypted: the hub never decrypts what the caller did not ask for.
            value = row.get(entity.key)
            if isinstance(value, str | int):
                return plain_ref(entity, value)
        return self.seal(plan, entity, raw)

    def seal(self, plan: AccessPlan, entity: EntityInfo, raw: Any) -> str:
        stored = ["x", bytes(raw).hex()] if isinstance(raw, bytes | bytearray | memoryview) else ["v", raw]
        payload = [VERSION, plan.principal.subject, entity.id, stored]
        return self._sealer.seal(orjson.dumps(payload))

    def parse(self, catalog: Catalog, plan: AccessPlan, text: str) -> RecordRef:
        """The record `text` names, for this caller; refused with BAD_USER_INPUT when it is no
        reference and FORBIDDEN when it was sealed for another caller."""
        if not isinstance(text, str) or not 0 < len(text) <= MAX_REF_LENGTH:
            raise BadUserInput(
                f"a reference is `department:Entity:key` or a sealed reference, at most {MAX_REF_LENGTH} characters"
            )
        if ":" in text:
            return self._parse_plain(catalog, plan, text)
        try:
            version, subject, entity_id, stored = orjson.loads(self._sealer.open(text))
            if version != VERSION or not isinstance(stored, list) or len(stored) != 2:
                raise ValueError
            raw = bytes.fromhex(stored[1]) if stored[0] == "x" else stored[1]
        except (SealError, ValueError, TypeError, orjson.JSONDecodeError):
            raise BadUserInput("the reference is neither `department:Entity:key` nor one this hub issued") from None
        if subject != plan.principal.subject:
            raise Forbidden("this sealed reference was issued to another caller")
        entity = catalog.entities.get(entity_id) if isinstance(entity_id, str) else None
        if entity is None:
            raise BadUserInput("the reference names no entity of this hub")
        return RecordRef(entity, raw=raw)

    @staticmethod
    def _parse_plain(catalog: Catalog, plan: AccessPlan, text: str) -> RecordRef:
        match = PLAIN_REF.match(text)
        entity = catalog.entities.get(f"{match.group(1)}.{match.group(2)}") if match else None
        if match is None or entity is None:
            raise BadUserInput("the reference names no entity of this hub (`department:Entity:key`)")
        key = entity.fields[entity.key]
        # A plain reference supplies the key: the caller must read it plain, as a lookup by a
        # masked key would let a caller confirm guessed ID numbers.
        if plan.field(entity.id, entity.key).decision is not Decision.PLAIN:
            raise Forbidden(
                f"{entity.type_name}.{entity.key} is not released plain to you; use the sealed `ref` you were given",
                {"field": f"{entity.type_name}.{entity.key}"},
            )
        value: str | int = match.group(3)
        if key.type.value == "Int":
            try:
                value = int(value)
            except ValueError:
                raise BadUserInput(f"the key of {entity.type_name} is a number") from None
        return RecordRef(entity, raw=None if key.encrypted else value, plain=value)
