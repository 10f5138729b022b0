"""Training and validation data of a trial, from the source its `data:` section names.

`generated` (the default) is sweeper.data's procedural mixture; `token_shards` reads
pre-tokenized text (sweeper.data.shards). Both give the same batch dicts, so the loop,
the FLOP count and the evaluation do not know which one they get.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from functools import lru_cache

from sweeper.data import data_config, train_batches, validation_sets
from sweeper.data.shards import TokenShards, shard_batches, text_batch


def _source(data: Mapping | None) -> str:
    return (data or {}).get("source", "generated")


@lru_cache(maxsize=8)
def open_shards(path: str, dtype: str, seq_len: int, holdout: int, vocab_size: int | None = None,
                field: str = "data.path") -> TokenShards:
    """One reader per (corpus, geometry) and process: training and evaluation share the memory maps."""
    return TokenShards(path, seq_len=seq_len, dtype=dtype, vocab_size=vocab_size, field=field, holdout=holdout)


def training_shards(spec, data: Mapping) -> TokenShards:
    holdout = 0 if data.get("val_path") else int(data.get("val_sequences", 64))
    return open_shards(data["path"], data.get("dtype", "uint16"), spec.seq_len, holdout)


def training_stream(spec, mixture, batch_size: int, seed: int, data: Mapping | None = None) -> Iterator[dict]:
    """Endless, deterministic training batches of `batch_size` sequences for `spec`."""
    if _source(data) == "generated":
        return train_batches(spec, mixture, batch_size, seed)
    return shard_batches(training_shards(spec, data), batch_size=batch_size, seed=seed,
                         image=data_config(spec).image)


def held_out_sets(spec, *, n_batches: int, batch_size: int, seed: int,
                  data: Mapping | None = None) -> dict[str, list[dict]]:
    """Validation batches per target, from data no training stream of the source visits."""
    if _source(data) == "generated":
        return validation_sets(spec, n_batches=n_batches, batch_size=batch_size, seed=seed)
    if data.get("val_path"):
        windows = open_shards(data["val_path"], data.get("dtype", "uint16"), spec.seq_len, 0,
                              field="data.val_path").samples(seed=0)
        pool = [next(windows) for _ in range(n_batches * batch_size)]
    else:
        pool = training_shards(spec, data).held_out()
    image = data_config(spec).image
    batches = [text_batch(pool[i:i + batch_size], image) for i in range(0, len(pool), batch_size)][:n_batches]
    return {"text": batches}
