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
