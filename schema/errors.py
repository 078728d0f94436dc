"""The one place hub errors become GraphQL errors: a code from the documented set, a message
for the caller, and never a stack trace, SQL text, a file path or a key."""

from typing import Any

from graphql import GraphQLError, GraphQLSyntaxError

from hub.errors import HubError

INTERNAL_MESSAGE = "the hub could not complete this request; it has been logged"


def code_of(error: GraphQLError) -> str:
    original = error.original_error
    if isinstance(original, HubError):
        return original.code
    if error.extensions and isinstance(error.extensions.get("code"), str):
        return str(error.extensions["code"])
    if isinstance(original, GraphQLError) and not error.path:
        # graphql-core's own refusal of the request: a variable value its type cannot hold.
        # (A value the hub sends that its type cannot hold is located at its field: INTERNAL.)
        return "BAD_USER_INPUT"
    if original is None:
        if isinstance(error, GraphQLSyntaxError) and "tokens" in error.message and "more than" in error.message:
            return "LIMIT_EXCEEDED"
        return "BAD_USER_INPUT"  # parse and validation errors: the document is wrong
    return "INTERNAL"


def limit_exceeded(limit: str, value: int, maximum: int, message: str) -> GraphQLError:
    """A document past one of the limits checked before it runs: which limit, the value the
    document has, and the maximum allowed."""
    return GraphQLError(message, extensions={"code": "LIMIT_EXCEEDED", "limit": limit, "value": value, "max": maximum})


def format_error(error: GraphQLError) -> dict[str, Any]:
    code = code_of(error)
    original = error.original_error
    extensions: dict[str, Any]
    if code == "INTERNAL":
        # Logged with its traceback by HubSchema.process_errors; the caller gets no detail.
        message, extensions = INTERNAL_MESSAGE, {"code": code}
    elif isinstance(original, HubError):
        message, extensions = original.message, {**original.extensions, "code": code}
    else:
        message, extensions = error.message, {**(error.extensions or {}), "code": code}
    out: dict[str, Any] = {"message": message}
    if error.locations:
        out["locations"] = [{"line": loc.line, "column": loc.column} for loc in error.locations]
    if error.path:
        out["path"] = list(error.path)
    out["extensions"] = extensions
    return out
