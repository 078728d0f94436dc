"""The access trail: one event per request of an authenticated caller, in a Merkle-tree log in
the manner of Certificate Transparency (RFC 9162), with signed tree heads and proofs.

`merkle` (the tree, its proofs and their verification, pure), `models` (tables), `event` (an
event and its canonical leaf), `store` (the writer: one order, group commit), `tree` (roots and
proofs read from stored subtrees), `heads` (signed tree heads), `trail` (what the app calls per
request), `routes` (the public endpoints), `verify` (the whole log, recomputed). docs/audit.md
describes the format for third-party verifiers.
"""
