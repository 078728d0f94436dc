"""The schema extension that stands in for strawberry's parse and validate steps: it hands
over the request's compiled document (schema/compiled.py) instead."""

from __future__ import annotations

from collections.abc import Iterator

from strawberry.extensions import SchemaExtension

from schema.compiled import Compiled, DocumentCompiler
from schema.context import RequestContext


class DocumentParsing(SchemaExtension):
    """The request's document arrives compiled in `context.document` (set by
    schema/execution/run.py, the one writer); the access planner reads the fields the document
    reaches from it."""

    def __init__(self, compiler: DocumentCompiler) -> None:
        self.compiler = compiler
        self.compiled: Compiled | None = None

    def on_parse(self) -> Iterator[None]:
        execution = self.execution_context
        context = execution.context
        # The token limit also binds strawberry's own parse, below.
        execution.parse_options["max_tokens"] = self.compiler.max_tokens
        # schema/execution/run.py compiles every request it runs before execution; a schema
        # executed bare (tests, tools) compiles its text here, through the same cache.
        compiled = context.document if isinstance(context, RequestContext) else None
        if compiled is None and execution.query is not None:
            compiled = self.compiler.compile(execution.query)
        # A text that does not parse is left to strawberry, which parses it again (under the
        # same token limit) and reports the syntax error its usual way: a cost only wrong
        # documents pay.
        if compiled is not None and compiled.document is not None:
            execution.graphql_document = compiled.document
            self.compiled = compiled
        yield

    def on_validate(self) -> Iterator[None]:
        if self.compiled is not None:
            # A list, even an empty one, tells strawberry that validation has run.
            self.execution_context.pre_execution_errors = list(self.compiled.errors)
        yield
