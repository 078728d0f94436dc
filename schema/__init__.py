"""The GraphQL surface: built from the catalog at start-up, plus its fixed parts.

The package's face, all hub/app.py imports: the built schema, its compiled documents (free
text and trusted), the identifier values a request supplies (for the lookup quota), `prepare`
and `refusal` (the operation a request names, and why it cannot run), and `run`, the one entry
point that executes an operation into its answer."""

from schema.builder import BuiltSchema, build_schema
from schema.compiled import Compiled, TrustedDocuments
from schema.errors import INTERNAL_MESSAGE
from schema.execution.operation import Answer, Operation, prepare, refusal
from schema.execution.run import Caller, run
from schema.lookups import Lookups

__all__ = [
    "INTERNAL_MESSAGE",
    "Answer",
    "BuiltSchema",
    "Caller",
    "Compiled",
    "Lookups",
    "Operation",
    "TrustedDocuments",
    "build_schema",
    "prepare",
    "refusal",
    "run",
]
