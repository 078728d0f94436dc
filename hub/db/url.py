"""Which database URLs the hub can open, checked when settings are read: a URL in the form
another tool writes (`postgres://`, `postgresql://` with no driver) or naming a driver that
is not installed stops the start with one line saying what to write instead."""

from __future__ import annotations

from sqlalchemy.engine import URL
from sqlalchemy.exc import NoSuchModuleError

# The async driver the hub uses for each backend, as a URL's scheme names it.
ASYNC_SCHEMES = {
    "sqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+asyncpg",
    "mysql": "mysql+asyncmy",
    "mariadb": "mariadb+asyncmy",
}
# Spellings other tools accept for a backend.
ALIASES = {"postgres": "postgresql"}


def url_problem(url: URL) -> str | None:
    """Why the hub cannot open `url`, in words that say what to write instead; None when it
    can. Never quotes the URL (it may hold a password), only its scheme."""
    backend, _, driver = url.drivername.partition("+")
    backend = ALIASES.get(backend, backend)
    if backend not in ASYNC_SCHEMES:
        known = ", ".join(f"{scheme}://" for scheme in ASYNC_SCHEMES.values())
        return f"its scheme {url.drivername}:// is not a database the hub knows; write one of {known}"
    if not driver or url.drivername.partition("+")[0] != backend:
        return f"write {ASYNC_SCHEMES[backend]}:// instead of {url.drivername}:// (the hub needs an async driver)"
    scheme = f"{backend}+{driver}"
    try:
        # As create_async_engine picks it: psycopg, for one, has an async variant.
        dialect = URL.create(scheme).get_dialect(_is_async=True)
    except NoSuchModuleError:
        return f"{scheme}:// names no driver SQLAlchemy knows; write {ASYNC_SCHEMES[backend]}://"
    if not getattr(dialect, "is_async", False):
        return f"{scheme}:// is not an async driver; write {ASYNC_SCHEMES[backend]}://"
    try:
        dialect.import_dbapi()
    except ImportError:
        return (
            f"the driver of {scheme}:// is not installed (pip install {driver}), or write {ASYNC_SCHEMES[backend]}://"
        )
    return None
