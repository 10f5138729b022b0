"""Procedural multimodal data: generators, tokenizer, mixtures, batches.

Everything is generated from a seed on the fly; nothing is downloaded or
stored. Train batches mix the three data types by weight; validation sets
are held out per target (a separate random stream), so every trial reports
caption, interleaved and text loss and their average.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from sweeper.data.batches import (
    DataConfig,
    Layout,
    collate,
    pack_sequence,
    targets_of,
    token_composition,
)
from sweeper.data.documents import TARGETS
from sweeper.data.mixtures import DEFAULT_MIXTURE, MIXTURES, as_mixture, target_schedule
from sweeper.data.tokenizer import TOKENIZER, CharTokenizer

__all__ = [
    "TARGETS",
    "MIXTURES",
    "DEFAULT_MIXTURE",
    "TOKENIZER",
    "CharTokenizer",
    "DataConfig",
    "Layout",
    "as_mixture",
    "data_config",
    "train_batches",
    "validation_sets",
    "token_composition",
    "pack_sequence",
    "targets_of",
    "mixture_for",
]

_TRAIN_STREAM, _VALIDATION_STREAM = 0, 1  # keeps held-out data disjoint from training data for a seed


def data_config(spec) -> DataConfig:
    """The data a model spec consumes: its sequence length and image geometry."""
    return DataConfig(seq_len=spec.seq_len, image=getattr(spec.config, "image", None))


def mixture_for(cfg: DataConfig, mixture) -> tuple[float, float, float]:
    """A text-only model trains on text whatever mixture is asked for."""
    return as_mixture(mixture) if cfg.image is not None else (0.0, 0.0, 1.0)


def train_batches(spec, mixture=None, batch_size: int = 16, seed: int = 0) -> Iterator[dict]:
    """Endless, deterministic training batches of exactly batch_size * seq_len tokens."""
    cfg = data_config(spec)
    weights = mixture_for(cfg, mixture)
    rng = np.random.default_rng([seed, _TRAIN_STREAM])
    order = target_schedule(weights)
    while True:
        ids = [next(order) for _ in range(batch_size)]
        layouts = [pack_sequence(rng, TARGETS[i], cfg) for i in ids]
        yield collate(layouts, ids, cfg, rng)


def validation_sets(spec, *, n_batches: int, batch_size: int, seed: int = 0) -> dict[str, list[dict]]:
    """Held-out batches per target (only "text" for a text-only model)."""
    cfg = data_config(spec)
    out: dict[str, list[dict]] = {}
    for target in cfg.targets:
        k = TARGETS.index(target)
        rng = np.random.default_rng([seed, _VALIDATION_STREAM, k])
        out[target] = [
            collate([pack_sequence(rng, target, cfg) for _ in range(batch_size)], [k] * batch_size, cfg, rng)
            for _ in range(n_batches)
        ]
    return out
