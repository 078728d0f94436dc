"""Trusted documents: GraphQL operations registered by their SHA-256, run by id."""

from hub.trusted.service import (
    DocumentError,
    DocumentListing,
    document_id,
    find_document,
    list_documents,
    register_document,
    remove_document,
)

__all__ = [
    "DocumentError",
    "DocumentListing",
    "document_id",
    "find_document",
    "list_documents",
    "register_document",
    "remove_document",
]
