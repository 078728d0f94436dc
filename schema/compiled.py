"""Documents compiled once: parsing, validation and the fields a document reaches, cached per
document text; trusted documents looked up by id and kept compiled.

A free-text request pays for parsing and validation the first time its text is seen; after
that its compiled form comes from a bounded cache. A trusted document is registered by id
(hub/trusted) and compiled when first asked for; requests that name it skip parsing and
validation entirely, and the access planner's walk of the document is done once too.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from graphql import (
    ASTValidationRule,
    DocumentNode,
    GraphQLError,
    GraphQLSchema,
    GraphQLSyntaxError,
    parse,
    validate,
)
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hub.access.plan import Selection
from hub.trusted.service import find_document
from schema.demand import Demand
from schema.errors import limit_exceeded
from schema.selection import reachable_fields
from schema.validation import document_rules

# Measures a parsed document's operations before validation; with an error when one of them
# is past what any caller may run (then validation is skipped: the document cannot run).
Screen = Callable[[DocumentNode], tuple[tuple[Demand, ...], GraphQLError | None]]


@dataclass(eq=False)
class Compiled:
    """One document text, parsed and validated against the schema. Compared and hashed by
    identity: plans compiled from it are kept per object (schema/execution/direct.py)."""

    text: str
    # None when the text does not parse; `errors` then holds the syntax error.
    document: DocumentNode | None
    errors: tuple[GraphQLError, ...]
    # What each operation demands (schema/demand.py), measured once, before validation.
    demands: tuple[Demand, ...] = ()
    # Type name -> the field names the document can reach; computed on first use.
    _reached: dict[str, set[str]] | None = field(default=None, repr=False)
    # The same as the access planner takes it (entity ids); computed on first use.
    _selection: Selection | None = field(default=None, repr=False)

    @property
    def runnable(self) -> bool:
        return self.document is not None and not self.errors

    def demand(self, name: str | None) -> Demand | None:
        """The demand of the operation `name` (None: the only one), if the document has it."""
        if name is None:
            return self.demands[0] if len(self.demands) == 1 else None
        return next((d for d in self.demands if d.operation == name), None)

    def reached(self, schema: GraphQLSchema) -> dict[str, set[str]]:
        if self._reached is None:
            assert self.document is not None
            self._reached = reachable_fields(schema, self.document)
        return self._reached

    @property
    def planned(self) -> Selection | None:
        """The selection the access plan was made from; None before planning."""
        return self._selection

    def selection(self, schema: GraphQLSchema, of: Callable[[dict[str, set[str]]], Selection]) -> Selection:
        """What the document reaches as the planner takes it: `of` the reached fields, once."""
        if self._selection is None:
            self._selection = of(self.reached(schema))
        return self._selection


class DocumentCompiler:
    """Parses and validates document texts for one schema, keeping the last `cache_size`.
    `rules` are the hub's own (the limits); with `introspection` off, `__schema` and `__type`
    are refused; `hide_suggestions` leaves "Did you mean ..." out of validation errors."""

    def __init__(
        self,
        rules: Sequence[type[ASTValidationRule]],
        max_tokens: int,
        cache_size: int = 1024,
        *,
        introspection: bool = False,
        hide_suggestions: bool = True,
    ) -> None:
        self.rules = document_rules(list(rules), introspection)
        self.hide_suggestions = hide_suggestions
        self.max_tokens = max_tokens
        self.cache_size = cache_size
        self.schema: GraphQLSchema | None = None
        self.screen: Screen | None = None
        self._cache: OrderedDict[str, Compiled] = OrderedDict()
        # For /metrics: plain integers, read when scraped.
        self.hits = self.misses = 0

    def bind(self, schema: GraphQLSchema, screen: Screen | None = None) -> None:
        # The GraphQL schema exists only once strawberry has built it from the extensions list.
        self.schema = schema
        self.screen = screen

    def compile(self, text: str) -> Compiled:
        """The compiled form of `text`, from the cache when it was seen before."""
        found = self._cache.get(text)
        if found is not None:
            self.hits += 1
            self._cache.move_to_end(text)
            return found
        self.misses += 1
        compiled = self.compile_uncached(text)
        self._cache[text] = compiled
        if len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return compiled

    def compile_uncached(self, text: str) -> Compiled:
        assert self.schema is not None, "bind() the compiler to its schema first"
        try:
            document = parse(text, max_tokens=self.max_tokens)
        except GraphQLError as error:
            return Compiled(text, None, (self._past_tokens(error) or error,))
        demands: tuple[Demand, ...] = ()
        if self.screen is not None:
            # Validation of a 20,000-token document can take seconds; a document past what
            # any caller may run is refused before it.
            demands, refused = self.screen(document)
            if refused is not None:
                return Compiled(text, document, (refused,), demands)
        errors = validate(self.schema, document, self.rules, hide_suggestions=self.hide_suggestions)
        return Compiled(text, document, tuple(errors), demands)

    def _past_tokens(self, error: GraphQLError) -> GraphQLError | None:
        # The parser stops at the first token past the limit and never counts the rest: that
        # is the point of the limit, so the value reported is the limit plus one.
        if not (isinstance(error, GraphQLSyntaxError) and "more than" in error.message and "tokens" in error.message):
            return None
        most = self.max_tokens
        message = f"the document has more than {most} tokens; at most {most} are allowed"
        return limit_exceeded("tokens", most + 1, most, message)


class TrustedDocuments:
    """Trusted documents by id, compiled on first use and kept; an entry is checked against
    the hub database again after `recheck_s`, so a removal reaches every instance within it."""

    def __init__(
        self,
        compiler: DocumentCompiler,
        sessions: async_sessionmaker[AsyncSession],
        recheck_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.compiler = compiler
        self.sessions = sessions
        self.recheck_s = recheck_s
        self.clock = clock
        self._known: dict[str, tuple[Compiled, float]] = {}
        self._lock = asyncio.Lock()
        # Raised by `forget`: a lookup begun before it does not keep what it found.
        self._generation = 0
        # For /metrics: found checked within `recheck_s`, or looked up in the hub database.
        self.hits = self.misses = 0

    def forget(self) -> None:
        """Check every document again on its next use: the hub database announced a change of
        documents (hub/instances), such as a removal made through another instance."""
        self._generation += 1
        self._known.clear()

    def known(self, id_: str) -> Compiled | None:
        """The compiled document under `id_` if it was checked within `recheck_s`, else None
        (then `get` asks the hub database): no await on the path every request takes."""
        found = self._known.get(id_)
        if found is not None and self.clock() - found[1] < self.recheck_s:
            self.hits += 1
            return found[0]
        return None

    async def get(self, id_: str) -> Compiled | None:
        """The compiled document registered under `id_`, or None if there is none (any more)."""
        found = self._known.get(id_)
        if found is not None and self.clock() - found[1] < self.recheck_s:
            return found[0]
        # One lookup at a time: a burst of requests for a new id compiles it once.
        async with self._lock:
            found = self._known.get(id_)
            if found is not None and self.clock() - found[1] < self.recheck_s:
                return found[0]
            self.misses += 1
            generation = self._generation
            async with self.sessions() as session:
                text = await find_document(session, id_)
            if text is None:
                self._known.pop(id_, None)
                return None
            compiled = found[0] if found is not None else self.compiler.compile_uncached(text)
            if generation == self._generation:
                self._known[id_] = (compiled, self.clock())
            return compiled
