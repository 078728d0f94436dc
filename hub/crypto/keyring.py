"""The keyring: the hub's data, blind-index and mask keys, kept wrapped in the hub database and
held unwrapped in memory once loaded.

Services take a session and never commit: the caller (a command, the app's start-up) owns the
transaction. `load_keyring` unwraps every key once; the `Keyring` it returns hands out ciphers
and indexes that are built once and reused for every value.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from hub.crypto.blind_index import BlindIndex
from hub.crypto.errors import KeyringError
from hub.crypto.fields import DataKeys, FieldCipher
from hub.crypto.index_transfer import fingerprint
from hub.crypto.master import MasterKey
from hub.crypto.models import DATA, INDEX, MASK, MASK_SCOPE, SIGNING, SIGNING_SCOPE, WrappedKey
from hub.crypto.signing import TreeSigner

KEY_BYTES = 32
_MASK_CONTEXT = b"hub-mask/1\x00"
_LOOKUP_CONTEXT = b"hub-lookup-quota/1\x00"


class Keyring:
    """Every key of the hub, unwrapped. Never printed, never serialised."""

    def __init__(
        self,
        data: Mapping[str, DataKeys],
        index: Mapping[str, bytes],
        mask_root: bytes | None,
        signing: bytes | None = None,
    ) -> None:
        self._data = dict(data)
        self._signer = None if signing is None else TreeSigner(signing)
        self._index = dict(index)
        self._mask_root = mask_root
        self._ciphers: dict[tuple[str, str, str], FieldCipher] = {}
        self._indexes: dict[str, BlindIndex] = {}
        self._masks: dict[tuple[str, str], bytes] = {}
        self._lookup: bytes | None = None

    def __repr__(self) -> str:
        return f"Keyring(departments={sorted(self._data)}, domains={sorted(self._index)})"

    @property
    def departments(self) -> list[str]:
        return sorted(self._data)

    @property
    def domains(self) -> list[str]:
        return sorted(self._index)

    def current_version(self, department: str) -> int:
        return self._department(department).current

    def cipher(self, department: str, entity: str, field: str) -> FieldCipher:
        """The cipher of one field; `entity` is the manifest's entity name, `field` its field name."""
        name = (department, entity, field)
        cipher = self._ciphers.get(name)
        if cipher is None:
            cipher = self._ciphers[name] = FieldCipher(self._department(department), department, entity, field)
        return cipher

    def blind_index(self, domain: str) -> BlindIndex:
        index = self._indexes.get(domain)
        if index is None:
            key = self._index.get(domain)
            if key is None:
                raise KeyringError(f"no blind-index key for the domain {domain}")
            index = self._indexes[domain] = BlindIndex(domain, key)
        return index

    def mask_key(self, domain: str, receiver: str) -> bytes:
        """The hash-mask key of values of `domain` released to the department `receiver`: two
        receivers' masked values of one person differ, so they cannot link persons through them."""
        name = (domain, receiver)
        key = self._masks.get(name)
        if key is None:
            if self._mask_root is None:
                raise KeyringError("no mask key in the keyring")
            parts = [part.encode() for part in name]
            info = _MASK_CONTEXT + b"".join(struct.pack(">H", len(p)) + p for p in parts)
            key = HKDFExpand(hashes.SHA256(), KEY_BYTES, info).derive(self._mask_root)
            self._masks[name] = key
        return key

    def lookup_key(self) -> bytes:
        """The key under which the lookup quota stores the values callers supplied (hub/quota):
        derived from the mask key, so every instance holds it, and unlike a blind-index key
        its hashes cannot be matched against department data."""
        if self._lookup is None:
            if self._mask_root is None:
                raise KeyringError("no mask key in the keyring")
            self._lookup = HKDFExpand(hashes.SHA256(), KEY_BYTES, _LOOKUP_CONTEXT).derive(self._mask_root)
        return self._lookup

    def index_key(self, domain: str) -> bytes:
        """The raw blind-index key of `domain`, for `hub keys export-index` only (it leaves the
        hub sealed for another hub's master key)."""
        key = self._index.get(domain)
        if key is None:
            raise KeyringError(f"no blind-index key for the domain {domain}")
        return key

    def index_fingerprint(self, domain: str) -> str | None:
        """The fingerprint of `domain`'s blind-index key, None if the hub has none."""
        key = self._index.get(domain)
        return None if key is None else fingerprint(key)

    def tree_signer(self) -> TreeSigner:
        """The signer of the access trail's tree heads."""
        if self._signer is None:
            raise KeyringError("no signing key in the keyring")
        return self._signer

    def _department(self, department: str) -> DataKeys:
        keys = self._data.get(department)
        if keys is None:
            raise KeyringError(f"no data key for the department {department}")
        return keys


async def current_data_version(session: AsyncSession, department: str) -> int | None:
    """The data-key version new values of `department` are encrypted under, if it has one."""
    found: int | None = await session.scalar(
        select(func.max(WrappedKey.version)).where(WrappedKey.purpose == DATA, WrappedKey.scope == department)
    )
    return found


async def ensure_data_key(session: AsyncSession, master: MasterKey, department: str) -> int:
    """The current data-key version of `department`, making version 1 if it has none."""
    current = await current_data_version(session, department)
    if current is not None:
        return current
    await _add(session, master, DATA, department, 1)
    return 1


async def rotate_data_key(session: AsyncSession, master: MasterKey, department: str) -> int:
    """Add a data-key version to `department` and return it. New values use it once the keyring is
    reloaded; values under older versions still decrypt (they name their version)."""
    version = (await current_data_version(session, department) or 0) + 1
    await _add(session, master, DATA, department, version)
    return version


async def ensure_index_key(session: AsyncSession, master: MasterKey, domain: str) -> bool:
    """Make the blind-index key of `domain` if it has none; True if it was made."""
    return await _ensure(session, master, INDEX, domain)


async def import_index_key(
    session: AsyncSession, master: MasterKey, domain: str, key: bytes, *, replace: bool = False
) -> str:
    """Stores `key` as the blind-index key of `domain`: "made" where the hub had none, "same"
    where it had this one. A different key is replaced only with `replace`: every stored index
    of the domain in this hub's departments was computed with the old key and must be computed
    again (docs/federation.md); "replaced"."""
    rows = (
        await session.scalars(select(WrappedKey).where(WrappedKey.purpose == INDEX, WrappedKey.scope == domain))
    ).all()
    if rows:
        current = master.unwrap(rows[-1].wrapped, INDEX, domain, rows[-1].version)
        if current == key:
            return "same"
        if not replace:
            raise KeyringError(
                f"this hub already holds another blind-index key for {domain} (fingerprint "
                f"{fingerprint(current)}); its department data is indexed with it. Replace it with --replace, "
                "then recompute the domain's stored indexes"
            )
        for row in rows:
            await session.delete(row)
        await session.flush()
    await _add(session, master, INDEX, domain, 1, key)
    return "replaced" if rows else "made"


async def ensure_mask_key(session: AsyncSession, master: MasterKey) -> bool:
    return await _ensure(session, master, MASK, MASK_SCOPE)


async def provision(
    session: AsyncSession, master: MasterKey, departments: Iterable[str], domains: Iterable[str]
) -> list[str]:
    """Make whatever keys are missing for these departments and index domains, and the mask key.
    Returns the names of the keys made (for the operator), empty when all were there."""
    made: list[str] = []
    for department in sorted(set(departments)):
        if await current_data_version(session, department) is None:
            await ensure_data_key(session, master, department)
            made.append(f"data key {department} v1")
    for domain in sorted(set(domains)):
        if await ensure_index_key(session, master, domain):
            made.append(f"blind-index key {domain}")
    if await ensure_mask_key(session, master):
        made.append("mask key")
    if await _ensure(session, master, SIGNING, SIGNING_SCOPE):
        made.append("audit signing key")
    return made


async def load_keyring(session: AsyncSession, masters: MasterKey | Sequence[MasterKey]) -> Keyring:
    """Unwrap every key in the hub database. Each row names the master key that wraps it; during
    an unfinished rewrap, give both the old and the new master key."""
    by_id = {m.id: m for m in ([masters] if isinstance(masters, MasterKey) else masters)}
    rows = (await session.scalars(select(WrappedKey).order_by(WrappedKey.id))).all()
    data: dict[str, dict[int, AESGCM]] = {}
    index: dict[str, bytes] = {}
    mask_root: bytes | None = None
    signing: bytes | None = None
    for row in rows:
        key = unwrap_row(row, by_id)
        if row.purpose == DATA:
            data.setdefault(row.scope, {})[row.version] = AESGCM(key)
        elif row.purpose == INDEX:
            index[row.scope] = key
        elif row.purpose == MASK:
            mask_root = key
        elif row.purpose == SIGNING:
            signing = key
    return Keyring(
        {department: DataKeys(max(aeads), aeads) for department, aeads in data.items()},
        index,
        mask_root,
        signing,
    )


def unwrap_row(row: WrappedKey, masters: Mapping[str, MasterKey]) -> bytes:
    master = masters.get(row.master_key_id)
    if master is None:
        raise KeyringError(
            f"the {row.purpose} key {row.scope} v{row.version} is wrapped by master key {row.master_key_id}, "
            f"which was not given (given: {', '.join(sorted(masters)) or 'none'})"
        )
    key = master.unwrap(row.wrapped, row.purpose, row.scope, row.version)
    if len(key) != KEY_BYTES:
        raise KeyringError(f"the {row.purpose} key {row.scope} v{row.version} is not 32 bytes")
    return key


async def _ensure(session: AsyncSession, master: MasterKey, purpose: str, scope: str) -> bool:
    existing = await session.scalar(
        select(WrappedKey.id).where(WrappedKey.purpose == purpose, WrappedKey.scope == scope).limit(1)
    )
    if existing is not None:
        return False
    await _add(session, master, purpose, scope, 1)
    return True


async def _add(
    session: AsyncSession, master: MasterKey, purpose: str, scope: str, version: int, key: bytes | None = None
) -> None:
    # New keys go under the master key every other key is under; a mix would leave a key that
    # the configured master cannot open, or one that a finished rewrap missed.
    others = await session.scalar(
        select(WrappedKey.master_key_id).where(WrappedKey.master_key_id != master.id).limit(1)
    )
    if others is not None:
        raise KeyringError(
            f"keys in the hub database are wrapped by master key {others}, not by the given {master.id}: "
            "finish the rewrap, or configure the master key those keys are under"
        )
    if key is None:
        key = os.urandom(KEY_BYTES)
    session.add(
        WrappedKey(
            purpose=purpose,
            scope=scope,
            version=version,
            wrapped=master.wrap(key, purpose, scope, version),
            master_key_id=master.id,
            created_at=datetime.now(UTC),
        )
    )
    await session.flush()
