"""A connector's failure as the caller sees it, and as the operator's log records it.

The caller learns only that the hub's query was refused or that a department is unavailable:
never the SQL, the driver's message or the connection. The log names the department, the
entity read and the driver's reason.
"""

from __future__ import annotations

import logging

from connectors.base import ConnectorError, QueryError, UnavailableError
from hub.catalog import EntityInfo
from hub.errors import DepartmentUnavailable, Internal
from hub.health.guard import CircuitOpenError

# The reader's logger, kept under its name so operators' filters still match.
log = logging.getLogger("hub.access")


def failure(entity: EntityInfo, error: QueryError | ConnectorError) -> Exception:
    """What a connector's failure is to the caller."""
    if isinstance(error, QueryError):
        return Internal("the hub built a query the department database refused")
    # The operator's record of the outage: which department, which read, and the driver's
    # reason (its class and code); the caller is told only that the department is unavailable.
    # A read refused by an open circuit is one of many while it stays open: the breaker logs
    # its changes of state instead.
    reason = error.reason if isinstance(error, UnavailableError) else type(error).__name__
    level = logging.DEBUG if isinstance(error, CircuitOpenError) else logging.WARNING
    log.log(level, "department %s unavailable reading %s: %s", entity.department, entity.id, reason)
    return DepartmentUnavailable(
        f"the {entity.department} department's database is unavailable; try again later",
        {"department": entity.department},
    )
