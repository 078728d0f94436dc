"""The GraphQL surface: built from the catalog at start-up, plus its fixed parts."""

from schema.builder import BuiltSchema, build_schema

__all__ = ["BuiltSchema", "build_schema"]
