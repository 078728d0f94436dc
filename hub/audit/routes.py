"""The trail's public endpoints: tree heads and proofs, without a token (they hold hashes only).

    GET /audit/tree-head                          the latest signed tree head
    GET /audit/public-key                         the signing key (PEM)
    GET /audit/proof/inclusion?position=P[&size=N] the event at P, its leaf and audit path
    GET /audit/proof/consistency?first=M&second=N  the consistency proof between two sizes

Without `size`, an inclusion proof is against the latest signed head. Hashes are base64.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from hub.audit.heads import latest_head
from hub.audit.tree import NodeCache, ProofError, consistency, inclusion
from hub.crypto.signing import TreeSigner


def _json(content: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(content), status, media_type="application/json")


def _bad(message: str, status: int = 400) -> Response:
    return _json({"errors": [{"message": message, "extensions": {"code": "BAD_USER_INPUT"}}]}, status)


def _b64(items: list[bytes]) -> list[str]:
    return [base64.b64encode(item).decode() for item in items]


def _int(request: Request, name: str) -> int | None:
    text = request.query_params.get(name)
    if text is None:
        return None
    if not text.isdigit() or len(text) > 18:
        raise ValueError(f"{name} must be a whole number")
    return int(text)


def audit_routes(sessions: async_sessionmaker[AsyncSession], signer: Callable[[], TreeSigner]) -> list[Route]:
    # Subtree hashes read by earlier proofs of this hub database (hub/audit/tree.py).
    cache = NodeCache()

    async def tree_head(_: Request) -> Response:
        async with sessions() as session:
            head = await latest_head(session)
        if head is None:
            return _bad("no tree head is signed yet", 404)
        return _json(head.exported())

    async def public_key(_: Request) -> Response:
        return Response(signer().public_pem(), media_type="application/x-pem-file")

    async def inclusion_proof(request: Request) -> Response:
        try:
            position, size = _int(request, "position"), _int(request, "size")
        except ValueError as exc:
            return _bad(str(exc))
        if position is None:
            return _bad("give the event's position: ?position=P")
        async with sessions() as session:
            if size is None:
                head = await latest_head(session)
                if head is None or head.size <= position:
                    return _bad("the event is not in a signed tree head yet; ask again after the next one", 404)
                size = head.size
            try:
                proof = await inclusion(session, position, size, cache)
            except ProofError as exc:
                return _bad(str(exc), 404)
        return _json(
            {
                "position": position,
                "treeSize": size,
                "leaf": base64.b64encode(proof.leaf).decode(),
                "event": orjson.loads(proof.leaf),
                "auditPath": _b64(proof.path),
            }
        )

    async def consistency_proof(request: Request) -> Response:
        try:
            first, second = _int(request, "first"), _int(request, "second")
        except ValueError as exc:
            return _bad(str(exc))
        if first is None or second is None:
            return _bad("give both sizes: ?first=M&second=N")
        async with sessions() as session:
            try:
                proof = await consistency(session, first, second, cache)
            except ProofError as exc:
                return _bad(str(exc), 404)
        return _json({"first": first, "second": second, "consistency": _b64(proof)})

    return [
        Route("/audit/tree-head", tree_head, methods=["GET"]),
        Route("/audit/public-key", public_key, methods=["GET"]),
        Route("/audit/proof/inclusion", inclusion_proof, methods=["GET"]),
        Route("/audit/proof/consistency", consistency_proof, methods=["GET"]),
    ]
