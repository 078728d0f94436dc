"""Cryptography of the hub: the only package that imports `cryptography`."""
