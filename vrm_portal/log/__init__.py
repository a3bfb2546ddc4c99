"""The public transparency log over the consent ledger (RFC 9162 Merkle tree, C2SP
signed checkpoints, inclusion and consistency proofs, offline proof bundles)."""
