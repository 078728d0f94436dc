"""Sharing a blind-index domain's key between hubs, for an entity shared under a Federation
`@key` (docs/federation.md).

Two hubs join a person on the blind index of their resident ID number only if both compute it
with the same key. The receiving hub prints its transfer public key (`hub keys
index-recipient`: X25519, derived from its master key, so nothing new is stored); the holding hub
exports the domain's key sealed for it (`hub keys export-index DOMAIN --for PUBLICKEY`: an
ephemeral X25519 agreement, HKDF-SHA256, AES-256-GCM bound to the domain, the fingerprint and the
recipient); the receiving hub imports it (`hub keys import-index`). Only that hub's master key
opens the sealed key. Sharing it widens who can compute indexes of the domain: every hub that
holds it can tell whether a given ID number is in another's data.

A key's fingerprint (the first 32 hex digits of HMAC-SHA256 under the key of a fixed text) names
it in manifests without revealing it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from hub.crypto.blind_index import KEY_BYTES
from hub.crypto.master import MasterKey

PREFIX = "hub-index-v1:"
_FINGERPRINT_TEXT = b"hub blind-index key fingerprint v1"
_INFO = b"hub-index-transfer/1"
# A sealed key is a few hundred characters.
MAX_SEALED = 2048


class TransferError(Exception):
    """A sealed index key that cannot be made or opened; the message says why (never a key)."""


def fingerprint(key: bytes) -> str:
    return hmac.new(key, _FINGERPRINT_TEXT, hashlib.sha256).hexdigest()[:32]


def _private(master: MasterKey) -> X25519PrivateKey:
    return X25519PrivateKey.from_private_bytes(master.transfer_secret)


def _raw(public: X25519PublicKey) -> bytes:
    return public.public_bytes(Encoding.Raw, PublicFormat.Raw)


def recipient_key(master: MasterKey) -> str:
    """The hub's transfer public key, base64."""
    return base64.b64encode(_raw(_private(master).public_key())).decode("ascii")


def _aead(shared: bytes, ephemeral: bytes, recipient: bytes, domain: str) -> AESGCM:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=ephemeral + recipient, info=_INFO + domain.encode())
    return AESGCM(hkdf.derive(shared))


def seal_index_key(domain: str, key: bytes, recipient: str) -> str:
    """`key` (of `domain`) sealed for the hub whose transfer public key is `recipient`."""
    try:
        recipient_raw = base64.b64decode(recipient.strip(), validate=True)
        public = X25519PublicKey.from_public_bytes(recipient_raw)
    except (binascii.Error, ValueError):
        raise TransferError("the recipient is not a transfer public key (32 bytes, base64)") from None
    ephemeral = X25519PrivateKey.generate()
    ephemeral_raw = _raw(ephemeral.public_key())
    nonce = os.urandom(12)
    mark = fingerprint(key)
    aad = f"{domain}\x00{mark}".encode()
    sealed = _aead(ephemeral.exchange(public), ephemeral_raw, recipient_raw, domain).encrypt(nonce, key, aad)
    body = {
        "domain": domain,
        "fingerprint": mark,
        "ephemeral": base64.b64encode(ephemeral_raw).decode(),
        "nonce": base64.b64encode(nonce).decode(),
        "sealed": base64.b64encode(sealed).decode(),
    }
    return PREFIX + base64.urlsafe_b64encode(json.dumps(body, sort_keys=True).encode()).decode()


def open_index_key(master: MasterKey, text: str) -> tuple[str, bytes]:
    """(domain, key) of a sealed index key sent to the hub of `master`."""
    text = text.strip()
    if len(text) > MAX_SEALED or not text.startswith(PREFIX):
        raise TransferError(f"not a sealed index key (they start with {PREFIX})")
    try:
        body = json.loads(base64.urlsafe_b64decode(text[len(PREFIX) :].encode()))
        domain, mark = str(body["domain"]), str(body["fingerprint"])
        ephemeral_raw = base64.b64decode(body["ephemeral"], validate=True)
        nonce = base64.b64decode(body["nonce"], validate=True)
        sealed = base64.b64decode(body["sealed"], validate=True)
        ephemeral = X25519PublicKey.from_public_bytes(ephemeral_raw)
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise TransferError("the sealed index key is damaged") from None
    private = _private(master)
    recipient_raw = _raw(private.public_key())
    aad = f"{domain}\x00{mark}".encode()
    try:
        key = _aead(private.exchange(ephemeral), ephemeral_raw, recipient_raw, domain).decrypt(nonce, sealed, aad)
    except InvalidTag:
        raise TransferError(
            "the sealed index key does not open with this hub's master key (sealed for another hub, or altered)"
        ) from None
    if len(key) != KEY_BYTES or fingerprint(key) != mark:
        raise TransferError("the sealed index key does not match its fingerprint")
    return domain, key
