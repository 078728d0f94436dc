"""Each limit at its edge, checked per request against the caller's roles before anything
runs: at the limit an operation passes, one over it is refused with HTTP 400 and one
LIMIT_EXCEEDED error naming the limit, the value and the maximum. A document past what any
role may run is refused when it is compiled, before validation."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from graphql import get_introspection_query, parse

import schema.compiled as compiled_module
from hub.catalog import Catalog
from hub.config import load_settings
from hub.demo.catalog import demo_catalog
from schema import BuiltSchema, build_schema, prepare
from schema.execution.operation import Answer

ROLES = ("department_app",)
# Deep documents here nest relation lists, whose cost passes the default long before their
# depth does: depth tests lift the cost limit out of the way.
NO_COST = {"HUB_MAX_COST": str(10**15)}


@pytest.fixture(scope="module")
def built(small_catalog: Catalog) -> BuiltSchema:
    return build_schema(small_catalog, load_settings({}))


@pytest.fixture(scope="module")
def uncosted(small_catalog: Catalog) -> BuiltSchema:
    return build_schema(small_catalog, load_settings(NO_COST))


def refused(
    built: BuiltSchema,
    text: str,
    variables: dict[str, Any] | None = None,
    roles: tuple[str, ...] = ROLES,
    name: str | None = None,
) -> Answer | None:
    operation = prepare(built, text, None, variables, name, read_only=False)
    return built.limits.refusal(operation, roles)


def exceeded(answer: Answer | None) -> dict[str, Any]:
    """The one error of a refusal, checked for its shape."""
    assert answer is not None
    assert answer.status == 400
    assert answer.body["data"] is None
    (error,) = answer.body["errors"]
    assert error["extensions"]["code"] == "LIMIT_EXCEEDED"
    assert set(error["extensions"]) == {"code", "limit", "value", "max"}
    return dict(error["extensions"]) | {"message": error["message"]}


def nested(depth: int) -> str:
    """A valid document exactly `depth` fields deep: a person, its cases, their recipient..."""
    inner, on_person = "", True
    for _ in range(depth - 2):
        inner += "cases { " if on_person else "recipient { "
        on_person = not on_person
    leaf = "name" if on_person else "caseId"
    return '{ registryPerson(key: "1") { ' + inner + leaf + " }" * (depth - 2) + " } }"


def test_depth_at_the_limit_passes_and_one_over_is_refused(uncosted: BuiltSchema) -> None:
    assert refused(uncosted, nested(12)) is None
    error = exceeded(refused(uncosted, nested(13)))
    assert (error["limit"], error["value"], error["max"]) == ("depth", 13, 12)
    assert "13 levels deep; at most 12" in error["message"]


def test_the_standard_introspection_query_passes_the_depth_limit(built: BuiltSchema) -> None:
    assert refused(built, get_introspection_query()) is None


def test_aliases_at_the_limit_pass_and_one_over_is_refused(built: BuiltSchema) -> None:
    thirty = " ".join(f"a{i}: registryPersons {{ totalCount }}" for i in range(30))
    assert refused(built, "{ " + thirty + " }") is None
    error = exceeded(refused(built, "{ " + thirty + " a30: registryPersons { totalCount } }"))
    assert (error["limit"], error["value"], error["max"]) == ("aliases", 31, 30)


def test_aliases_amplified_by_a_fragment_count_at_every_spread(built: BuiltSchema) -> None:
    fragment = "fragment Three on RegistryPersonConnection { x: totalCount y: totalCount z: totalCount }"
    ten = fragment + " { registryPersons { " + " ".join("...Three" for _ in range(10)) + " } }"
    assert refused(built, ten) is None  # 3 aliases written, 30 used
    error = exceeded(refused(built, ten.replace("{ registryPersons {", "{ one: registryPersons {")))
    assert (error["limit"], error["value"], error["max"]) == ("aliases", 31, 30)


def test_directives_at_the_limit_pass_and_one_over_is_refused(built: BuiltSchema) -> None:
    fragment = "fragment Five on RegistryPersonConnection { totalCount " + "@include(if: true) " * 5 + "}"
    ten = fragment + " { registryPersons { " + " ".join("...Five" for _ in range(10)) + " } }"
    assert refused(built, ten) is None  # 5 directives written, 50 used
    error = exceeded(refused(built, ten.replace("{ registryPersons {", "{ registryPersons @skip(if: false) {")))
    assert (error["limit"], error["value"], error["max"]) == ("directives", 51, 50)


def test_cost_at_the_limit_passes_and_one_over_is_refused(small_catalog: Catalog) -> None:
    built = build_schema(small_catalog, load_settings({"HUB_MAX_COST": "1022"}))
    # registryPersons 1, nodes 1 + 10 rows x (name 1, cases 1 + 100 x caseId 1).
    text = "{ registryPersons(first: 10) { nodes { name cases { caseId } } } }"
    assert refused(built, text) is None
    error = exceeded(refused(built, text.replace("} } } }", "} } } __typename }")))
    assert (error["limit"], error["value"], error["max"]) == ("cost", 1023, 1022)


def test_cost_of_a_page_size_variable_is_checked_with_the_request_value(small_catalog: Catalog) -> None:
    built = build_schema(small_catalog, load_settings({"HUB_MAX_COST": "1022"}))
    text = "query($n: Int) { registryPersons(first: $n) { nodes { name cases { caseId } } } }"
    assert refused(built, text, {"n": 10}) is None
    error = exceeded(refused(built, text, {"n": 11}))
    assert (error["limit"], error["value"]) == ("cost", 2 + 11 * 102)
    # Left out: the default page of 100 rows.
    assert exceeded(refused(built, text, {}))["value"] == 2 + 100 * 102


def test_a_huge_first_variable_is_priced_at_the_largest_page_and_refused(built: BuiltSchema) -> None:
    text = """query($n: Int) { registryPersons(first: $n) { nodes { name cases { caseId recipient {
        cases { caseId } } } } } }"""
    error = exceeded(refused(built, text, {"n": 2**62}))
    assert error["limit"] == "cost"
    assert error["value"] == 1 + 1 + 10_000 * (1 + 1 + 100 * (1 + 1 + 1 + 100 * 1))
    assert error["max"] == 10_000_000


def test_tokens_at_the_limit_pass_and_one_over_is_refused(built: BuiltSchema) -> None:
    # Six tokens of fields, and comments, which graphql-core counts too (they cost parsing).
    base = "{ registryPersons { totalCount "
    at_limit = base + "#\n" * (20_000 - 6) + "} }"
    assert refused(built, at_limit) is None
    assert built.compiler.compile(at_limit).runnable
    error = exceeded(refused(built, base + "#\n" * (20_000 - 5) + "} }"))
    assert (error["limit"], error["value"], error["max"]) == ("tokens", 20_001, 20_000)
    assert "more than 20000 tokens" in error["message"]


def test_the_named_operation_is_the_one_measured(small_catalog: Catalog) -> None:
    built = build_schema(small_catalog, load_settings({**NO_COST, "HUB_MAX_DEPTH": "12,auditor=20"}))
    text = "query Deep " + nested(13) + " query Shallow { registryPersons { totalCount } }"
    assert refused(built, text, name="Shallow") is None
    error = exceeded(refused(built, text, name="Deep"))
    assert error["limit"] == "depth" and "'Deep'" in error["message"]


def test_a_document_with_an_operation_past_every_role_is_refused_whole(uncosted: BuiltSchema) -> None:
    # Refused when compiled, before validation: a light sibling must not buy the heavy one a
    # validation run.
    text = "query Deep " + nested(13) + " query Shallow { registryPersons { totalCount } }"
    error = exceeded(refused(uncosted, text, name="Shallow"))
    assert error["limit"] == "depth" and "'Deep'" in error["message"]


def test_per_role_limits_apply_to_the_caller_and_the_largest_of_several_roles_wins(small_catalog: Catalog) -> None:
    built = build_schema(small_catalog, load_settings({**NO_COST, "HUB_MAX_DEPTH": "4,auditor=13,public=3"}))
    assert exceeded(refused(built, nested(5), roles=("department_app",)))["max"] == 4
    assert refused(built, nested(13), roles=("auditor",)) is None
    assert exceeded(refused(built, nested(4), roles=("public",)))["max"] == 3
    assert refused(built, nested(13), roles=("public", "auditor")) is None
    assert exceeded(refused(built, nested(5), roles=()))["max"] == 4


def test_a_generous_role_s_limits_once_used_never_pass_to_a_caller_without_it(small_catalog: Catalog) -> None:
    # The limits are remembered per set of roles: the auditor's, worked out first on the same
    # document, are not those of a public caller or of an app, and the same roles in another
    # order get the same answer.
    built = build_schema(small_catalog, load_settings({**NO_COST, "HUB_MAX_DEPTH": "4,auditor=13,public=3"}))
    document = nested(5)
    for _ in range(2):
        assert refused(built, document, roles=("auditor",)) is None
        assert exceeded(refused(built, document, roles=("public",)))["max"] == 3
        assert exceeded(refused(built, document, roles=("department_app",)))["max"] == 4
        assert refused(built, document, roles=("public", "auditor")) is None
        assert refused(built, document, roles=("auditor", "public")) is None


def test_a_document_past_every_role_is_refused_before_validation(
    small_catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    built = build_schema(small_catalog, load_settings({"HUB_MAX_ALIASES": "30,auditor=100"}))
    validated = 0
    validate = compiled_module.validate

    def counting(*args: Any, **kwargs: Any) -> Any:
        nonlocal validated
        validated += 1
        return validate(*args, **kwargs)

    monkeypatch.setattr(compiled_module, "validate", counting)
    # A fragment of 30 aliases spread 30 times: 900 aliases, past even the auditor's 100.
    fragment = "fragment F on RegistryPersonConnection { " + " ".join(f"a{i}: totalCount" for i in range(30)) + " }"
    text = fragment + " { registryPersons { " + " ".join("...F" for _ in range(30)) + " } }"
    error = exceeded(refused(built, text, roles=("auditor",)))
    assert (error["limit"], error["value"], error["max"]) == ("aliases", 900, 100)
    assert validated == 0
    # Within the auditor's limit, the document is validated, and refused to others per request.
    assert refused(built, fragment + " { registryPersons { ...F ...F ...F } }", roles=("auditor",)) is None
    assert validated == 1
    assert exceeded(refused(built, fragment + " { registryPersons { ...F ...F ...F } }"))["max"] == 30


def test_circular_fragments_are_refused_by_validation_not_looped_on(built: BuiltSchema) -> None:
    text = """
        { registryPersons { ...A } }
        fragment A on RegistryPersonConnection { totalCount ...B }
        fragment B on RegistryPersonConnection { nodes { name } ...A }
    """
    compiled = built.compiler.compile(text)
    assert [e.message for e in compiled.errors] == ["Cannot spread fragment 'A' within itself via 'B'."]
    assert refused(built, text) is None  # not a limit: execution answers the validation error


def test_a_chain_of_fragments_doubling_sixty_times_is_refused_for_its_cost(built: BuiltSchema) -> None:
    chain = " ".join(f"fragment F{i} on RegistryPersonConnection {{ ...F{i + 1} ...F{i + 1} }}" for i in range(60))
    text = chain + " fragment F60 on RegistryPersonConnection { totalCount } { registryPersons { ...F0 } }"
    error = exceeded(refused(built, text))
    assert (error["limit"], error["value"]) == ("cost", 1 + 2**60)


README = Path(__file__).resolve().parents[3] / "README.md"
RESIDENTS_TWICE = (
    "{ populationDistricts { nodes { residents { district { a: residents { districtCode idNumber name } "
    "b: residents { districtCode idNumber name } } } } } }"
)
DEMO_PRICES = [
    ("the auditor's widest district listing", RESIDENTS_TWICE, 6_030_102),
    (
        "one level of residents deeper",
        "{ populationDistricts { nodes { residents { district { residents { district { residents "
        "{ districtCode } } } } } } } }",
        102_020_102,
    ),
    (
        "thirty aliases over every district",
        "{ populationDistricts { nodes { "
        + " ".join(f"r{n}: residents {{ district {{ residents {{ districtCode idNumber }} }} }}" for n in range(30))
        + " } } }",
        60_603_002,
    ),
    (
        "eight 10,000-row lists",
        "{ "
        + " ".join(
            f"l{n}: civilAffairsServiceDeliveries(first: 10000) {{ nodes {{ deliveryId caseId recipientName "
            "recipientIdNumber recipientMobile serviceType deliveredAt amount districtCode status requestId "
            "expenditureId } }"
            for n in range(8)
        )
        + " }",
        960_016,
    ),
    ("the standard introspection query", get_introspection_query(), 4_338_257),
    (
        "every budget line's full accountability report",
        '{ budgetLineAccountability(first: 10000, filter: {asOf: "2026-06-30T18:00:00+08:00"}) { totalCount '
        "nodes { lineId allocated spent expenditures servicesDelivered services { department serviceType "
        "deliveries amount } districts requestsAnswered requestsUnanswered feedbackCount meanSatisfaction "
        "costPerAnsweredRequest medianResponseHours p90ResponseHours gaps { spendWithoutService "
        "serviceWithoutBasis overdueUnanswered } suppressed withheld } } }",
        5_200_003,
    ),
    (
        "thirty aliases of the report's count",
        "{ " + " ".join(f"r{n}: budgetLineAccountability {{ totalCount }}" for n in range(30)) + " }",
        30_000_060,
    ),
    (
        "the README's curl-sized listing",
        "{ populationPersons(first: 10000) { nodes { name healthVisits { diagnosis } } } }",
        1_020_002,
    ),
]


@pytest.fixture(scope="module")
def demo() -> BuiltSchema:
    return build_schema(demo_catalog(), load_settings({}))


@pytest.mark.parametrize(("what", "text", "price"), DEMO_PRICES, ids=[p[0] for p in DEMO_PRICES])
def test_the_readme_prices_demo_queries_as_the_hub_does(demo: BuiltSchema, what: str, text: str, price: int) -> None:
    (demand,) = demo.limits.measure(parse(text))
    assert demo.limits.pages is not None
    assert demand.cost(demo.limits.pages, {}) == price
    assert f"{price:,}" in README.read_text(encoding="utf-8"), what


def test_the_readme_examples_cost_what_the_readme_says(demo: BuiltSchema) -> None:
    built = demo
    assert built.limits.pages is not None
    examples = re.findall(r"```graphql\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.DOTALL)
    costs = [built.limits.measure(parse(example))[0].cost(built.limits.pages, {}) for example in examples[:2]]
    assert costs == [102_014, 70_505]
    assert all(f"| {cost:,} |" in README.read_text(encoding="utf-8") for cost in costs)
