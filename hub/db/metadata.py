"""Every hub table in one metadata, for alembic: the model modules register their tables on
import. Kept apart from `base`, which the model modules import, so no module imports back the
one importing it."""

from __future__ import annotations

from sqlalchemy import MetaData

import hub.audit.models
import hub.auth.models
import hub.crypto.models
import hub.lineage.models
import hub.policy.models
import hub.quota.models
import hub.trusted.models
from hub.db.base import Base

# The model modules are imported for their side effect of registering tables.
MODELS = (
    hub.audit.models,
    hub.auth.models,
    hub.crypto.models,
    hub.lineage.models,
    hub.policy.models,
    hub.quota.models,
    hub.trusted.models,
)


def all_metadata() -> MetaData:
    """The metadata with every hub table registered."""
    return Base.metadata
