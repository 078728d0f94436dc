"""What every `hub` command shares: reading settings once, running async work, and failing with
one clear line and a non-zero exit instead of a traceback."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn, TypeVar

import click

from hub.apps.service import AppError
from hub.catalog import ManifestError
from hub.config import Settings, SettingsError, load_settings
from hub.connections import ConnectionSetupError
from hub.crypto.errors import CryptoError

T = TypeVar("T")

# Errors an operator can act on: their messages name what to fix and never carry a key.
EXPECTED: tuple[type[Exception], ...] = (AppError, ManifestError, ConnectionSetupError, CryptoError)


def fail(message: str) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


def settings_from_env(**overrides: Any) -> Settings:
    try:
        return load_settings(os.environ, **overrides)
    except SettingsError as exc:
        fail(str(exc))


def run(work: Callable[[], Awaitable[T]]) -> T:
    try:
        return asyncio.run(_call(work))
    except EXPECTED as exc:
        fail(str(exc))


async def _call(work: Callable[[], Awaitable[T]]) -> T:
    return await work()
