"""Merkle tree hashing in the RFC 6962 layout (leaf = H(0x00||data), node = H(0x01||left||right),
the left subtree of n leaves holds the largest power of two below n), with inclusion and
consistency proofs and their verification (the algorithms of RFC 9162 §2.1.3.2 / §2.1.4.2).
The hash is named ("sm3" for the 国密 suite)."""
from __future__ import annotations

from .primitives import digest


def leaf_hash(alg: str, data: bytes) -> bytes:
    return digest(alg, b"\x00" + data)


def node_hash(alg: str, left: bytes, right: bytes) -> bytes:
    return digest(alg, b"\x01" + left + right)


def empty_root(alg: str) -> bytes:
    return digest(alg, b"")


class Frontier:
    """The right edge of a growing tree: one hash per perfect subtree in the binary
    decomposition of its size. Appending and computing the root cost O(log n)."""

    def __init__(self, alg: str, size: int = 0, hashes: list[bytes] | None = None):
        self.alg, self.size, self.hashes = alg, size, list(hashes or [])
        if len(self.hashes) != bin(size).count("1"):
            raise ValueError("frontier does not match its size")

    def append(self, leaf: bytes) -> None:
        """Add a leaf hash."""
        self.hashes.append(leaf)
        self.size += 1
        carry = self.size
        while carry % 2 == 0:  # each trailing zero bit merges two equal subtrees
            right = self.hashes.pop()
            self.hashes.append(node_hash(self.alg, self.hashes.pop(), right))
            carry //= 2

    def root(self) -> bytes:
        if not self.hashes:
            return empty_root(self.alg)
        root = self.hashes[-1]
        for left in reversed(self.hashes[:-1]):
            root = node_hash(self.alg, left, root)
        return root


class Tree:
    """All levels of a tree over given leaf hashes, for proofs. A lone last node of a level moves
    up unchanged, which gives exactly the RFC 6962 shape."""

    def __init__(self, alg: str, leaves: list[bytes]):
        self.alg = alg
        self.levels = [list(leaves)]
        while len(self.levels[-1]) > 1:
            below = self.levels[-1]
            level = [node_hash(alg, below[i], below[i + 1]) for i in range(0, len(below) - 1, 2)]
            if len(below) % 2:
                level.append(below[-1])
            self.levels.append(level)

    @property
    def size(self) -> int:
        return len(self.levels[0])

    def root(self) -> bytes:
        return self.levels[-1][0] if self.size else empty_root(self.alg)

    def _subtree(self, lo: int, hi: int) -> bytes:
        """Root of leaves [lo, hi), a node of this tree (aligned, or ending at the right edge)."""
        height = (hi - lo - 1).bit_length()
        return self.levels[height][lo >> height]

    def inclusion_proof(self, index: int) -> list[bytes]:
        if not 0 <= index < self.size:
            raise IndexError(f"leaf {index} is outside a tree of {self.size}")
        proof = []
        for level in self.levels[:-1]:
            sibling = index ^ 1
            if sibling < len(level):
                proof.append(level[sibling])
            index >>= 1
        return proof

    def consistency_proof(self, old_size: int) -> list[bytes]:
        """RFC 6962 PROOF(m, D[n]) for m = old_size and n = this tree's size."""
        if not 0 < old_size <= self.size:
            raise IndexError(f"old size {old_size} is outside 1..{self.size}")
        return self._subproof(old_size, 0, self.size, True)

    def _subproof(self, m: int, lo: int, hi: int, whole: bool) -> list[bytes]:
        n = hi - lo
        if m == n:
            return [] if whole else [self._subtree(lo, hi)]
        k = 1 << ((n - 1).bit_length() - 1)
        if m <= k:
            return self._subproof(m, lo, lo + k, whole) + [self._subtree(lo + k, hi)]
        return self._subproof(m - k, lo + k, hi, False) + [self._subtree(lo, lo + k)]


def verify_inclusion(alg: str, leaf: bytes, index: int, size: int, proof: list[bytes], root: bytes) -> bool:
    if not 0 <= index < size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(alg, p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(alg, r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root


def verify_consistency(alg: str, old_size: int, new_size: int, old_root: bytes, new_root: bytes,
                       proof: list[bytes]) -> bool:
    if not 0 < old_size <= new_size:
        return False
    if old_size == new_size:
        return not proof and old_root == new_root
    if old_size & (old_size - 1) == 0:  # a power of two: the old root is itself a node
        proof = [old_root] + list(proof)
    if not proof:
        return False
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = proof[0]
    for c in proof[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(alg, c, fr), node_hash(alg, c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(alg, sr, c)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and fr == old_root and sr == new_root
