"""A sweep on a jsonl corpus with a BPE that `sweeper tokenizer` trains, selected by `data.source: hf_text`:
real Hugging Face datasets and tokenizers, Ray Tune, MLflow and torch. The models embed the tokenizer's
vocabulary, every trial records it, and C is counted with it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from mlflow.tracking import MlflowClient

from models.registry import get_model_spec, with_vocab
from sweeper import Sweeper
from sweeper.data.documents import text_doc
from sweeper.flops import TokenCounts

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def test_a_sweep_trains_on_jsonl_text_with_the_projects_bpe(ray_local, tmp_path):
    rng = np.random.default_rng(0)
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for part in range(2):
        rows = [json.dumps({"text": " ".join(text_doc(rng))}) for _ in range(300)]
        (corpus / f"part-{part}.jsonl").write_text("\n".join(rows) + "\n")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    made = subprocess.run([sys.executable, "-m", "sweeper.cli", "tokenizer", "--data", str(corpus), "--vocab-size",
                           "300", "-o", str(tmp_path / "tokenizer.json")], capture_output=True, text=True, env=env,
                          timeout=300)
    assert made.returncode == 0, made.stderr
    space = {"model": {"kind": "dense_text", "ladder": "tiny", "sizes": ["tiny-1", "tiny-2", "tiny-3"]},
             "budget": 2e12, "design": "grid",
             "budgets": {"slices": [6e10], "min_tokens_per_param": 0.1, "min_steps": 10},
             "training": {"mixture": [0, 0, 1], "eval_every": 20, "eval_batches": 2, "batch_size": 8},
             "fit": {"n_bootstrap": 10},
             "data": {"source": "hf_text", "path": str(corpus), "tokenizer": str(tmp_path / "tokenizer.json"),
                      "cache_dir": str(tmp_path / "tokenized"), "val_sequences": 16}}
    (tmp_path / "text.yaml").write_text(yaml.safe_dump(space))
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    result = Sweeper(str(tmp_path / "text.yaml"), tracking_uri=uri, experiment="it-hf-text").run(
        progress=lambda line: None)
    assert len(list((tmp_path / "tokenized").iterdir())) == 1  # tokenized once, by the driver, for all trials

    client = MlflowClient(uri)
    trials = client.search_runs([result.experiment_id], f"tags.`mlflow.parentRunId` = '{result.parent_run_id}'")
    assert len(trials) == 3
    for run in trials:
        params, metrics = run.data.params, run.data.metrics
        assert run.data.tags["sweeper.status"] == "ok"
        assert params["vocab_size"] == "320"  # 300 ids, rounded up to a multiple of 64
        assert params["data.source"] == "hf_text" and params["data.tokenizer"] == str(tmp_path / "tokenizer.json")
        curve = [m.value for m in client.get_metric_history(run.info.run_id, "val_loss")]
        assert curve[-1] < curve[0] - 0.5, curve  # it learned the corpus
        n = int(metrics["n_tokens_trained"])
        spec = with_vocab(get_model_spec("dense_text", params["size"]), 320)
        assert int(params["n_params_total"]) == spec.n_params_total
        exact = TokenCounts(positions=n, image=0, scored=n).flops(spec.config, spec.seq_len)
        assert metrics["flops"] == pytest.approx(exact)
