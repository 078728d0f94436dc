"""The demo's callers: one registered app per kind of user, with their tokens in a file.

They are registered through the same service as any app (`hub apps`), so the demo exercises
the real authentication path; only the token file is demo-specific."""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hub.auth.registry import AppError, authenticate, register_app, rotate_token

DEMO_TOKEN_DAYS = 365


@dataclass(frozen=True)
class Caller:
    name: str
    department: str
    roles: tuple[str, ...]
    attributes: dict[str, str]
    about: str


CALLERS = (
    Caller("civil-affairs-app", "civil_affairs", ("department_app",), {}, "civil affairs case workers' app"),
    Caller("health-app", "health", ("department_app",), {}, "the health commission's app"),
    Caller("human-resources-app", "human_resources", ("department_app",), {}, "pensions and employment"),
    Caller(
        "district-office-app",
        "civil_affairs",
        ("district_office",),
        {"district": "330102"},
        "a street office that may see its own district only",
    ),
    Caller("auditor", "audit", ("auditor",), {}, "traces spending to delivered services and demand"),
    Caller("civil-affairs-steward", "civil_affairs", ("data_steward",), {}, "grants access to civil affairs data"),
    Caller("platform-admin", "platform", ("admin",), {}, "edits policies and registers connectors"),
    Caller(
        "citizen-portal",
        "citizen_portal",
        ("citizen_portal",),
        {},
        "shows citizens who received their data (personAccessHistory, purpose citizen_service)",
    ),
    Caller("public", "public", ("public",), {}, "sees public (L1) data only"),
)


async def ensure_callers(sessions: async_sessionmaker[AsyncSession], token_file: Path) -> dict[str, str]:
    """Register every demo caller once and keep a working token for each in `token_file`.

    A token that no longer authenticates (expired, revoked) is rotated; the file is rewritten
    readable by its owner only."""
    known = await asyncio.to_thread(_read_tokens, token_file)
    tokens: dict[str, str] = {}
    async with sessions() as session, session.begin():
        for caller in CALLERS:
            token = known.get(caller.name)
            if token is not None and await authenticate(session, token) is not None:
                tokens[caller.name] = token
                continue
            tokens[caller.name] = await _issue(session, caller)
    await asyncio.to_thread(_write_private, token_file, json.dumps(tokens, indent=2, ensure_ascii=False) + "\n")
    return tokens


def _read_tokens(token_file: Path) -> dict[str, str]:
    if not token_file.exists():
        return {}
    try:
        loaded = json.loads(token_file.read_text(encoding="utf-8"))
    except ValueError:  # a damaged file: every caller gets a fresh token
        return {}
    return {str(k): str(v) for k, v in loaded.items()} if isinstance(loaded, dict) else {}


async def _issue(session: AsyncSession, caller: Caller) -> str:
    try:
        issued = await register_app(
            session, caller.name, caller.department, caller.roles, caller.attributes, DEMO_TOKEN_DAYS
        )
    except AppError:  # registered before, but its token file was lost or its token expired
        issued = await rotate_token(session, caller.name, DEMO_TOKEN_DAYS)
    return issued.token


def _write_private(path: Path, content: str) -> None:
    temporary = path.with_suffix(".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(content)
    os.replace(temporary, path)
