"""SQL databases through SQLAlchemy async: the connector (`connector`), the shape of its rows
(`shape`), statements it builds (`select`, `statements`, `direct`), dialect specifics
(`dialects/`) and, apart from every request path, the write capability (`writer`)."""

from connectors.sql.connector import SqlConnector

__all__ = ["SqlConnector"]
