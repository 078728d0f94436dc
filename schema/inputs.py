"""GraphQL input objects (filters) as the plain mappings the hub's readers take."""

from typing import Any

import strawberry


def input_spec(value: Any) -> Any:
    """A strawberry input object as a plain mapping keyed by GraphQL names, nulls dropped."""
    if value is None:
        return None
    if isinstance(value, list):
        return [input_spec(item) for item in value]
    if isinstance(value, dict):
        # As graphql-core coerces an input object for the fast path: every field, those not
        # given as None.
        return {key: input_spec(item) for key, item in value.items() if item is not None}
    definition = getattr(value, "__strawberry_definition__", None)
    if definition is None:
        return value
    out: dict[str, Any] = {}
    for field in definition.fields:
        item = getattr(value, field.python_name)
        if item is None or item is strawberry.UNSET:
            continue
        out[field.graphql_name or field.python_name] = input_spec(item)
    return out
