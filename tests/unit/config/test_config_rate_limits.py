"""Rate-limit settings: checked at start-up, so a typo stops the hub, not a request."""

from __future__ import annotations

import pytest

from hub.config import DEFAULT_RATE_LIMITS, SettingsError, load_settings


def test_defaults_limit_every_caller_and_department() -> None:
    settings = load_settings({})
    assert settings.rate_limit_enabled
    assert settings.rate_limits == DEFAULT_RATE_LIMITS
    assert settings.rate_limit_default == "3000/minute"
    assert settings.department_rate_limit == "20000/minute"
    assert settings.limits_storage == "memory://"


def test_rates_per_role_and_a_redis_store_are_read() -> None:
    settings = load_settings(
        {
            "HUB_RATE_LIMITS": "auditor=10/second, public=60/minute",
            "HUB_LIMITS_STORAGE": "redis://127.0.0.1:6379/0",
            "HUB_RATE_LIMIT": "off",
        }
    )
    assert settings.rate_limits == {"auditor": "10/second", "public": "60/minute"}
    assert settings.limits_storage == "redis://127.0.0.1:6379/0"
    assert not settings.rate_limit_enabled


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("HUB_RATE_LIMITS", "auditor", "role=rate"),
        ("HUB_RATE_LIMITS", "auditor=fast", "HUB_RATE_LIMITS must be a rate"),
        ("HUB_RATE_LIMIT_DEFAULT", "0/minute", "at least one"),
        ("HUB_DEPARTMENT_RATE_LIMIT", "1000/fortnight", "HUB_DEPARTMENT_RATE_LIMIT must be a rate"),
        ("HUB_LIMITS_STORAGE", "memcached://x", "memory:// or a redis:// URL"),
        ("HUB_RATE_LIMIT", "sometimes", "true or false"),
    ],
)
def test_a_malformed_setting_names_itself(name: str, value: str, says: str) -> None:
    with pytest.raises(SettingsError, match=says):
        load_settings({name: value})
