"""Pre-tokenized token shards: deterministic per seed, every window once per epoch, validation held out,
resumable at the exact sample, local or fsspec, and bad input named by file."""

from __future__ import annotations

import copy
from pathlib import Path

import fsspec
import numpy as np
import pytest
import torch

from models.registry import get_model_spec
from sweeper.data import TOKENIZER
from sweeper.data.documents import text_doc
from sweeper.data.shards import TokenShards, shard_batches
from sweeper.data.sources import held_out_sets, training_stream
from sweeper.errors import SweeperInputError
from sweeper.train.loop import TrainHParams, train

SPEC = get_model_spec("dense_text", "tiny-2")  # vocabulary 128, 128 positions


def write_corpus(
    folder: Path, n_shards: int = 2, tokens: int = 40_000, dtype=np.uint16, seed: int = 0
) -> Path:
    """Shards of the procedural text documents, char-tokenized: real structure, so a model can learn it."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n_shards):
        ids: list[int] = []
        while len(ids) < tokens:
            ids += TOKENIZER.encode(" ".join(text_doc(rng))) + [2]
        np.asarray(ids[:tokens], dtype).tofile(folder / f"train_{i:03d}.bin")
    return folder


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return write_corpus(tmp_path_factory.mktemp("shards") / "corpus")


def first_tokens(batches) -> list[int]:
    return [int(t) for b in batches for t in b["tokens"][:, 0]]


def test_a_seed_fixes_the_stream_and_an_epoch_visits_every_training_window_once(corpus):
    shards = TokenShards(str(corpus), seq_len=15, holdout=10)
    a, b = shard_batches(shards, batch_size=4, seed=3), shard_batches(shards, batch_size=4, seed=3)
    for _ in range(3):
        x, y = next(a), next(b)
        assert all(torch.equal(x[k], y[k]) for k in x)
    other = next(shard_batches(shards, batch_size=4, seed=4))
    assert not torch.equal(other["tokens"], x["tokens"])
    every = [tuple(shards.window(k)) for k in range(shards.n_windows)]
    read = shards.window
    visited: list[int] = []  # by index: the generated language repeats short windows word for word
    shards.window = lambda k: visited.append(k) or read(k)
    samples = shards.samples(seed=3)
    seen = [tuple(next(samples)) for _ in range(shards.n_windows)]
    assert sorted(seen) == sorted(every) and sorted(visited) == list(range(shards.n_windows))
    held = shards.held_out()  # validation windows are never trained on
    assert len(held) == 10 and min(visited[-10:]) >= shards.n_windows


def test_targets_are_the_next_tokens_and_all_of_them_are_scored(corpus):
    batch = next(shard_batches(TokenShards(str(corpus), seq_len=31), batch_size=2, seed=0))
    assert batch["tokens"].shape == (2, 31) and not batch["is_image"].any()
    assert torch.equal(batch["targets"][:, :-1], batch["tokens"][:, 1:]) and (batch["targets"] >= 0).all()


def test_resuming_at_a_sample_position_is_exact_without_replaying(corpus):
    shards = TokenShards(str(corpus), seq_len=15)
    straight = shard_batches(shards, batch_size=4, seed=1)
    expected = [next(straight) for _ in range(shards.n_windows // 4 + 3)][-3:]  # crosses into the next epoch
    jumped = shard_batches(shards, batch_size=4, seed=1)
    jumped.skip(shards.n_windows // 4)
    resumed = shard_batches(shards, batch_size=4, seed=1, start=4 * (shards.n_windows // 4))
    for want in expected:
        assert torch.equal(next(jumped)["tokens"], want["tokens"])
        assert torch.equal(next(resumed)["tokens"], want["tokens"])


def test_uint32_shards_behind_an_fsspec_url():
    fs = fsspec.filesystem("memory")
    with fs.open("/sweeper-test/big/train_000.bin", "wb") as f:
        f.write(np.arange(70_000, 70_000 + 1_000, dtype=np.uint32).tobytes())
    shards = TokenShards("memory://sweeper-test/big", seq_len=9, dtype="uint32")
    assert shards.n_windows == 100 and shards.window(1)[0] == 70_010
    fs.rm("/sweeper-test", recursive=True)


def test_bad_input_names_the_file_and_the_fix(tmp_path):
    with pytest.raises(SweeperInputError, match="no such file or folder") as err:
        TokenShards(str(tmp_path / "missing"), seq_len=8)
    assert err.value.field == "data.path" and "missing" in str(err.value)
    folder = write_corpus(tmp_path / "c", n_shards=1, tokens=1000)
    (folder / "train_001.bin").write_bytes(b"")
    with pytest.raises(SweeperInputError, match="empty") as err:
        TokenShards(str(folder), seq_len=8)
    assert str(folder / "train_001.bin") in str(err.value)
    (folder / "train_001.bin").write_bytes(b"\x01\x02\x03")
    with pytest.raises(SweeperInputError, match="not a whole number of uint16 tokens"):
        TokenShards(str(folder), seq_len=8)
    (folder / "train_001.bin").unlink()
    with pytest.raises(SweeperInputError, match="outside the model's vocabulary of 64"):
        TokenShards(str(folder), seq_len=8, vocab_size=64)
    with pytest.raises(SweeperInputError, match="nothing left to train on"):
        TokenShards(str(folder), seq_len=8, holdout=10_000)


def test_a_run_on_shards_learns_and_resumes_with_the_same_losses(corpus):
    data = {
        "source": "token_shards",
        "path": str(corpus),
        "dtype": "uint16",
        "val_path": None,
        "val_sequences": 16,
    }
    hp = TrainHParams(
        lr=1e-2,
        batch_size=4,
        mixture=(0, 0, 1),
        eval_every=10,
        eval_batches=2,
        eval_batch_size=8,
        checkpoint_every=10,
    )
    n_tokens = 30 * hp.batch_size * SPEC.seq_len
    reports, states = [], []
    whole = train(
        SPEC,
        hp,
        n_tokens=n_tokens,
        seed=0,
        data=data,
        report=reports.append,
        checkpoint=lambda metrics, state: (reports.append(metrics), states.append(copy.deepcopy(state))),
    )
    assert reports[-1]["val_loss"] < reports[0]["val_loss"] - 0.3  # it learns the corpus
    resumed = train(SPEC, hp, n_tokens=n_tokens, seed=0, data=data, resume=states[0])  # from step 10
    assert int(states[0]["step"]) == 10
    assert resumed.losses == whole.losses and resumed.train_loss == whole.train_loss
    assert resumed.flops == whole.flops and whole.n_image_tokens == 0
    # validation is the held-out tail: the same windows for every trial, none of them trained on
    val = held_out_sets(SPEC, n_batches=2, batch_size=8, seed=0, data=data)
    assert list(val) == ["text"] and len(val["text"]) == 2
    stream = training_stream(SPEC, None, 4, 0, data)
    assert stream.shards.n_held_out == 16
