"""Sealing small tokens (page cursors) so callers can neither read nor forge them.

AES-256-GCM with a fresh 96-bit nonce per token; the associated data names what the token is
for, so a token of one kind is refused as another. Tokens are URL-safe base64 without padding.
"""

from __future__ import annotations

import base64
import binascii
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NONCE = 12


class SealError(Exception):
    """The token was not sealed by this key for this purpose (or was altered)."""


class Sealer:
    def __init__(self, key: bytes, purpose: bytes) -> None:
        if len(key) != 32:
            raise ValueError("a sealing key is 32 bytes")
        self._aead = AESGCM(key)
        self._purpose = purpose

    def seal(self, payload: bytes) -> str:
        nonce = os.urandom(NONCE)
        sealed = nonce + self._aead.encrypt(nonce, payload, self._purpose)
        return base64.urlsafe_b64encode(sealed).decode().rstrip("=")

    def open(self, token: str) -> bytes:
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (binascii.Error, ValueError):
            raise SealError("not a sealed token") from None
        if len(raw) < NONCE + 16:
            raise SealError("not a sealed token")
        try:
            return self._aead.decrypt(raw[:NONCE], raw[NONCE:], self._purpose)
        except InvalidTag:
            raise SealError("the token was altered or sealed by another key") from None
