"""The Merkle tree of the access trail, as RFC 9162 section 2.1 defines it: pure functions, no I/O.

Leaves are hashed `SHA-256(0x00 || leaf)`, interior nodes `SHA-256(0x01 || left || right)`, and
the tree over n leaves splits at the largest power of two smaller than n. Leaf indices count from
0, as in the RFC.

A stored log never recomputes a tree from its leaves. Every range a root or a proof needs is
aligned (its start is a multiple of the largest power of two not above its length), so it is
the fold of a few *complete* subtrees: `(level, index)` covering leaves
`[index * 2**level, (index + 1) * 2**level)`. The store keeps the hash of each complete subtree
as the log grows; a proof over a million leaves reads about 2 log2(n) of them (`range_nodes`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence

LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
HASH_BYTES = 32
# RFC 9162: the hash of an empty tree.
EMPTY_ROOT = hashlib.sha256(b"").digest()

# (level, index): the complete subtree of 2**level leaves starting at leaf index * 2**level.
Node = tuple[int, int]
# [start, end) of leaf indices.
Span = tuple[int, int]


def leaf_hash(leaf: bytes) -> bytes:
    return hashlib.sha256(LEAF_PREFIX + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


def split(n: int) -> int:
    """k, the largest power of two smaller than n (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def range_nodes(start: int, end: int) -> list[Node]:
    """The complete subtrees whose right fold is MTH(D[start:end]), left to right."""
    nodes: list[Node] = []
    while True:
        size = end - start
        if size <= 0:
            raise ValueError(f"empty range [{start}, {end})")
        if size & (size - 1) == 0:
            level = size.bit_length() - 1
            if start % size:
                raise ValueError(f"range [{start}, {end}) is not aligned")
            nodes.append((level, start >> level))
            return nodes
        k = split(size)
        if start % k:
            raise ValueError(f"range [{start}, {end}) is not aligned")
        nodes.append((k.bit_length() - 1, start // k))
        start += k


def fold(hashes: Sequence[bytes]) -> bytes:
    """The right fold of `range_nodes`'s hashes: H(h0, H(h1, ... H(hn-2, hn-1)))."""
    result = hashes[-1]
    for left in reversed(hashes[:-1]):
        result = node_hash(left, result)
    return result


def range_hash(span: Span, nodes: Mapping[Node, bytes]) -> bytes:
    return fold([nodes[node] for node in range_nodes(*span)])


def inclusion_spans(m: int, n: int) -> list[Span]:
    """The ranges whose MTHs make PATH(m, D[0:n]) (RFC 9162 2.1.3.1), in proof order."""
    if not 0 <= m < n:
        raise ValueError(f"leaf {m} is not in a tree of {n}")
    spans: list[Span] = []
    start, end = 0, n
    # PATH recurses first and appends its sibling after: walk down, then reverse.
    while end - start > 1:
        k = split(end - start)
        if m < start + k:
            spans.append((start + k, end))
            end = start + k
        else:
            spans.append((start, start + k))
            start += k
    spans.reverse()
    return spans


def consistency_spans(m: int, n: int) -> list[Span]:
    """The ranges whose MTHs make PROOF(m, D[0:n]) (RFC 9162 2.1.4.1), in proof order."""
    if not 0 < m <= n:
        raise ValueError(f"no consistency proof from {m} to {n}")
    spans: list[Span] = []
    start, end, whole = 0, n, True
    mm = m
    while mm != end - start:
        k = split(end - start)
        if mm <= k:
            spans.append((start + k, end))
            end = start + k
        else:
            spans.append((start, start + k))
            start += k
            mm -= k
            whole = False
    if not whole:
        spans.append((start, end))
    spans.reverse()
    return spans


def proof_nodes(spans: Iterable[Span]) -> set[Node]:
    """Every stored subtree the hashes of these ranges need."""
    return {node for span in spans for node in range_nodes(*span)}


def verify_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes) -> bool:
    """RFC 9162 2.1.3.2: is the leaf hash `leaf` at `index` in the tree of `size` with `root`?"""
    if index >= size or index < 0:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(first: int, second: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]) -> bool:
    """RFC 9162 2.1.4.2: is the tree of `second` leaves an extension of the one of `first`?"""
    if not 0 < first <= second:
        return False
    if first == second:
        return not proof and first_root == second_root
    if not proof:
        return False
    path = list(proof)
    if first & (first - 1) == 0:
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == first_root and sr == second_root


def subtree_root(hashes: Sequence[bytes]) -> bytes:
    """MTH of a complete subtree (a power of two of leaf hashes), level by level."""
    level = list(hashes)
    if not level or len(level) & (len(level) - 1):
        raise ValueError(f"{len(level)} leaves are not a complete subtree")
    sha256, prefix = hashlib.sha256, NODE_PREFIX
    while len(level) > 1:
        level = [sha256(prefix + level[i] + level[i + 1]).digest() for i in range(0, len(level), 2)]
    return level[0]


class Frontier:
    """The log's right edge while it grows: the complete subtrees of [0, size), largest first.

    `append` returns every complete subtree the new leaf closes (the leaf itself at level 0), to
    be stored; `root` is MTH of the whole log. Memory is O(log n)."""

    __slots__ = ("nodes", "size")

    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()) -> None:
        self.size = size
        # (level, hash) of range_nodes(0, size), left to right.
        levels = [level for level, _ in range_nodes(0, size)] if size else []
        if len(levels) != len(hashes):
            raise ValueError("the frontier's hashes do not match its size")
        self.nodes: list[tuple[int, bytes]] = list(zip(levels, hashes, strict=True))

    def copy(self) -> Frontier:
        twin = Frontier()
        twin.size, twin.nodes = self.size, list(self.nodes)
        return twin

    def append(self, leaf: bytes) -> list[tuple[Node, bytes]]:
        """Add one leaf hash; the complete subtrees it closes, smallest first."""
        index = self.size
        closed: list[tuple[Node, bytes]] = [((0, index), leaf)]
        level, current = 0, leaf
        nodes = self.nodes
        while nodes and nodes[-1][0] == level:
            _, left = nodes.pop()
            current = node_hash(left, current)
            level += 1
            closed.append(((level, index >> level), current))
        nodes.append((level, current))
        self.size = index + 1
        return closed

    def append_subtree(self, level: int, digest: bytes) -> None:
        """Add a complete subtree of 2**level leaves at once (the size must be a multiple of it)."""
        if self.size % (1 << level):
            raise ValueError(f"a subtree of level {level} cannot follow {self.size} leaves")
        added, nodes, current = 1 << level, self.nodes, digest
        while nodes and nodes[-1][0] == level:
            _, left = nodes.pop()
            current = node_hash(left, current)
            level += 1
        nodes.append((level, current))
        self.size += added

    def root(self) -> bytes:
        if not self.nodes:
            return EMPTY_ROOT
        return fold([h for _, h in self.nodes])
