"""A sweep on pre-tokenized token shards the test writes itself, selected by a `data:` section:
real Ray Tune, MLflow and torch. Bad data input exits 2 naming the file, before anything runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from mlflow.tracking import MlflowClient

from models.flops import TokenCounts
from models.registry import get_model_spec
from sweeper import Sweeper
from sweeper.data import TOKENIZER
from sweeper.data.documents import text_doc

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
SIZES = ["tiny-1", "tiny-2", "tiny-3"]


def write_corpus(folder: Path, n_shards: int = 2, tokens: int = 60_000) -> Path:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    for i in range(n_shards):
        ids: list[int] = []
        while len(ids) < tokens:
            ids += TOKENIZER.encode(" ".join(text_doc(rng))) + [2]
        np.asarray(ids[:tokens], np.uint16).tofile(folder / f"train_{i:03d}.bin")
    return folder


def write_space(root: Path, data: dict) -> Path:
    space = {
        "model": {"kind": "dense_text", "ladder": "tiny", "sizes": SIZES},
        "budget": 2e12,
        "design": "grid",
        "budgets": {"slices": [6e10], "min_tokens_per_param": 0.1, "min_steps": 10},
        "training": {"mixture": [0, 0, 1], "eval_every": 20, "eval_batches": 2, "batch_size": 8},
        "fit": {"n_bootstrap": 10},
        "data": data,
    }
    path = root / "shards.yaml"
    path.write_text(yaml.safe_dump(space))
    return path


def plan(space: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "sweeper.cli", "plan", str(space)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def test_a_missing_corpus_exits_2_naming_it(tmp_path):
    run = plan(write_space(tmp_path, {"source": "token_shards", "path": str(tmp_path / "nowhere")}))
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert f"data.path: got '{tmp_path / 'nowhere'}'; no such file or folder" in run.stderr


def test_an_empty_shard_exits_2_naming_the_file(tmp_path):
    corpus = write_corpus(tmp_path / "corpus", n_shards=1)
    (corpus / "train_001.bin").touch()
    run = plan(write_space(tmp_path, {"source": "token_shards", "path": str(corpus)}))
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert f"'{corpus / 'train_001.bin'}'; the shard is empty" in run.stderr


def test_a_sweep_trains_on_the_shards(ray_local, tmp_path):
    corpus = write_corpus(tmp_path / "corpus")
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    space = write_space(tmp_path, {"source": "token_shards", "path": str(corpus), "val_sequences": 32})
    result = Sweeper(str(space), tracking_uri=uri, experiment="it-shards").run(progress=lambda line: None)
    client = MlflowClient(uri)
    trials = client.search_runs(
        [result.experiment_id], f"tags.`mlflow.parentRunId` = '{result.parent_run_id}'"
    )
    assert len(trials) == 3
    for run in trials:
        metrics = run.data.metrics
        assert run.data.tags["sweeper.status"] == "ok" and run.data.tags["sweeper.device"] == "cpu"
        curve = [m.value for m in client.get_metric_history(run.info.run_id, "val_loss")]
        assert curve[-1] < curve[0] - 0.3, curve  # it learned the corpus
        n = int(metrics["n_tokens_trained"])
        assert metrics["n_image_tokens"] == 0 and metrics["n_text_tokens"] == n
        spec = get_model_spec("dense_text", run.data.params["size"])
        exact = TokenCounts(positions=n, image=0, scored=n).flops(spec.config, spec.seq_len)
        assert metrics["flops"] == pytest.approx(exact)
