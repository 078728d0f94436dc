"""Lookup quota settings: read from the environment, per role, the largest of a caller's roles,
and a day of the most generous quota below half of the 10,000 candidates a mask must leave."""

from __future__ import annotations

import pytest

from hub.config import SettingsError, load_settings


def test_quotas_are_read_per_role_from_the_environment() -> None:
    settings = load_settings({"HUB_LOOKUP_QUOTAS": "department_app=150, auditor=80", "HUB_LOOKUP_QUOTA_DEFAULT": "7"})
    assert settings.lookup_quota(["department_app"]) == 150
    assert settings.lookup_quota(["auditor"]) == 80
    assert settings.lookup_quota(["public"]) == 7
    assert settings.lookup_quota([]) == 7


def test_a_caller_with_several_roles_gets_the_largest_of_their_quotas() -> None:
    settings = load_settings({"HUB_LOOKUP_QUOTAS": "district_office=100,department_app=200,public=0"})
    assert settings.lookup_quota(["district_office", "department_app"]) == 200
    assert settings.lookup_quota(["public", "district_office"]) == 100


def test_the_default_quotas_allow_fewer_than_5000_lookups_a_day() -> None:
    settings = load_settings({})
    assert settings.lookup_quota_enabled
    assert settings.max_daily_lookups() < 5000
    assert settings.max_daily_lookups() == 24 * max(settings.lookup_quota_default, *settings.lookup_quotas.values())


def test_the_daily_maximum_follows_the_most_generous_role() -> None:
    assert (
        load_settings({"HUB_LOOKUP_QUOTAS": "auditor=300", "HUB_LOOKUP_QUOTA_DEFAULT": "10"}).max_daily_lookups()
        == 7200
    )
    assert load_settings({"HUB_LOOKUP_QUOTAS": "", "HUB_LOOKUP_QUOTA_DEFAULT": "10"}).max_daily_lookups() == 240


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"HUB_LOOKUP_QUOTAS": "department_app"}, "HUB_LOOKUP_QUOTAS"),
        ({"HUB_LOOKUP_QUOTAS": "=5"}, "HUB_LOOKUP_QUOTAS"),
        ({"HUB_LOOKUP_QUOTAS": "auditor=many"}, "HUB_LOOKUP_QUOTAS"),
        ({"HUB_LOOKUP_QUOTAS": "auditor=-1"}, "HUB_LOOKUP_QUOTAS"),
        ({"HUB_LOOKUP_QUOTA_DEFAULT": "-3"}, "HUB_LOOKUP_QUOTA_DEFAULT"),
        ({"HUB_LOOKUP_QUOTA": "sometimes"}, "HUB_LOOKUP_QUOTA"),
    ],
)
def test_malformed_quota_settings_are_refused_naming_the_variable(environ: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        load_settings(environ)


def test_the_counter_is_off_only_when_switched_off() -> None:
    assert load_settings({"HUB_LOOKUP_QUOTA": "off"}).lookup_quota_enabled is False
    assert load_settings({"HUB_LOOKUP_QUOTA": "on"}).lookup_quota_enabled is True
