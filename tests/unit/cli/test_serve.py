"""`hub demo` shows its schema (introspection and GraphiQL on) where `hub serve` runs in
production mode, and serves with its own master key."""

from __future__ import annotations

from hub.cli.serve import demo_environ
from hub.config import load_settings


def test_the_demo_turns_introspection_and_graphiql_on() -> None:
    settings = load_settings(demo_environ({"HUB_MAX_BODY_BYTES": "5000"}))
    assert (settings.introspection, settings.graphiql) == (True, True)
    assert settings.max_body_bytes == 5000
    assert load_settings({}).introspection is False


def test_the_environment_can_turn_the_demo_s_schema_off() -> None:
    settings = load_settings(demo_environ({"HUB_INTROSPECTION": "off", "HUB_GRAPHIQL": "off"}))
    assert (settings.introspection, settings.graphiql) == (False, False)


def test_the_demo_ignores_a_master_key_in_the_environment() -> None:
    environ = demo_environ({"HUB_MASTER_KEY": "x", "HUB_MASTER_KEY_FILE": "/k", "OTHER": "y"})
    assert "HUB_MASTER_KEY" not in environ and "HUB_MASTER_KEY_FILE" not in environ
    assert environ["OTHER"] == "y"
