"""Running the hub database's alembic migrations from the installed package.

The migration scripts ship inside the wheel (`migrations` package data), so `hub migrate` works
from a plain `pip install` as well as from a checkout."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import URL

# `migrations` sits beside `hub` both in a checkout and in site-packages (it has no __init__.py,
# so importlib.resources cannot name it reliably under an editable install).
SCRIPTS = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(url: URL) -> Config:
    config = Config()
    config.set_main_option("script_location", str(SCRIPTS))
    config.attributes["url"] = url
    return config


def upgrade(url: URL) -> None:
    """Bring the hub database at `url` to the newest revision (creating it if needed)."""
    if url.get_backend_name() == "sqlite" and url.database:
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(url), "head")


def check(url: URL) -> None:
    """Fail if the models and the migrations disagree (`alembic check`)."""
    command.check(alembic_config(url))
