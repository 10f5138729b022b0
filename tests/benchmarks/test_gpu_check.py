"""benchmarks/gpu_check.py: the parts that run anywhere (the GPU run itself needs a GPU)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))

import gpu_check  # noqa: E402

from sweeper.data.shards import TokenShards, shard_batches  # noqa: E402


def test_peak_table_names_the_data_sheet_numbers():
    assert gpu_check.peak_flops("NVIDIA H100 80GB HBM3", None) == 989e12
    assert gpu_check.peak_flops("NVIDIA H100 PCIe", None) == 756e12
    assert gpu_check.peak_flops("NVIDIA H200", None) == 989e12
    assert gpu_check.peak_flops("NVIDIA A100-SXM4-80GB", None) == 312e12
    assert gpu_check.peak_flops("NVIDIA L4", None) is None
    assert gpu_check.peak_flops("NVIDIA L4", 121.0) == 121e12


def test_the_shards_it_writes_are_nanogpt_uint16_and_learnable(tmp_path):
    folder = gpu_check.write_token_shards(tmp_path, n_shards=2, tokens_per_shard=5000, vocab=50432)
    files = sorted(folder.glob("*.bin"))
    assert [f.stat().st_size for f in files] == [10000, 10000]  # raw uint16, no header
    tokens = np.fromfile(files[0], np.uint16)
    # each token has at most 4 successors: far from uniform, so a model's loss can fall
    pairs = {}
    for a, b in zip(tokens[:-1], tokens[1:]):
        pairs.setdefault(int(a), set()).add(int(b))
    assert np.mean([len(v) for v in pairs.values()]) <= 4
    shards = TokenShards(str(folder), seq_len=64, vocab_size=50432)
    batch = next(shard_batches(shards, batch_size=3, seed=0))
    assert batch["tokens"].shape == (3, 64) and (batch["targets"][:, :-1] == batch["tokens"][:, 1:]).all()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message a machine without a GPU gets")
def test_without_a_gpu_it_says_so_and_measures_nothing():
    run = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "gpu_check.py")],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
        timeout=300,
    )
    assert run.returncode == 1
    assert "no CUDA GPU visible" in run.stderr and "Nothing was measured" in run.stderr
