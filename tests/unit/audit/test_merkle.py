"""The trail's Merkle tree against RFC 9162 section 2.1, written out again here as naive
recursion over whole leaf lists: roots, PATH and PROOF for every leaf and size pair of generated
trees, the RFC's verification algorithms, and tampered proofs."""

from __future__ import annotations

import hashlib

import pytest

from hub.audit.merkle import (
    Frontier,
    consistency_spans,
    inclusion_spans,
    leaf_hash,
    node_hash,
    proof_nodes,
    range_hash,
    verify_consistency,
    verify_inclusion,
)


def _h(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def mth(leaves: list[bytes]) -> bytes:
    """RFC 9162 2.1.1, literally."""
    n = len(leaves)
    if n == 0:
        return _h(b"")
    if n == 1:
        return _h(b"\x00" + leaves[0])
    k = 1
    while k * 2 < n:
        k *= 2
    return _h(b"\x01" + mth(leaves[:k]) + mth(leaves[k:]))


def path(m: int, leaves: list[bytes]) -> list[bytes]:
    """RFC 9162 2.1.3.1, literally."""
    n = len(leaves)
    if n == 1:
        return []
    k = 1
    while k * 2 < n:
        k *= 2
    if m < k:
        return [*path(m, leaves[:k]), mth(leaves[k:])]
    return [*path(m - k, leaves[k:]), mth(leaves[:k])]


def subproof(m: int, leaves: list[bytes], whole: bool) -> list[bytes]:
    """RFC 9162 2.1.4.1, literally."""
    n = len(leaves)
    if m == n:
        return [] if whole else [mth(leaves)]
    k = 1
    while k * 2 < n:
        k *= 2
    if m <= k:
        return [*subproof(m, leaves[:k], whole), mth(leaves[k:])]
    return [*subproof(m - k, leaves[k:], False), mth(leaves[:k])]


def data(n: int) -> list[bytes]:
    return [f"event {i}".encode() * (i % 3 + 1) for i in range(n)]


class StoredTree:
    """The hub's way: only the complete subtrees a Frontier closes, as a store keeps them."""

    def __init__(self, leaves: list[bytes]) -> None:
        self.nodes: dict[tuple[int, int], bytes] = {}
        self.frontier = Frontier()
        self.roots = [_h(b"")]
        for leaf in leaves:
            self.nodes.update(self.frontier.append(leaf_hash(leaf)))
            self.roots.append(self.frontier.root())

    def inclusion(self, m: int, n: int) -> list[bytes]:
        return [range_hash(span, self.nodes) for span in inclusion_spans(m, n)]

    def consistency(self, m: int, n: int) -> list[bytes]:
        return [range_hash(span, self.nodes) for span in consistency_spans(m, n)]


LEAVES = data(300)
TREE = StoredTree(LEAVES)


@pytest.mark.parametrize("n", range(0, 301))
def test_root_of_every_size_is_rfc_mth(n: int) -> None:
    assert TREE.roots[n] == mth(LEAVES[:n])


@pytest.mark.parametrize("n", [*range(1, 70), 127, 128, 129, 255, 256, 257, 300])
def test_inclusion_proof_of_every_leaf_is_rfc_path_and_verifies(n: int) -> None:
    root = mth(LEAVES[:n])
    for m in range(n):
        proof = TREE.inclusion(m, n)
        assert proof == path(m, LEAVES[:n])
        assert verify_inclusion(m, n, leaf_hash(LEAVES[m]), proof, root)


@pytest.mark.parametrize("n", range(1, 90))
def test_consistency_proof_of_every_pair_is_rfc_proof_and_verifies(n: int) -> None:
    second = mth(LEAVES[:n])
    for m in range(1, n + 1):
        proof = TREE.consistency(m, n)
        assert proof == subproof(m, LEAVES[:n], True)
        assert verify_consistency(m, n, mth(LEAVES[:m]), second, proof)


@pytest.mark.parametrize(("m", "n"), [(1, 300), (7, 300), (64, 300), (129, 300), (255, 256), (299, 300), (150, 257)])
def test_consistency_proof_of_larger_trees_is_rfc_proof(m: int, n: int) -> None:
    proof = TREE.consistency(m, n)
    assert proof == subproof(m, LEAVES[:n], True)
    assert verify_consistency(m, n, mth(LEAVES[:m]), mth(LEAVES[:n]), proof)


def test_proof_for_a_changed_event_fails() -> None:
    n = 300
    root = mth(LEAVES[:n])
    for m in (0, 1, 150, 255, 256, 299):
        proof = TREE.inclusion(m, n)
        assert not verify_inclusion(m, n, leaf_hash(LEAVES[m] + b"!"), proof, root)
        # Claimed at another position, the same event fails too.
        other = (m + 1) % n
        assert not verify_inclusion(other, n, leaf_hash(LEAVES[m]), proof, root)


def test_inclusion_proof_with_any_hash_flipped_or_dropped_fails() -> None:
    n, m = 300, 123
    root = mth(LEAVES[:n])
    proof = TREE.inclusion(m, n)
    for i in range(len(proof)):
        flipped = list(proof)
        flipped[i] = bytes([proof[i][0] ^ 1]) + proof[i][1:]
        assert not verify_inclusion(m, n, leaf_hash(LEAVES[m]), flipped, root)
        assert not verify_inclusion(m, n, leaf_hash(LEAVES[m]), proof[:i] + proof[i + 1 :], root)
    assert not verify_inclusion(m, n, leaf_hash(LEAVES[m]), [*proof, proof[0]], root)


def test_consistency_fails_for_a_rewritten_history_or_a_tampered_proof() -> None:
    rewritten = list(LEAVES[:200])
    rewritten[17] = b"rewritten"
    other = StoredTree(rewritten + LEAVES[200:260])
    m, n = 100, 260
    # The new log's proof against the old log's root: the old root is not a prefix of it.
    assert not verify_consistency(m, n, mth(LEAVES[:m]), other.roots[n], other.consistency(m, n))
    proof = TREE.consistency(m, n)
    for i in range(len(proof)):
        flipped = list(proof)
        flipped[i] = bytes([proof[i][0] ^ 1]) + proof[i][1:]
        assert not verify_consistency(m, n, TREE.roots[m], TREE.roots[n], flipped)
    assert not verify_consistency(m, n, TREE.roots[m], TREE.roots[n], proof[:-1])
    # A truncated log: the older, larger tree is not consistent with a smaller one.
    assert not verify_consistency(n, m, TREE.roots[n], TREE.roots[m], proof)


def test_proofs_of_a_million_leaf_tree_read_logarithmically_many_stored_subtrees() -> None:
    n = 1_000_000
    inclusion = proof_nodes(inclusion_spans(654_321, n))
    consistency = proof_nodes(consistency_spans(333_333, n))
    assert len(inclusion) <= 2 * n.bit_length()
    assert len(consistency) <= 2 * n.bit_length()


def test_frontier_resumed_from_stored_hashes_continues_the_same_tree() -> None:
    first = Frontier()
    for leaf in LEAVES[:77]:
        first.append(leaf_hash(leaf))
    resumed = Frontier(77, [h for _, h in first.nodes])
    for leaf in LEAVES[77:]:
        resumed.append(leaf_hash(leaf))
    assert resumed.root() == mth(LEAVES)


def test_node_and_leaf_hashes_are_domain_separated() -> None:
    left, right = leaf_hash(b"a"), leaf_hash(b"b")
    assert node_hash(left, right) != leaf_hash(left + right)
