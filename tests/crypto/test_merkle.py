"""The Merkle tree against the RFC 6962 definition (MTH, PATH, PROOF written out directly here)
for every size up to 40, and proofs that fail when anything is changed."""
from __future__ import annotations

from crypto import merkle

ALG = "sm3"
DATA = [f"entry {i}".encode() for i in range(40)]


def mth(d):
    if not d:
        return merkle.empty_root(ALG)
    if len(d) == 1:
        return merkle.leaf_hash(ALG, d[0])
    k = 1 << ((len(d) - 1).bit_length() - 1)
    return merkle.node_hash(ALG, mth(d[:k]), mth(d[k:]))


def path(m, d):
    if len(d) == 1:
        return []
    k = 1 << ((len(d) - 1).bit_length() - 1)
    return path(m, d[:k]) + [mth(d[k:])] if m < k else path(m - k, d[k:]) + [mth(d[:k])]


def subproof(m, d, whole):
    n = len(d)
    if m == n:
        return [] if whole else [mth(d)]
    k = 1 << ((n - 1).bit_length() - 1)
    return subproof(m, d[:k], whole) + [mth(d[k:])] if m <= k else subproof(m - k, d[k:], False) + [mth(d[:k])]


def test_roots_and_proofs_match_rfc6962_definitions():
    leaves = [merkle.leaf_hash(ALG, x) for x in DATA]
    frontier = merkle.Frontier(ALG)
    assert frontier.root() == mth([])
    for n in range(1, len(DATA) + 1):
        frontier.append(leaves[n - 1])
        tree = merkle.Tree(ALG, leaves[:n])
        assert frontier.root() == tree.root() == mth(DATA[:n])
        for m in range(n):
            assert tree.inclusion_proof(m) == path(m, DATA[:n])
            assert merkle.verify_inclusion(ALG, leaves[m], m, n, tree.inclusion_proof(m), tree.root())
        for m in range(1, n + 1):
            assert tree.consistency_proof(m) == subproof(m, DATA[:n], True)
            assert merkle.verify_consistency(ALG, m, n, mth(DATA[:m]), tree.root(), tree.consistency_proof(m))


def test_altered_proofs_fail():
    leaves = [merkle.leaf_hash(ALG, x) for x in DATA]
    tree = merkle.Tree(ALG, leaves[:37])
    root = tree.root()
    proof = tree.inclusion_proof(21)
    assert merkle.verify_inclusion(ALG, leaves[21], 21, 37, proof, root)
    assert not merkle.verify_inclusion(ALG, leaves[22], 21, 37, proof, root)   # other entry
    assert not merkle.verify_inclusion(ALG, leaves[21], 20, 37, proof, root)   # other position
    assert not merkle.verify_inclusion(ALG, leaves[21], 21, 100, proof, root)  # other size
    assert not merkle.verify_inclusion(ALG, leaves[21], 21, 37, proof[:-1], root)
    assert not merkle.verify_inclusion(ALG, leaves[21], 21, 37, [proof[1], proof[0]] + proof[2:], root)
    consistency = tree.consistency_proof(13)
    old = mth(DATA[:13])
    assert merkle.verify_consistency(ALG, 13, 37, old, root, consistency)
    assert not merkle.verify_consistency(ALG, 13, 37, mth(DATA[1:14]), root, consistency)
    assert not merkle.verify_consistency(ALG, 12, 37, old, root, consistency)
    assert not merkle.verify_consistency(ALG, 13, 37, old, root, consistency[:-1])
    assert not merkle.verify_consistency(ALG, 13, 37, old, mth(DATA[:36] + [b"forged"]), consistency)
