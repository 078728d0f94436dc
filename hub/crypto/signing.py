"""Ed25519 signatures of the access trail's tree heads (hub/audit/heads.py).

The private key is 32 random bytes kept wrapped in `hub_key` (purpose `signing`, scope `audit`)
like every other key; the public key is exported with `hub audit public-key` so anyone can check
a tree head without trusting the hub. A key's id is the first 16 hex digits of SHA-256 over its
raw public key.
"""

from __future__ import annotations

import hashlib

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_pem_public_key

from hub.crypto.errors import KeyringError

SIGNATURE_BYTES = 64
PEM_LABEL = "PUBLIC KEY"


def key_id(public_raw: bytes) -> str:
    return hashlib.sha256(public_raw).hexdigest()[:16]


class TreeSigner:
    """Signs tree heads. Never printed, never serialised (only its public half is)."""

    def __init__(self, private: bytes) -> None:
        if len(private) != 32:
            raise KeyringError("the signing key is not 32 bytes")
        self._key = Ed25519PrivateKey.from_private_bytes(private)
        self.public_raw = self._key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.key_id = key_id(self.public_raw)

    def __repr__(self) -> str:
        return f"TreeSigner(key_id={self.key_id})"

    def sign(self, message: bytes) -> bytes:
        return self._key.sign(message)

    def public_pem(self) -> str:
        return public_pem(self.public_raw)


def public_pem(public_raw: bytes) -> str:
    """The public key as PEM (SubjectPublicKeyInfo), as `openssl pkey -pubin` reads it."""
    key = Ed25519PublicKey.from_public_bytes(public_raw)
    return key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()


def public_raw_from_pem(text: str) -> bytes:
    """The raw 32-byte public key of a PEM file written by `public_pem`."""
    try:
        key = load_pem_public_key(text.encode())
    except ValueError:
        raise KeyringError("not a PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise KeyringError("not an Ed25519 public key")
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def verify_signature(public_raw: bytes, message: bytes, signature: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(public_raw).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True
