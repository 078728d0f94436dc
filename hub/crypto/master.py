"""The master key (key-encryption key): where it comes from, its id, and wrapping keys under it.

The master key never touches the hub database. It comes from `HUB_MASTER_KEY` (base64) or from
a key file named by `HUB_MASTER_KEY_FILE`, holding the key in base64 on one line. A key file that
other users can read or write is refused: whoever reads it reads every department's data.

Every wrapped key is stored with the id of the master key that wraps it, so a rewrap under a new
master key can stop anywhere and resume, and a missing master key is named, not guessed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import stat
import struct
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from hub.config import Settings
from hub.crypto.errors import KeyringError, MasterKeyError

KEY_BYTES = 32
NONCE = 12
# Byte 0 of a wrapped key: the layout below (nonce, then the key encrypted with its tag).
WRAP_FORMAT = 1
_ID_CONTEXT = b"hub-master-key-id/1\x00"
_WRAP_CONTEXT = b"hub-key-wrap/1\x00"
_TRANSFER_CONTEXT = b"hub-index-transfer/1\x00"


class MasterKey:
    """A 32-byte AES-256-GCM key that wraps the hub's data, index and mask keys."""

    __slots__ = ("_aead", "id", "transfer_secret")

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise MasterKeyError("a master key is 32 bytes")
        # Not the key's hash alone: a hash under a context of its own, useless for anything else.
        self.id = hashlib.sha256(_ID_CONTEXT + key).digest()[:8].hex()
        self._aead = AESGCM(key)
        # The private half of the hub's index-transfer key (hub/crypto/index_transfer.py),
        # derived under a context of its own: it opens blind-index keys sent to this hub.
        self.transfer_secret = hashlib.sha256(_TRANSFER_CONTEXT + key).digest()

    @classmethod
    def generate(cls) -> MasterKey:
        return cls(os.urandom(KEY_BYTES))

    def __repr__(self) -> str:
        return f"MasterKey(id={self.id!r})"

    def wrap(self, key: bytes, purpose: str, scope: str, version: int) -> bytes:
        """Encrypt `key`, bound to what it is for: unwrapping it as another key fails."""
        nonce = os.urandom(NONCE)
        return bytes([WRAP_FORMAT]) + nonce + self._aead.encrypt(nonce, key, _wrap_aad(purpose, scope, version))

    def unwrap(self, wrapped: bytes, purpose: str, scope: str, version: int) -> bytes:
        name = f"{purpose} key {scope} v{version}"
        if len(wrapped) < 1 + NONCE + 16 or wrapped[0] != WRAP_FORMAT:
            raise KeyringError(f"the wrapped {name} is not in a known format")
        try:
            return self._aead.decrypt(wrapped[1 : 1 + NONCE], wrapped[1 + NONCE :], _wrap_aad(purpose, scope, version))
        except InvalidTag:
            raise KeyringError(
                f"the wrapped {name} failed its integrity check under master key {self.id} "
                "(altered, moved, or wrapped by another key)"
            ) from None


def _wrap_aad(purpose: str, scope: str, version: int) -> bytes:
    parts = [part.encode() for part in (purpose, scope)]
    return _WRAP_CONTEXT + b"".join(struct.pack(">H", len(p)) + p for p in parts) + struct.pack(">I", version)


def master_key_from_settings(settings: Settings, *, allow_shared_file: bool = False) -> MasterKey:
    """The configured master key. `allow_shared_file` skips the permission check of a key file;
    only for callers that made the file themselves (tests), never for an operator's file."""
    if settings.master_key is not None:
        return MasterKey(settings.master_key)
    if settings.master_key_file is not None:
        return read_master_key_file(settings.master_key_file, allow_shared=allow_shared_file)
    raise MasterKeyError("no master key: set HUB_MASTER_KEY (base64 of 32 bytes) or HUB_MASTER_KEY_FILE")


def read_master_key_file(path: Path, *, allow_shared: bool = False) -> MasterKey:
    """Read a key file, refusing one that users other than its owner can read or write."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise MasterKeyError(f"the master key file {path} does not exist") from None
    if not stat.S_ISREG(mode):
        raise MasterKeyError(f"the master key file {path} is not a regular file")
    # POSIX permission bits mean nothing on Windows; there the folder's ACL must protect it.
    if os.name == "posix" and mode & 0o077 and not allow_shared:
        raise MasterKeyError(
            f"the master key file {path} is open to other users (mode {stat.S_IMODE(mode):04o}); "
            f"make it owner-only with `chmod 600 {path}`"
        )
    try:
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError):
        raise MasterKeyError(f"the master key file {path} cannot be read as base64 text") from None
    return MasterKey(_decode(text, str(path)))


def create_master_key_file(path: Path) -> MasterKey:
    """Make a new master key in a new owner-only file (mode 0600). Never overwrites a file: an
    overwritten master key makes every value it protects unreadable."""
    key = os.urandom(KEY_BYTES)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # O_EXCL: two starts racing to create the file cannot both write a key.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise MasterKeyError(f"the master key file {path} already exists; refusing to replace it") from None
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, 0o600)  # the umask can only narrow the mode; this makes it exact
        os.write(fd, base64.b64encode(key) + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    return MasterKey(key)


def _decode(text: str, source: str) -> bytes:
    # Standard (openssl rand -base64 32) or URL-safe base64, padding optional.
    value = text.strip().replace("-", "+").replace("_", "/")
    try:
        key = base64.b64decode(value + "=" * (-len(value) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise MasterKeyError(f"{source} does not hold a base64 master key") from None
    if len(key) != KEY_BYTES:
        raise MasterKeyError(f"{source} does not hold a 32-byte master key (found {len(key)} bytes)")
    return key
