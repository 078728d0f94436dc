"""Gateway assertions: who a Federation gateway says the caller is, signed with Ed25519.

A gateway that composes hubs (docs/federation.md) authenticates the caller by its own means and
sends each hub, with every subgraph request, a fresh assertion in the `X-Hub-Gateway-Assertion`
header:

    v1.<base64url of the payload>.<base64url of the 64-byte signature over "v1." + payload part>

The payload is a JSON object with exactly `app` (the caller's app name), `iat` and `exp` (Unix
seconds). It is valid for at most MAX_LIFETIME seconds, never before `iat` (give or take
SKEW seconds of clock difference) and never at or after `exp`. It carries nothing else: the hub
takes the app's roles, department and attributes from its own database (hub/auth/gateway.py).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

VERSION = "v1"
MAX_LIFETIME = 60
# Clocks of the gateway and the hub may differ by this much.
SKEW = 5
# An assertion is a few hundred bytes; anything longer is refused unread.
MAX_LENGTH = 1024
APP_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


class AssertionRefused(Exception):
    """An assertion the hub does not accept; the message says why (never a key)."""


def _b64decode(text: str) -> bytes:
    padded = text + "=" * (-len(text) % 4)
    # Strict: characters outside the URL-safe alphabet are an error, not skipped.
    return base64.b64decode(padded.encode("ascii"), altchars=b"-_", validate=True)


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class AssertionVerifier:
    """Checks assertions against the configured gateways' public keys."""

    __slots__ = ("_keys",)

    def __init__(self, public_keys: tuple[bytes, ...]) -> None:
        self._keys = tuple(Ed25519PublicKey.from_public_bytes(raw) for raw in public_keys)

    @property
    def configured(self) -> bool:
        return bool(self._keys)

    def app(self, assertion: str, now: float | None = None) -> str:
        """The app name `assertion` carries, or AssertionRefused."""
        if not self._keys:
            raise AssertionRefused("this hub trusts no gateway (HUB_GATEWAY_PUBLIC_KEYS)")
        if len(assertion) > MAX_LENGTH or not assertion.isascii():
            raise AssertionRefused("the gateway assertion is not in the v1 format")
        parts = assertion.split(".")
        if len(parts) != 3 or parts[0] != VERSION:
            raise AssertionRefused("the gateway assertion is not in the v1 format")
        try:
            payload, signature = _b64decode(parts[1]), _b64decode(parts[2])
        except (binascii.Error, ValueError):
            raise AssertionRefused("the gateway assertion is not in the v1 format") from None
        signed = f"{parts[0]}.{parts[1]}".encode("ascii")
        if not any(_verifies(key, signature, signed) for key in self._keys):
            raise AssertionRefused("the gateway assertion's signature is not from a configured gateway")
        return _claims(payload, time.time() if now is None else now)


def _verifies(key: Ed25519PublicKey, signature: bytes, signed: bytes) -> bool:
    try:
        key.verify(signature, signed)
    except InvalidSignature:
        return False
    return True


def _claims(payload: bytes, now: float) -> str:
    try:
        claims = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        raise AssertionRefused("the gateway assertion's payload is not JSON") from None
    if not isinstance(claims, dict) or set(claims) != {"app", "iat", "exp"}:
        raise AssertionRefused("the gateway assertion carries exactly app, iat and exp")
    app, iat, exp = claims["app"], claims["iat"], claims["exp"]
    if not isinstance(app, str) or not APP_NAME.match(app):
        raise AssertionRefused("the gateway assertion's app is not an app name")
    if type(iat) is not int or type(exp) is not int:
        raise AssertionRefused("the gateway assertion's iat and exp are whole seconds")
    if not 0 < exp - iat <= MAX_LIFETIME:
        raise AssertionRefused(f"a gateway assertion is valid for at most {MAX_LIFETIME} s")
    if iat > now + SKEW:
        raise AssertionRefused("the gateway assertion is dated in the future")
    if exp <= now:
        raise AssertionRefused("the gateway assertion has expired")
    return app


def sign_assertion(private_key: bytes, app: str, now: float | None = None, lifetime: int = 30) -> str:
    """An assertion for `app`, as a gateway makes it (the tests' and the bench's gateway side;
    tests/federation/ holds the gateway's own)."""
    issued = int(time.time() if now is None else now)
    payload = json.dumps({"app": app, "iat": issued, "exp": issued + lifetime}, separators=(",", ":")).encode()
    head = f"{VERSION}.{_b64encode(payload)}"
    signature = Ed25519PrivateKey.from_private_bytes(private_key).sign(head.encode("ascii"))
    return f"{head}.{_b64encode(signature)}"
