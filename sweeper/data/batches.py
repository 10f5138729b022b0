"""Packing documents into fixed-length sequences, and batches as tensors.

Every sequence has exactly seq_len positions; an image patch takes one
position (so it counts as a token). An image is never split across
sequences: if it does not fit, the rest of the sequence is padding.

A batch is a dict of tensors:
  tokens     [B, T] int64  text ids (PAD at image positions)
  targets    [B, T] int64  next text token, or -100 where nothing is scored
  is_image   [B, T] bool
  segment    [B, T] int64  0 for text, k for the k-th image of the sequence
  patches    [M, patch_dim] float32, M = is_image.sum(), row-major order
  target_id  [B]    int64  index into TARGETS of each sequence's data type
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from models.config import ImageConfig
from sweeper.data.documents import GENERATORS, TARGETS
from sweeper.data.images import patchify, render
from sweeper.data.tokenizer import BOS, EOS, PAD, TOKENIZER

IGNORE = -100


@dataclass(frozen=True, kw_only=True)
class DataConfig:
    seq_len: int
    image: ImageConfig | None  # None: text-only model, only the text target exists

    @property
    def targets(self) -> tuple[str, ...]:
        return TARGETS if self.image is not None else ("text",)


@dataclass
class Layout:
    """One packed sequence before rendering: ids, image index per position, scenes."""

    tokens: np.ndarray
    segment: np.ndarray
    scenes: list


def pack_sequence(rng: np.random.Generator, target: str, cfg: DataConfig) -> Layout:
    t = cfg.seq_len
    n_patch = cfg.image.n_patches if cfg.image is not None else 0
    toks, seg, scenes = [BOS], [0], []
    while len(toks) < t:
        for piece in GENERATORS[target](rng) + [None]:
            room = t - len(toks)
            if room <= 0:
                break
            if piece is None:  # document boundary
                toks.append(EOS), seg.append(0)
            elif isinstance(piece, str):
                ids = TOKENIZER.encode(piece)[:room]
                toks += ids
                seg += [0] * len(ids)
            elif n_patch and n_patch <= room:
                scenes.append(piece)
                toks += [PAD] * n_patch
                seg += [len(scenes)] * n_patch
            else:  # image does not fit (or no image input): pad to the end
                toks += [PAD] * room
                seg += [0] * room
    return Layout(np.asarray(toks, np.int64), np.asarray(seg, np.int64), scenes)


def targets_of(layout: Layout) -> np.ndarray:
    """Next-token targets: scored only where the next position is real text."""
    nxt_tok, nxt_seg = layout.tokens[1:], layout.segment[1:]
    tgt = np.where((nxt_seg == 0) & (nxt_tok != PAD), nxt_tok, IGNORE)
    return np.concatenate([tgt, [IGNORE]])


def collate(layouts: list[Layout], target_ids: list[int], cfg: DataConfig, rng: np.random.Generator) -> dict:
    tokens = np.stack([lay.tokens for lay in layouts])
    segment = np.stack([lay.segment for lay in layouts])
    batch = {
        "tokens": torch.from_numpy(tokens),
        "targets": torch.from_numpy(np.stack([targets_of(lay) for lay in layouts])),
        "is_image": torch.from_numpy(segment > 0),
        "segment": torch.from_numpy(segment),
        "target_id": torch.tensor(target_ids, dtype=torch.int64),
    }
    if cfg.image is not None:
        img = cfg.image
        patches = [patchify(render(s, img, rng), img.patch_size) for lay in layouts for s in lay.scenes]
        arr = np.concatenate(patches) if patches else np.zeros((0, img.patch_dim), np.float32)
        batch["patches"] = torch.from_numpy(arr.astype(np.float32))
    return batch


@lru_cache(maxsize=64)
def token_composition(cfg: DataConfig, target: str, n_sequences: int = 128) -> tuple[float, float]:
    """(fraction of positions that are image patches, fraction that are scored).

    Measured on packed layouts (no rendering) from a fixed seed; FLOPs per
    token depend on it because image and text positions cost different work.
    """
    rng = np.random.default_rng([4242, TARGETS.index(target)])
    lays = [pack_sequence(rng, target, cfg) for _ in range(n_sequences)]
    n = n_sequences * cfg.seq_len
    img = sum(int((lay.segment > 0).sum()) for lay in lays) / n
    scored = sum(int((targets_of(lay) != IGNORE).sum()) for lay in lays) / n
    return img, scored
