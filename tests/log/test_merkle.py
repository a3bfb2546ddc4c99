"""RFC 9162 hashing and proofs: the RFC 6962 reference vectors, then every tree size
1..64 against a naive implementation written here from the RFC's definitions."""

from __future__ import annotations

import hashlib

import pytest

from vrm_portal.log import merkle

# The Certificate Transparency reference leaves and tree heads (RFC 6962 test data).
LEAVES = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
INCLUSION = {
    (0, 8): [
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    (5, 8): [
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ],
}
CONSISTENCY = {
    (2, 8): [
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    (2, 5): [
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    ],
}


# ---- a naive implementation, straight from RFC 9162 §2.1 ------------------------------


def _h(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def naive_mth(d: list[bytes]) -> bytes:
    n = len(d)
    if n == 0:
        return _h(b"")
    if n == 1:
        return _h(b"\x00" + d[0])
    k = 1
    while k * 2 < n:
        k *= 2
    return _h(b"\x01" + naive_mth(d[:k]) + naive_mth(d[k:]))


def naive_path(m: int, d: list[bytes]) -> list[bytes]:
    n = len(d)
    if n == 1:
        return []
    k = 1
    while k * 2 < n:
        k *= 2
    if m < k:
        return [*naive_path(m, d[:k]), naive_mth(d[k:])]
    return [*naive_path(m - k, d[k:]), naive_mth(d[:k])]


def naive_subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    n = len(d)
    if m == n:
        return [] if b else [naive_mth(d)]
    k = 1
    while k * 2 < n:
        k *= 2
    if m <= k:
        return [*naive_subproof(m, d[:k], b), naive_mth(d[k:])]
    return [*naive_subproof(m - k, d[k:], False), naive_mth(d[:k])]


def _leaf_hashes(data: list[bytes]) -> list[bytes]:
    return [merkle.leaf_hash(item) for item in data]


# ---- the reference vectors ---------------------------------------------------------


def test_roots_match_the_reference_for_every_size_0_to_8():
    hashes = _leaf_hashes(LEAVES)
    for size, expected in enumerate(ROOTS):
        assert merkle.tree_hash(size, merkle.in_memory(hashes)).hex() == expected


@pytest.mark.parametrize(("index", "size"), sorted(INCLUSION))
def test_inclusion_proofs_match_the_reference(index: int, size: int):
    hashes = _leaf_hashes(LEAVES)
    proof = merkle.inclusion_proof(index, size, merkle.in_memory(hashes))
    assert [p.hex() for p in proof] == INCLUSION[(index, size)]
    root = bytes.fromhex(ROOTS[size])
    assert merkle.verify_inclusion(index, size, hashes[index], proof, root)


@pytest.mark.parametrize(("old", "new"), sorted(CONSISTENCY))
def test_consistency_proofs_match_the_reference(old: int, new: int):
    hashes = _leaf_hashes(LEAVES)
    proof = merkle.consistency_proof(old, new, merkle.in_memory(hashes))
    assert [p.hex() for p in proof] == CONSISTENCY[(old, new)]
    assert merkle.verify_consistency(
        old, new, bytes.fromhex(ROOTS[old]), bytes.fromhex(ROOTS[new]), proof
    )


# ---- every size 1..64 against the naive implementation ------------------------------

DATA = [bytes([i, i * 7 % 256, 42]) for i in range(64)]


def test_every_inclusion_proof_of_every_size_up_to_64():
    hashes = _leaf_hashes(DATA)
    for size in range(1, 65):
        subtree = merkle.in_memory(hashes[:size])
        root = merkle.tree_hash(size, subtree)
        assert root == naive_mth(DATA[:size])
        for index in range(size):
            proof = merkle.inclusion_proof(index, size, subtree)
            assert proof == naive_path(index, DATA[:size])
            assert merkle.verify_inclusion(index, size, hashes[index], proof, root)
            # and nothing else verifies: another leaf, index, size or a flipped byte
            assert not merkle.verify_inclusion(index, size, hashes[index - 1], proof, root) or (
                size == 1
            )
            if size > 1:
                assert not merkle.verify_inclusion(
                    (index + 1) % size, size, hashes[index], proof, root
                )
            if proof:
                bad = [bytes([proof[0][0] ^ 1]) + proof[0][1:], *proof[1:]]
                assert not merkle.verify_inclusion(index, size, hashes[index], bad, root)


def test_every_consistency_proof_of_every_pair_of_sizes_up_to_64():
    hashes = _leaf_hashes(DATA)
    subtree = merkle.in_memory(hashes)
    roots = [merkle.tree_hash(size, subtree) for size in range(65)]
    for new in range(1, 65):
        for old in range(1, new + 1):
            proof = merkle.consistency_proof(old, new, subtree)
            assert proof == naive_subproof(old, DATA[:new], True)
            assert merkle.verify_consistency(old, new, roots[old], roots[new], proof)
            if old < new:
                # a rewritten history (another old root) or a tampered proof fails
                other = merkle.leaf_hash(b"rewritten")
                assert not merkle.verify_consistency(old, new, other, roots[new], proof)
                bad = [bytes([proof[-1][0] ^ 1]) + proof[-1][1:], *proof[:-1]][::-1]
                assert not merkle.verify_consistency(old, new, roots[old], roots[new], bad)


@pytest.mark.parametrize(("index", "size"), [(-1, 4), (4, 4), (0, 0), (10, 3)])
def test_out_of_range_proof_requests_are_refused(index: int, size: int):
    with pytest.raises(merkle.ProofError):
        merkle.inclusion_proof(index, size, merkle.in_memory(_leaf_hashes(LEAVES)))


def test_consistency_needs_growing_non_empty_sizes():
    subtree = merkle.in_memory(_leaf_hashes(LEAVES))
    for old, new in [(0, 3), (5, 4)]:
        with pytest.raises(merkle.ProofError):
            merkle.consistency_proof(old, new, subtree)
