"""While unconfirmed, the planner's policy withholds L3 and L4 fields and leaves the rest to
the live policy, under a version that says so; confirmed again, the live policy is back."""

from __future__ import annotations

from hub.access.plan import Decision, ReleaseEverything
from hub.auth.principal import Principal
from hub.catalog import Catalog
from hub.catalog.manifest import Tier
from hub.instances.unconfirmed import ConfirmedSource, Withholding


def test_unconfirmed_withholds_l3_and_l4_fields_only(small_catalog: Catalog) -> None:
    live = ReleaseEverything()
    confirmed = [True]
    source = ConfirmedSource(lambda: live, lambda: confirmed[0])
    assert source() is live
    confirmed[0] = False
    policy = source()
    assert isinstance(policy, Withholding)
    assert policy.version == "open-unconfirmed"
    assert source() is policy  # one wrapper per live policy: the planner's caches hold
    principal = Principal("app", "welfare", ("department_app",), {})
    tiers = set()
    for entity in small_catalog:
        for item in entity.fields.values():
            verdict = policy.field(principal, None, entity, item)
            tiers.add(item.tier)
            if item.tier in (Tier.L3, Tier.L4):
                assert verdict.decision is Decision.DENIED
                assert "cannot confirm" in verdict.reason
            else:
                assert verdict.decision is Decision.PLAIN
    assert Tier.L3 in tiers and Tier.L2 in tiers
    confirmed[0] = True
    assert source() is live


class _Sizes(ReleaseEverything):
    """The live policy's group sizes, per department of the data aggregated."""

    def min_group(self, principal: Principal, purpose: str | None, department: str | None = None) -> int:
        return {"welfare": 11, None: 7}.get(department, 5)


def test_unconfirmed_keeps_the_live_group_size_of_each_departments_data() -> None:
    # The planner asks per department (hub/access/plan.py); the wrapper must answer as the live
    # policy does, or an aggregate on an unconfirmed instance fails instead of being suppressed.
    policy = ConfirmedSource(_Sizes, lambda: False)()
    principal = Principal("app", "welfare", ("department_app",), {})
    assert isinstance(policy, Withholding)
    assert policy.min_group(principal, "audit", "welfare") == 11
    assert policy.min_group(principal, "audit", "health") == 5
    assert policy.min_group(principal, "audit") == 7
