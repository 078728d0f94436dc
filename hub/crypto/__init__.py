"""Cryptography of the hub: the only package that imports `cryptography`.

`master` (the master key and wrapping), `models` (the table of wrapped keys), `keyring` (loading,
provisioning, rotation), `live` (the keyring a running hub holds, reloaded after a rotation),
`rotation`, `rewrap`, `backup` and `backup_file` (custody), `inventory` (which key is under which
master key), `fields` (encrypted values bound to their cell), `blind_index` (equality on encrypted
columns), `sealing` (page cursors). The stored formats are documented in docs/stored-format.md.
"""
