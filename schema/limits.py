"""Limits checked while validating a document, before anything runs: depth and aliases.

Errors carry LIMIT_EXCEEDED so a caller can tell a refused document from a wrong one."""

from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationRule,
)


def limits_rule(max_depth: int, max_aliases: int) -> type[ValidationRule]:
    class Limits(ValidationRule):
        def enter_operation_definition(self, node: OperationDefinitionNode, *_: Any) -> None:
            fragments = {
                d.name.value: d for d in self.context.document.definitions if isinstance(d, FragmentDefinitionNode)
            }
            depth, aliases = _measure(node.selection_set, fragments, 0, set())
            if depth > max_depth:
                self.report(f"the operation is {depth} levels deep; at most {max_depth} are allowed", node)
            if aliases > max_aliases:
                self.report(f"the operation uses {aliases} aliases; at most {max_aliases} are allowed", node)

        def report(self, message: str, node: OperationDefinitionNode) -> None:
            self.report_error(GraphQLError(message, node, extensions={"code": "LIMIT_EXCEEDED"}))

    return Limits


def _measure(
    selection_set: SelectionSetNode | None,
    fragments: dict[str, FragmentDefinitionNode],
    depth: int,
    visiting: set[str],
) -> tuple[int, int]:
    """Depth and alias count, through fragments (each alias counted where it is used)."""
    if selection_set is None:
        return depth, 0
    deepest, aliases = depth, 0
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            if selection.alias is not None:
                aliases += 1
            d, a = _measure(selection.selection_set, fragments, depth + 1, visiting)
        elif isinstance(selection, InlineFragmentNode):
            d, a = _measure(selection.selection_set, fragments, depth, visiting)
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            if name in visiting or name not in fragments:
                continue  # cycles and unknown fragments are reported by standard validation
            d, a = _measure(fragments[name].selection_set, fragments, depth, visiting | {name})
        else:
            continue
        deepest, aliases = max(deepest, d), aliases + a
    return deepest, aliases
