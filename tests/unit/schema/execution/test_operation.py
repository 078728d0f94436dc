"""Which operations a request may run, decided before the quota counts anything or SQL runs."""

from __future__ import annotations

from graphql import parse

from schema.compiled import Compiled
from schema.execution.operation import Operation, refusal


def operation(text: str, name: str | None = None, read_only: bool = False) -> Operation:
    return Operation(Compiled(text, parse(text), ()), None, name, read_only)


def test_a_single_unnamed_operation_may_run() -> None:
    assert refusal(operation("{ a }")) is None


def test_several_operations_need_a_name() -> None:
    refused = refusal(operation("query A { a } query B { b }"))
    assert refused is not None and refused.status == 400
    assert "name one in `operationName`" in refused.body["errors"][0]["message"]
    assert refused.body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert refusal(operation("query A { a } query B { b }", name="B")) is None


def test_a_name_the_document_lacks_is_refused_and_quoted_short() -> None:
    refused = refusal(operation("query A { a }", name="X" * 500))
    assert refused is not None and refused.status == 400
    message = refused.body["errors"][0]["message"]
    assert "no operation named" in message and len(message) < 150


def test_a_get_may_not_run_a_mutation() -> None:
    refused = refusal(operation("mutation M { m }", read_only=True))
    assert refused is not None and refused.status == 405
    assert refused.headers == {"Allow": "POST"}
    assert refusal(operation("mutation M { m }", read_only=False)) is None


def test_a_document_with_only_fragments_has_no_operation_to_run() -> None:
    refused = refusal(operation("fragment F on Query { a }"))
    assert refused is not None and refused.body["errors"][0]["message"] == "the document has no operation to run"


def test_a_text_that_does_not_parse_is_left_to_execution_to_report() -> None:
    assert refusal(Operation(Compiled("{", None, ()), None, None, False)) is None
