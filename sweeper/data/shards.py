"""Pre-tokenized token shards: flat uint16/uint32 arrays on disk (the nanoGPT/Megatron `.bin` convention).

A shard is the raw array of token ids, no header. Training samples are windows of
seq_len + 1 tokens cut at fixed offsets; each epoch visits every window once in an
order drawn from (seed, epoch), so the stream is deterministic for a seed and sample k
can be produced directly: a restarted trial resumes at its exact sample position
without replaying the samples before it.

Local shards are memory-mapped. Any fsspec URL (s3://, gs://, https://, memory://...)
works too: a remote shard is read once into memory (enough for the modest corpora of
a scaling sweep; a cluster with large corpora mounts them and passes a local path).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from sweeper.data.files import find_files
from sweeper.errors import SweeperInputError

DTYPES = {"uint16": np.uint16, "uint32": np.uint32}
IGNORE = -100


@dataclass(frozen=True)
class Shard:
    url: str
    tokens: np.ndarray  # 1-D, the shard's token ids


def list_shards(path: str, field: str = "data.path") -> list[str]:
    """The shard files of `path`: one .bin file, a folder of them, or a glob; local or an fsspec URL."""
    return find_files(
        path,
        suffixes=(".bin",),
        field=field,
        what=".bin token shards",
        how="write them as flat uint16/uint32 arrays (one file per shard, e.g. train_000.bin)",
    )


def load_shard(url: str, dtype: str, field: str = "data.path") -> Shard:
    """Memory-map (local) or read (remote) one shard, refusing an empty or truncated one."""
    import fsspec

    np_dtype = DTYPES[dtype]
    fs, path = fsspec.core.url_to_fs(url)
    size = fs.size(path)
    itemsize = np.dtype(np_dtype).itemsize
    if not size:
        raise SweeperInputError(field, url, "the shard is empty (0 tokens); remove it or write it again")
    if size % itemsize:
        raise SweeperInputError(
            field,
            url,
            f"{size} bytes is not a whole number of {dtype} tokens; the shard is "
            f"truncated, or data.dtype is not the one it was written with",
        )
    protocol = fs.protocol[0] if isinstance(fs.protocol, (tuple, list)) else fs.protocol
    if protocol in ("file", "local"):
        tokens = np.memmap(path, dtype=np_dtype, mode="r")
    else:
        with fs.open(path, "rb") as f:
            tokens = np.frombuffer(f.read(), dtype=np_dtype)
    return Shard(url=url, tokens=tokens)


class TokenShards:
    """Windows of seq_len + 1 tokens over every shard, in a seeded order per epoch."""

    def __init__(
        self,
        path: str,
        *,
        seq_len: int,
        dtype: str = "uint16",
        vocab_size: int | None = None,
        field: str = "data.path",
        holdout: int = 0,
    ):
        if dtype not in DTYPES:
            raise SweeperInputError("data.dtype", dtype, f"use one of {sorted(DTYPES)}")
        self.seq_len, self.path = int(seq_len), path
        self.shards = [load_shard(u, dtype, field) for u in list_shards(path, field)]
        per = [len(s.tokens) // (self.seq_len + 1) for s in self.shards]
        if sum(per) == 0:
            raise SweeperInputError(
                field,
                path,
                f"fewer than seq_len + 1 = {self.seq_len + 1} tokens in every "
                "shard: no training sample fits; write longer shards",
            )
        self.starts = np.concatenate([[0], np.cumsum(per)])  # first window index of each shard
        # the last `holdout` windows are validation data: no training order ever visits them
        self.n_held_out = int(holdout)
        self.n_windows = int(self.starts[-1]) - self.n_held_out
        if self.n_windows < 1:
            raise SweeperInputError(
                field,
                path,
                f"{int(self.starts[-1])} windows of {self.seq_len + 1} tokens, and "
                f"{self.n_held_out} are held out for validation: nothing left to train on; "
                "write more tokens, lower data.val_sequences or set data.val_path",
            )
        if vocab_size is not None:
            self._check_vocab(vocab_size, field)

    def _check_vocab(self, vocab_size: int, field: str) -> None:
        # the first million tokens of each shard: a wrong dtype or tokenizer shows at once without a full scan
        for s in self.shards:
            top = int(s.tokens[:1_000_000].max())
            if top >= vocab_size:
                raise SweeperInputError(
                    field,
                    s.url,
                    f"token id {top} is outside the model's vocabulary of "
                    f"{vocab_size}; tokenize with a vocabulary that fits, or pick a model with "
                    "a larger one",
                )

    def held_out(self) -> list[np.ndarray]:
        """The validation windows, in order."""
        return [self.window(k) for k in range(self.n_windows, self.n_windows + self.n_held_out)]

    def window(self, k: int) -> np.ndarray:
        """Window k (0 <= k < n_windows + n_held_out) in shard order: seq_len + 1 tokens."""
        shard = int(np.searchsorted(self.starts, k, side="right") - 1)
        offset = (k - int(self.starts[shard])) * (self.seq_len + 1)
        return np.asarray(self.shards[shard].tokens[offset : offset + self.seq_len + 1], dtype=np.int64)

    def samples(self, seed: int, start: int = 0) -> Iterator[np.ndarray]:
        """Sample `start`, `start`+1, ... of the seeded stream (epochs follow one another)."""
        for k in epoch_order(self.n_windows, seed, start, salt=7):
            yield self.window(k)


def epoch_order(n: int, seed: int, start: int = 0, *, salt: int) -> Iterator[int]:
    """Item `start`, `start`+1, ... of an endless stream over range(n): each epoch a permutation drawn from
    (seed, epoch, salt), so position k is computed directly and a restarted reader resumes exactly there.
    Each reader passes its own salt, so two readers of one seed do not share an order."""
    epoch, i = divmod(int(start), n)
    while True:
        for k in np.random.default_rng([seed, epoch, salt]).permutation(n)[i:]:
            yield int(k)
        epoch, i = epoch + 1, 0


def text_batch(windows: list[np.ndarray], image) -> dict:
    """Collate token windows into the model's batch dict (all text; every next token scored)."""
    from sweeper.data.documents import TARGETS

    w = torch.from_numpy(np.stack(windows))
    tokens, targets = w[:, :-1].contiguous(), w[:, 1:].contiguous()
    batch = {
        "tokens": tokens,
        "targets": targets,
        "is_image": torch.zeros_like(tokens, dtype=torch.bool),
        "segment": torch.zeros_like(tokens),
        "target_id": torch.full((len(windows),), TARGETS.index("text"), dtype=torch.int64),
    }
    if image is not None:
        batch["patches"] = torch.zeros((0, image.patch_dim), dtype=torch.float32)
    return batch


class ShardBatches:
    """Endless batches of `batch_size` windows from sample `start` of the seeded stream.

    `skip(n)` jumps n batches ahead without reading them: a resumed trial continues at its exact
    sample position at once. Every batch is all text, every position scored (`batch_counts`).
    """

    def __init__(self, shards: TokenShards, *, batch_size: int, seed: int, image=None, start: int = 0):
        self.shards, self.batch_size, self.seed, self.image = shards, batch_size, seed, image
        self.position = int(start)  # the next sample
        self.stream = shards.samples(seed, self.position)
        n = batch_size * shards.seq_len
        self.batch_counts = {"positions": n, "image": 0, "scored": n}

    def __iter__(self):
        return self

    def __next__(self) -> dict:
        batch = text_batch([next(self.stream) for _ in range(self.batch_size)], self.image)
        self.position += self.batch_size
        return batch

    def skip(self, n_batches: int) -> None:
        self.position += n_batches * self.batch_size
        self.stream = self.shards.samples(self.seed, self.position)


def shard_batches(
    shards: TokenShards, *, batch_size: int, seed: int, image=None, start: int = 0
) -> ShardBatches:
    return ShardBatches(shards, batch_size=batch_size, seed=seed, image=image, start=start)
