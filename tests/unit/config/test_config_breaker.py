"""Circuit breaker settings: read from the environment with their defaults, and values that
would make a breaker that never opens or never closes refused with the variable's name."""

from __future__ import annotations

import pytest

from hub.config import SettingsError, load_settings


def test_breaker_settings_default_to_five_failures_in_thirty_seconds_and_ten_seconds_open() -> None:
    settings = load_settings({})
    assert (settings.breaker_failures, settings.breaker_window_seconds, settings.breaker_cooldown_seconds) == (
        5,
        30.0,
        10.0,
    )


def test_breaker_settings_are_read_from_the_environment() -> None:
    settings = load_settings(
        {"HUB_BREAKER_FAILURES": "3", "HUB_BREAKER_WINDOW_SECONDS": "12.5", "HUB_BREAKER_COOLDOWN_SECONDS": "0.5"}
    )
    assert (settings.breaker_failures, settings.breaker_window_seconds, settings.breaker_cooldown_seconds) == (
        3,
        12.5,
        0.5,
    )


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("HUB_BREAKER_FAILURES", "0"),
        ("HUB_BREAKER_FAILURES", "many"),
        ("HUB_BREAKER_WINDOW_SECONDS", "0"),
        ("HUB_BREAKER_WINDOW_SECONDS", "nan"),
        ("HUB_BREAKER_COOLDOWN_SECONDS", "-1"),
        ("HUB_BREAKER_COOLDOWN_SECONDS", "inf"),
    ],
)
def test_a_breaker_setting_that_could_not_work_is_refused_by_name(variable: str, value: str) -> None:
    with pytest.raises(SettingsError, match=variable):
        load_settings({variable: value})
