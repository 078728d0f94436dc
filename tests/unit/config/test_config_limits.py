"""Demand-control settings: depth, aliases, directives and cost with a default and per-role
overrides in one variable each (written as HUB_LOOKUP_QUOTAS writes roles), tokens one number;
a caller with several roles gets the largest of theirs."""

from __future__ import annotations

import pytest

from hub.config import SettingsError, load_settings


def test_the_defaults_keep_todays_limits_and_add_directives_and_cost() -> None:
    settings = load_settings({})
    limits = {name: settings.limit(name, ["department_app"]) for name in ("depth", "aliases", "directives", "cost")}
    assert limits == {"depth": 12, "aliases": 30, "directives": 50, "cost": 10_000_000}
    assert settings.max_tokens == 20_000
    assert settings.limits_by_role == {}


def test_a_limit_has_a_default_and_overrides_per_role() -> None:
    settings = load_settings({"HUB_MAX_COST": "2000, auditor=9000, public=10", "HUB_MAX_TOKENS": "500"})
    assert settings.limit("cost", ["auditor"]) == 9000
    assert settings.limit("cost", ["public"]) == 10
    assert settings.limit("cost", ["department_app"]) == 2000
    assert settings.limit("cost", []) == 2000
    assert settings.limit("cost", ["public", "auditor"]) == 9000
    assert settings.largest_limit("cost") == 9000
    assert settings.max_tokens == 500


def test_overrides_alone_keep_the_built_in_default() -> None:
    settings = load_settings({"HUB_MAX_DEPTH": "auditor=20", "HUB_MAX_ALIASES": "40", "HUB_MAX_DIRECTIVES": "public=5"})
    assert settings.limit("depth", ["department_app"]) == 12
    assert settings.limit("depth", ["auditor"]) == 20
    assert settings.limit("aliases", ["auditor"]) == 40
    assert settings.limit("directives", ["public"]) == 5
    assert settings.largest_limit("directives") == 50


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"HUB_MAX_COST": "lots"}, "HUB_MAX_COST"),
        ({"HUB_MAX_COST": "=5"}, "HUB_MAX_COST"),
        ({"HUB_MAX_COST": "auditor=many"}, "HUB_MAX_COST"),
        ({"HUB_MAX_DEPTH": "auditor=-1"}, "HUB_MAX_DEPTH"),
        ({"HUB_MAX_ALIASES": "-3"}, "HUB_MAX_ALIASES"),
        ({"HUB_MAX_DIRECTIVES": "5,public=x"}, "HUB_MAX_DIRECTIVES"),
        ({"HUB_MAX_TOKENS": "0"}, "HUB_MAX_TOKENS"),
        ({"HUB_MAX_TOKENS": "2000,auditor=5000"}, "HUB_MAX_TOKENS"),
    ],
)
def test_malformed_limits_are_refused_naming_the_variable(environ: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        load_settings(environ)


def test_a_role_the_policy_does_not_know_is_named_with_its_variable() -> None:
    settings = load_settings({"HUB_MAX_COST": "1000,auditr=5000"})
    problem = settings.unknown_limit_role({"auditor", "public"})
    assert problem is not None
    assert "HUB_MAX_COST" in problem and "'auditr'" in problem and "auditor, public" in problem
    assert load_settings({"HUB_MAX_COST": "1000,auditor=5000"}).unknown_limit_role({"auditor"}) is None
