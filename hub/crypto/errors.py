"""The errors of key management. Messages name keys by purpose, scope, version and master key id,
never by their bytes, so they can be shown to an operator as they are.

Field decryption does not raise: it returns `hub.crypto.fields.Failure` values in place of the
values that failed, so one bad cell never costs a whole response.
"""

from __future__ import annotations


class CryptoError(Exception):
    """The root of the hub.crypto errors."""


class MasterKeyError(CryptoError):
    """No usable master key: none configured, malformed, or a key file others can read."""


class KeyringError(CryptoError):
    """The wrapped keys cannot be loaded, created, rewrapped, backed up or restored as asked."""
