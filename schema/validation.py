"""The rules a document is validated by besides GraphQL's own and the limits: what production
mode refuses, and values no department database can take.

Run once per document text (schema/compiled.py caches the outcome), so they cost a request
nothing after its text was first seen.
"""

from __future__ import annotations

from typing import Any

from graphql import (
    ASTValidationRule,
    FieldNode,
    GraphQLError,
    StringValueNode,
    ValidationRule,
    specified_rules,
)
from graphql.language.visitor import SKIP, VisitorAction
from strawberry.schema.validation_rules.maybe_null import MaybeNullValidationRule
from strawberry.schema.validation_rules.one_of import OneOfInputValidationRule


class NoNulCharacter(ValidationRule):
    """A string literal holding U+0000 (written `\\u0000` in the document) is refused: PostgreSQL
    cannot hold the character, so it would fail there rather than be refused here. hub/request.py
    refuses it in variables."""

    def enter_string_value(self, node: StringValueNode, *_: Any) -> None:
        if "\x00" in node.value:
            self.report_error(GraphQLError("a string may not hold the character U+0000", node))


class NoIntrospection(ValidationRule):
    """Production mode: `__schema` and `__type` are refused, one error each, wherever they
    stand (fragments too); `__typename` is answered, since clients need it to tell types apart.
    (graphql-core's NoSchemaIntrospectionCustomRule reports every field below them as well.)"""

    def enter_field(self, node: FieldNode, *_: Any) -> VisitorAction:
        name = node.name.value
        if name in ("__schema", "__type"):
            self.report_error(
                GraphQLError(
                    f"introspection is off on this hub: `{name}` is refused (`__typename` is answered)",
                    node,
                )
            )
            return SKIP
        return None


def document_rules(own: list[type[ASTValidationRule]], introspection: bool) -> tuple[type[ASTValidationRule], ...]:
    """Every rule a document is validated by: GraphQL's, strawberry's two (which its own
    validation adds), `own` (the limits), the U+0000 rule, and, with introspection off, the
    refusal of `__schema` and `__type`."""
    rules: list[type[ASTValidationRule]] = [
        *specified_rules,
        MaybeNullValidationRule,
        OneOfInputValidationRule,
        *own,
        NoNulCharacter,
    ]
    if not introspection:
        rules.append(NoIntrospection)
    return tuple(rules)
