"""Registering apps, issuing, rotating and revoking tokens, and authenticating a bearer token.

Services take a session and never commit: the caller (a command, a request) owns the
transaction, so a failed step leaves nothing half-done.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from hub.auth.models import App, AppToken
from hub.auth.principal import Principal

TOKEN_PREFIX = "hub_"  # noqa: S105 (a recognisable prefix, not a secret)


class AppError(Exception):
    """An app command cannot be carried out; the message says why."""


@dataclass(frozen=True)
class IssuedToken:
    app: str
    token: str  # shown once, never stored
    expires_at: datetime


@dataclass(frozen=True)
class AppListing:
    name: str
    department: str
    roles: tuple[str, ...]
    attributes: Mapping[str, str]
    active_tokens: tuple[tuple[str, datetime], ...]  # (hint, expires_at)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes even for timezone-aware columns; they were stored in UTC.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


async def register_app(
    session: AsyncSession,
    name: str,
    department: str,
    roles: Sequence[str] = (),
    attributes: Mapping[str, str] | None = None,
    valid_days: int = 90,
) -> IssuedToken:
    if not name.strip():
        raise AppError("an app needs a name")
    if valid_days < 1:
        raise AppError("a token must be valid for at least one day")
    existing = await session.scalar(select(App).where(App.name == name))
    if existing is not None:
        raise AppError(f"an app named {name!r} is already registered")
    app = App(
        name=name,
        department=department,
        roles=list(roles),
        attributes=dict(attributes or {}),
        created_at=_now(),
    )
    session.add(app)
    await session.flush()
    return _issue(session, app, valid_days)


def _issue(session: AsyncSession, app: App, valid_days: int) -> IssuedToken:
    token = _new_token()
    now = _now()
    expires = now + timedelta(days=valid_days)
    session.add(
        AppToken(
            app_id=app.id,
            digest=digest(token),
            hint=token[: len(TOKEN_PREFIX) + 6],
            created_at=now,
            expires_at=expires,
        )
    )
    return IssuedToken(app.name, token, expires)


async def _get(session: AsyncSession, name: str) -> App:
    app = await session.scalar(select(App).where(App.name == name).options(selectinload(App.tokens)))
    if app is None:
        raise AppError(f"no app named {name!r} is registered")
    return app


async def rotate_token(
    session: AsyncSession, name: str, valid_days: int = 90, grace: timedelta = timedelta(0)
) -> IssuedToken:
    """Issue a new token; the app's older tokens stop working after `grace`."""
    if valid_days < 1:
        raise AppError("a token must be valid for at least one day")
    app = await _get(session, name)
    cutoff = _now() + grace
    for token in app.tokens:
        if token.revoked_at is None and _aware(token.expires_at) > cutoff:
            token.expires_at = cutoff
    return _issue(session, app, valid_days)


async def revoke_tokens(session: AsyncSession, name: str) -> int:
    """Revoke every live token of the app; returns how many were live."""
    app = await _get(session, name)
    now = _now()
    count = 0
    for token in app.tokens:
        if token.revoked_at is None and _aware(token.expires_at) > now:
            token.revoked_at = now
            count += 1
    return count


async def list_apps(session: AsyncSession) -> list[AppListing]:
    apps = await session.scalars(select(App).order_by(App.name).options(selectinload(App.tokens)))
    now = _now()
    return [
        AppListing(
            app.name,
            app.department,
            tuple(app.roles),
            dict(app.attributes),
            tuple(
                (t.hint, _aware(t.expires_at))
                for t in app.tokens
                if t.revoked_at is None and _aware(t.expires_at) > now
            ),
        )
        for app in apps
    ]


def app_principal(app: App) -> Principal:
    """The principal a registered app acts as."""
    attributes = {str(k): str(v) for k, v in (app.attributes or {}).items()}
    return Principal(app.name, app.department, tuple(app.roles or ()), attributes)


async def authenticate(session: AsyncSession, token: str) -> Principal | None:
    """The principal a bearer token stands for, or None if unknown, expired or revoked."""
    found = await authenticate_until(session, token)
    return None if found is None else found[0]


async def authenticate_until(session: AsyncSession, token: str) -> tuple[Principal, datetime] | None:
    """As `authenticate`, with the moment the token expires (for callers that cache)."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    row = (
        await session.execute(
            select(AppToken.expires_at, AppToken.revoked_at, App.name, App.department, App.roles, App.attributes)
            .join(App, App.id == AppToken.app_id)
            .where(AppToken.digest == digest(token))
        )
    ).one_or_none()
    if row is None or row.revoked_at is not None or _aware(row.expires_at) <= _now():
        return None
    attributes = {str(k): str(v) for k, v in (row.attributes or {}).items()}
    return Principal(row.name, row.department, tuple(row.roles or ()), attributes), _aware(row.expires_at)
