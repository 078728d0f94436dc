"""Concurrency-limit settings: checked at start-up, so a typo stops the hub, not a request."""

from __future__ import annotations

import pytest

from hub.config import DEFAULT_CONCURRENCY_LIMITS, SettingsError, load_settings
from hub.quota.concurrency import InFlight
from hub.services import _in_flight


def test_defaults_limit_every_caller_with_more_for_department_apps() -> None:
    settings = load_settings({})
    assert settings.concurrency_limit_enabled
    assert settings.concurrency_limits == DEFAULT_CONCURRENCY_LIMITS == {"department_app": 16}
    assert settings.concurrency_limit_default == 4
    assert settings.concurrency_wait_seconds == 1.0


def test_limits_per_role_the_default_and_the_wait_are_read() -> None:
    settings = load_settings(
        {
            "HUB_CONCURRENCY_LIMITS": "auditor=2, department_app=32",
            "HUB_CONCURRENCY_LIMIT_DEFAULT": "3",
            "HUB_CONCURRENCY_WAIT_SECONDS": "0",
        }
    )
    assert settings.concurrency_limits == {"auditor": 2, "department_app": 32}
    assert settings.concurrency_limit_default == 3
    assert settings.concurrency_wait_seconds == 0


def test_off_means_no_limit() -> None:
    assert _in_flight(load_settings({"HUB_CONCURRENCY_LIMIT": "off"})) is None
    assert isinstance(_in_flight(load_settings({})), InFlight)


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("HUB_CONCURRENCY_LIMITS", "auditor", "role=number"),
        ("HUB_CONCURRENCY_LIMITS", "auditor=0", "at least one request"),
        ("HUB_CONCURRENCY_LIMITS", "auditor=many", "HUB_CONCURRENCY_LIMITS must be a whole number"),
        ("HUB_CONCURRENCY_LIMIT_DEFAULT", "0", "at least 1"),
        ("HUB_CONCURRENCY_WAIT_SECONDS", "61", "from 0 to 60"),
        ("HUB_CONCURRENCY_WAIT_SECONDS", "soon", "must be a number"),
        ("HUB_CONCURRENCY_LIMIT", "sometimes", "true or false"),
    ],
)
def test_a_malformed_setting_names_itself(name: str, value: str, says: str) -> None:
    with pytest.raises(SettingsError, match=says):
        load_settings({name: value})
