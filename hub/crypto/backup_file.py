"""Key backups on disk: written once, owner-only (mode 0600), never over an existing file.

A backup holds wrapped keys only, yet it is half of what opens every department's data, so it is
as private as the master key's file. The file appears complete or not at all: it is written under
a temporary name and then linked to its own, which fails if that name is taken, so a killed
backup never leaves a truncated file that looks like a good one.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from hub.crypto.backup import Backup, parse_backup
from hub.crypto.errors import KeyringError


def write_backup_file(path: Path, backup: Backup) -> None:
    """Write `backup` to `path`, a new file readable by its owner only."""
    if path.exists():
        raise KeyringError(f"{path} already exists; refusing to replace it (name a new file)")
    if not path.parent.is_dir():
        raise KeyringError(f"the folder of {path} does not exist")
    partial = path.with_name(f".{path.name}.{secrets.token_hex(4)}.partial")
    try:
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            if hasattr(os, "fchmod"):
                os.fchmod(fd, 0o600)  # the umask can only narrow the mode; this makes it exact
            os.write(fd, backup.to_json().encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(partial, path)
        except FileExistsError:
            raise KeyringError(f"{path} already exists; refusing to replace it (name a new file)") from None
    except OSError as error:
        raise KeyringError(f"cannot write {path}: {error.strerror or type(error).__name__}") from None
    finally:
        partial.unlink(missing_ok=True)
    _sync_folder(path.parent)


def read_backup_file(path: Path) -> Backup:
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        raise KeyringError(f"the key backup {path} does not exist") from None
    except OSError as error:
        raise KeyringError(f"cannot read {path}: {error.strerror or type(error).__name__}") from None
    return parse_backup(text)


def _sync_folder(folder: Path) -> None:
    # The new name must survive a power cut as well as the bytes it names.
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
