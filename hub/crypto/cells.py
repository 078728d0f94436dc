"""The encrypted cells of an entity: the row key each value is bound to, and the stored forms of
values and blind indexes (binary or text, as the manifest declares).

Shared by the release step (decrypting a fetched column), the filters and joins (index values)
and the maintenance commands (writing). docs/stored-format.md fixes the formats themselves.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hub.catalog import EntityInfo
from hub.catalog.manifest import Storage
from hub.catalog.model import FieldInfo
from hub.crypto.blind_index import BlindIndex
from hub.crypto.fields import Failure, FieldCipher, Stored
from hub.crypto.keyring import Keyring
from hub.crypto.live import LiveKeyring
from hub.crypto.master import MasterKey

BINARY_TYPES = (bytes, bytearray, memoryview)

# The index domain persons are recorded under (the access record keeps their resident ID
# numbers only as blind indexes of this domain).
PERSON_DOMAIN = "resident_id"


def row_key_text(entity: EntityInfo, value: Any) -> str:
    """The row key a value of `entity` is bound to: the entity key as text, or, where the key is
    itself encrypted, the lower-case hex of its blind index (known before anything is decrypted)."""
    if isinstance(value, BINARY_TYPES):
        return bytes(value).hex()
    return str(value)


def row_keys(entity: EntityInfo, values: Sequence[Any]) -> list[str]:
    """`row_key_text` of each of a column of key values."""
    if entity.fields[entity.key].encrypted:
        return [bytes(v).hex() if isinstance(v, BINARY_TYPES) else str(v) for v in values]
    if set(map(type, values)) <= _TEXT:
        return list(values)  # text keys are their own row keys: no call per key
    return [str(v) for v in values]


_TEXT = frozenset({str})


def index_bytes(value: Any) -> bytes | None:
    """A stored blind index in either form as its 32 bytes; None for a null or malformed one."""
    if value is None:
        return None
    if isinstance(value, BINARY_TYPES):
        return bytes(value)
    if not isinstance(value, str):  # a connector's UNREADABLE among others
        return None
    try:
        return bytes.fromhex(value)
    except ValueError:
        return None


def index_form(item: FieldInfo, digest: bytes) -> bytes | str:
    """A digest as `item`'s index column stores it."""
    return digest if item.stored_as is Storage.BINARY else digest.hex()


class FieldCells:
    """Encrypting, indexing and decrypting the values of one encrypted field."""

    __slots__ = ("cipher", "index", "item")

    def __init__(self, keyring: Keyring, entity: EntityInfo, item: FieldInfo) -> None:
        if not item.encrypted:
            raise ValueError(f"{entity.id}.{item.name} is not encrypted")
        self.item = item
        self.cipher: FieldCipher = keyring.cipher(entity.department, entity.name, item.name)
        self.index: BlindIndex | None = keyring.blind_index(item.blind_index) if item.blind_index else None

    def encrypt(self, plain: str, row_key: str) -> bytes | str:
        """The stored value of `plain` in the column's form."""
        if self.item.stored_as is Storage.BINARY:
            return self.cipher.encrypt(plain, row_key)
        return self.cipher.encrypt_text(plain, row_key)

    def index_value(self, plain: str) -> bytes | str:
        """The stored blind index of `plain` in the index column's form."""
        if self.index is None:
            raise ValueError(f"{self.item.name} has no blind index")
        return index_form(self.item, self.index.digest(plain))

    def decrypt(self, values: Sequence[Stored | None], keys: Sequence[str]) -> list[str | Failure | None]:
        return self.cipher.decrypt_column(values, keys)


def key_scopes(entities: Sequence[EntityInfo]) -> tuple[list[str], list[str]]:
    """The departments that need a data key and the index domains that need an index key."""
    departments = sorted({e.department for e in entities})
    domains = {f.blind_index for e in entities for f in e.fields.values() if f.blind_index}
    if any(f.person for e in entities for f in e.fields.values()):
        domains.add(PERSON_DOMAIN)
    return departments, sorted(domains)


async def open_keyring(
    sessions: async_sessionmaker[AsyncSession], masters: MasterKey | Sequence[MasterKey], entities: Sequence[EntityInfo]
) -> tuple[Keyring, list[str]]:
    """Make the keys the catalog needs and lack (under the first master key given), then load
    the keyring, as a hub does on start. Returns it and the names of the keys made."""
    live = LiveKeyring(sessions, [masters] if isinstance(masters, MasterKey) else list(masters))
    made = await live.start(*key_scopes(entities))
    return live.keyring, made
