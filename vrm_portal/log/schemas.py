"""The JSON of the public log's endpoints (the OpenAPI document is built from these)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class InclusionProof(BaseModel):
    index: int = Field(description="The leaf: the ledger event with seq = index + 1.")
    size: int = Field(description="The tree size the proof leads to (a checkpoint's size).")
    hashes: list[str] = Field(description="Base64 node hashes, from the leaf up (RFC 9162).")


class ConsistencyProof(BaseModel):
    from_: int = Field(alias="from", description="The older tree size.")
    to: int = Field(description="The newer tree size.")
    hashes: list[str] = Field(description="Base64 node hashes (RFC 9162 §2.1.4).")


class CheckpointEntry(BaseModel):
    size: int
    root: str = Field(description="Base64 tree hash.")
    checkpoint: str = Field(description="The signed checkpoint note, as /log/checkpoint serves it.")
    created_at: str


class CheckpointList(BaseModel):
    checkpoints: list[CheckpointEntry]
    next_after: int | None = Field(
        description="Pass as ?after= for the next page; null on the last page."
    )
