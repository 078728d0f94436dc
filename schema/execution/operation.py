"""The operation a request asks to run: its document compiled once, and why it cannot run here.

hub/app.py reads the request (body, token, document id) and hands over the text or the trusted
document; what an operation is, and which ones a request may run, is GraphQL's business and
lives here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from graphql import OperationDefinitionNode
from graphql import OperationType as Kind

from hub.access.record import AccessRecord
from schema.compiled import Compiled

if TYPE_CHECKING:
    from schema.builder import BuiltSchema


@dataclass(frozen=True)
class Operation:
    """What a request asks to run: the document (compiled), its variables, the operation it
    names, and whether it may only read (a GET)."""

    document: Compiled
    variables: dict[str, Any] | None
    name: str | None
    read_only: bool

    @property
    def text(self) -> str:
        return self.document.text


@dataclass(frozen=True)
class Answer:
    """The HTTP status, headers and GraphQL body of a run (or of a refusal to run), whether
    the request held enough values that the app should give their memory back once it is sent,
    and the access record of what the answer releases (for the metrics)."""

    status: int
    body: dict[str, Any]
    large: bool = False
    headers: dict[str, str] = field(default_factory=dict)
    record: AccessRecord | None = None


def prepare(
    built: BuiltSchema,
    text: str,
    document: Compiled | None,
    variables: dict[str, Any] | None,
    name: str | None,
    read_only: bool,
) -> Operation:
    """The operation of a request: a trusted document arrives compiled, free text is compiled
    here through the compiler's cache (so a text seen before costs one dictionary lookup)."""
    compiled = document if document is not None else built.compiler.compile(text)
    return Operation(compiled, variables, name, read_only)


def refusal(operation: Operation) -> Answer | None:
    """Why the operation the request names cannot run here, as an answer; None if it can (or if
    the text does not parse, which execution reports its own way). Checked before the lookup
    quota counts anything, so a request that cannot run costs the caller nothing."""
    document = operation.document.document
    if document is None:
        return None
    name = operation.name
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if name is None:
        if len(operations) > 1:
            return _refused(400, "the document has several operations: name one in `operationName`")
        chosen = operations[0] if operations else None
    else:
        chosen = next((o for o in operations if o.name is not None and o.name.value == name), None)
    if chosen is None:
        if name is None:
            return _refused(400, "the document has no operation to run")
        return _refused(400, f"the document has no operation named {name[:80]!r}")
    if operation.read_only and chosen.operation is not Kind.QUERY:
        # A GET must not change anything: a link or an image can make a browser send one.
        return _refused(405, "GET runs queries only: send this operation as POST", {"Allow": "POST"})
    return None


def _refused(status: int, message: str, headers: dict[str, str] | None = None) -> Answer:
    body = {"errors": [{"message": message, "extensions": {"code": "BAD_USER_INPUT"}}]}
    return Answer(status, body, headers=headers or {})
