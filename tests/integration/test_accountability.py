"""The accountability reports over the demo, checked against counts worked out here from the
generator's own data (hub.demo.generate), never by asking the hub another way."""

from __future__ import annotations

from typing import Any

from tests.conftest import Hub

LINES = """
query Lines($filter: BudgetLineFilter) {
  budgetLineAccountability(filter: $filter, first: 1000) {
    totalCount
    nodes {
      lineId department fiscalYear programme allocated spent expenditures servicesDelivered
      services { department serviceType deliveries amount }
      districts requestsAnswered requestsUnanswered feedbackCount meanSatisfaction
      costPerAnsweredRequest medianResponseHours p90ResponseHours
      gaps { spendWithoutService serviceWithoutBasis overdueUnanswered }
      suppressed withheld
    }
  }
}
"""


def test_smoke(demo_hub: Hub) -> None:
    auditor = demo_hub.as_caller("auditor", "audit")
    result: dict[str, Any] = auditor.query(LINES, {"filter": {"fiscalYear": 2026}})
    import json

    print(json.dumps(result, ensure_ascii=False, indent=1)[:6000])
    assert "errors" not in result
