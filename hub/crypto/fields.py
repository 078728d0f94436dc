"""Field encryption: AES-256-GCM values bound to their cell, in the stored format of version 1.

A stored value (docs/stored-format.md is the reference; keep the two in step):

    byte 0       format version (1)
    bytes 1-4    data-key version, unsigned 32-bit big-endian
    bytes 5-16   nonce, 96 random bits, fresh for every value
    bytes 17-    ciphertext of the UTF-8 plaintext, then the 16-byte GCM tag

stored as these bytes in a binary column, or in a text column as `hub1:` followed by the same
bytes in URL-safe base64 without padding.

The associated data binds the value to its cell:

    "hub-field/1" 0x00 || len16 department || len16 entity || len16 field || bytes 0-4 || row key

(len16 x: the UTF-8 length as an unsigned 16-bit big-endian number, then the UTF-8 bytes.) A
value copied to another row, field, entity or department, or altered in any byte, fails to
decrypt. Decryption never raises for a bad value: it puts a `Failure` in its place, which the
caller reports as DATA_INTEGRITY.
"""

from __future__ import annotations

import base64
import binascii
import enum
import os
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

FORMAT = 1
TEXT_PREFIX = "hub1:"
_HEADER = struct.Struct(">BI")
HEADER_BYTES = _HEADER.size  # 5
NONCE_BYTES = 12
TAG_BYTES = 16
OVERHEAD = HEADER_BYTES + NONCE_BYTES + TAG_BYTES  # 33 bytes on top of the UTF-8 plaintext
_BODY = HEADER_BYTES + NONCE_BYTES
_CONTEXT = b"hub-field/1\x00"
_PREFIX_LENGTH = len(TEXT_PREFIX)

Stored = bytes | bytearray | memoryview | str


class Failure(enum.Enum):
    """Why a stored value was not decrypted. Every kind is reported as DATA_INTEGRITY: none of
    them may become wrong data or an error that escapes the request."""

    MALFORMED = "not a stored value of a known format"
    UNKNOWN_KEY = "encrypted under a key version this keyring does not hold"
    INTEGRITY = "altered, or moved from another row, field, entity or department"


@dataclass(frozen=True)
class DataKeys:
    """One department's data keys: every version that may still be in use, and the current one
    (used for new values). Kept by the keyring; each AESGCM object is built once."""

    current: int
    aeads: Mapping[int, AESGCM]

    def __repr__(self) -> str:
        return f"DataKeys(current={self.current}, versions={sorted(self.aeads)})"


def context(department: str, entity: str, field: str) -> bytes:
    """The constant part of the associated data of one (department, entity, field)."""
    parts = [part.encode() for part in (department, entity, field)]
    if not all(parts):
        raise ValueError("department, entity and field must all be named")
    return _CONTEXT + b"".join(struct.pack(">H", len(p)) + p for p in parts)


def key_version(value: object) -> int | None:
    """The data-key version a stored value names, or None if it is not a stored value. Lets a
    re-encryption find the values still under an old version without decrypting them."""
    raw = _raw(value)
    if raw is None:
        return None
    return int(_HEADER.unpack_from(raw)[1])


class FieldCipher:
    """Encrypts and decrypts the values of one (department, entity, field).

    The identifiers go into every value's associated data and must never change: renaming any of
    them makes every stored value of the field fail to decrypt until it is re-encrypted.
    """

    __slots__ = ("_by_header", "_context", "_keys", "department", "entity", "field")

    def __init__(self, keys: DataKeys, department: str, entity: str, field: str) -> None:
        if keys.current not in keys.aeads:
            raise ValueError("the current data-key version has no key")
        self._keys = keys
        self._context = context(department, entity, field)
        # By the 5 header bytes of a value: its key and the associated data up to the row key.
        # One lookup checks the format and finds the key version.
        self._by_header = {
            header: (aead, self._context + header)
            for version, aead in keys.aeads.items()
            for header in [_HEADER.pack(FORMAT, version)]
        }
        self.department, self.entity, self.field = department, entity, field

    def __repr__(self) -> str:
        return f"FieldCipher({self.department}.{self.entity}.{self.field}, current=v{self._keys.current})"

    def encrypt(self, plain: str, row_key: str) -> bytes:
        """The stored bytes of `plain` in the row keyed `row_key`, under the current key version."""
        if not row_key:
            raise ValueError("a value needs the key of its row")
        header = _HEADER.pack(FORMAT, self._keys.current)
        aead, prefix = self._by_header[header]
        nonce = os.urandom(NONCE_BYTES)
        return header + nonce + aead.encrypt(nonce, plain.encode(), prefix + row_key.encode())

    def encrypt_text(self, plain: str, row_key: str) -> str:
        """The same, for a text column: `hub1:` and URL-safe base64 without padding."""
        return TEXT_PREFIX + base64.urlsafe_b64encode(self.encrypt(plain, row_key)).rstrip(b"=").decode("ascii")

    def decrypt(self, value: Stored | None, row_key: str) -> str | Failure | None:
        return self.decrypt_column([value], [row_key])[0]

    def decrypt_column(self, values: Sequence[object], row_keys: Sequence[str]) -> list[str | Failure | None]:
        """Decrypt a fetched column at once: None stays None, a value that fails becomes a
        `Failure`. Stored values may mix the binary and text forms and key versions; anything
        that is neither (a number, a connector's UNREADABLE) is MALFORMED."""
        if len(values) != len(row_keys):
            raise ValueError("one row key per value")
        by_header = self._by_header
        out: list[str | Failure | None] = []
        append = out.append
        # The hot loop of every release: ~1 microsecond of AES-GCM per value, so each step
        # around it counts (no per-value function calls on the binary path).
        for value, row_key in zip(values, row_keys, strict=True):
            if value is None:
                append(None)
                continue
            raw: bytes | None
            if type(value) is bytes:
                raw = value
            elif isinstance(value, str):
                raw = _from_text(value)
            elif isinstance(value, bytearray | memoryview):
                raw = bytes(value)
            else:
                # Not a stored value of either form (bytes(10**9) would allocate a gigabyte).
                raw = None
            if raw is None or len(raw) < OVERHEAD:
                append(Failure.MALFORMED)
                continue
            found = by_header.get(raw[:HEADER_BYTES])
            if found is None:
                append(Failure.MALFORMED if raw[0] != FORMAT else Failure.UNKNOWN_KEY)
                continue
            aead, prefix = found
            try:
                append(aead.decrypt(raw[HEADER_BYTES:_BODY], raw[_BODY:], prefix + row_key.encode()).decode())
            except InvalidTag:
                append(Failure.INTEGRITY)
            except UnicodeDecodeError:
                # Authentic but not UTF-8: written by something other than this module.
                append(Failure.MALFORMED)
        return out


def _raw(value: object) -> bytes | None:
    """The stored bytes of a value in either form, or None if it is in neither."""
    if isinstance(value, str):
        raw = _from_text(value)
        if raw is None:
            return None
    elif isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
    else:
        return None
    if len(raw) < OVERHEAD or raw[0] != FORMAT:
        return None
    return raw


# URL-safe base64 into the standard alphabet for binascii; `+`, `/` and `=` (never written
# in the text form) become a character the strict decoder refuses.
_TO_STANDARD = bytes.maketrans(b"-_+/=", b"+/!!!")
_SIXTETS = bytes(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".find(chr(c)) % 256 for c in range(256)
)
_PADDING = (b"", b"", b"==", b"=")
# By length modulo 4: the low bits of the last character that carry no data and must be zero.
_SPARE_BITS = (0, 0, 0x0F, 0x03)


def _from_text(value: str) -> bytes | None:
    if not value.startswith(TEXT_PREFIX):
        return None
    try:
        text = value[_PREFIX_LENGTH:].encode("ascii")
    except UnicodeEncodeError:
        return None
    rest = len(text) % 4
    # Only the canonical spelling counts: a decoder would ignore set spare bits in the last
    # character, so an altered text could decode to the same value.
    if rest == 1 or (rest and _SIXTETS[text[-1]] & _SPARE_BITS[rest]):
        return None
    try:
        return binascii.a2b_base64(text.translate(_TO_STANDARD) + _PADDING[rest], strict_mode=True)
    except binascii.Error:
        return None
