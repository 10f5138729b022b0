"""Snapshots of one model size's stable phase, shared by every trial of that size.

With cooldown branching each (N, D) trial needs the warmup-stable run of its
size up to its branch step. Trials leave a snapshot there; a later trial of the
same size starts from the latest snapshot at or before its own branch step,
trains only the stable steps beyond it, then its own cooldown. The key holds
everything the stable trajectory depends on, so a snapshot is only ever reused
by a run that would have computed the same weights.

On a cluster the store must be storage every worker sees (`training.branch_store`).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch

# Fields that do not change the stable phase (the cooldown starts after it; evaluation only reads).
NOT_IN_KEY = (
    "cooldown_frac",
    "eval_every",
    "eval_batches",
    "eval_batch_size",
    "checkpoint_every",
    "warmup_frac",
)


def store_key(kind: str, size: str, hp, seed: int) -> str:
    """Digest of what determines the stable run: the model, seed, and every stable-phase hyperparameter."""
    fields = {k: v for k, v in hp.model_dump().items() if k not in NOT_IN_KEY}
    text = json.dumps({"kind": kind, "size": size, "seed": seed, **fields}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class StableStore:
    def __init__(self, root: Path | str, key: str):
        self.dir = Path(root) / key

    def steps(self) -> list[int]:
        if not self.dir.is_dir():
            return []
        return sorted(int(p.stem.removeprefix("step_")) for p in self.dir.glob("step_*.pt"))

    def latest(self, at_most: int) -> dict | None:
        """The snapshot with the most stable steps not beyond `at_most`, or None."""
        usable = [s for s in self.steps() if s <= at_most]
        if not usable:
            return None
        # Written by this project's own trials; tensors and numbers only, no arbitrary unpickling.
        return torch.load(self.dir / f"step_{usable[-1]}.pt", weights_only=True, map_location="cpu")

    def save(self, state: dict) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        path = self.dir / f"step_{int(state['step'])}.pt"
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        torch.save(state, tmp)
        tmp.replace(path)  # atomic: a concurrent trial of the same size reads a whole snapshot or none
