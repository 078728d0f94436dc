"""The hub's own database: table metadata and engines."""
