"""A mixture of real sources by weight (`data.source: mixture`): captions from webdataset JPEG shards,
interleaved documents from parquet and text from jsonl, through one BPE, in the mixture's proportions,
each target validated on its own held-out data, trained and resumed exactly; a weight for a target with
no source is named."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from test_captions import write_shards
from test_hf_text import corpus_texts, write_jsonl
from training_runs import train_and_resume

from models.registry import get_model_spec, with_vocab
from sweeper.config.schema import load_config
from sweeper.data import TARGETS
from sweeper.data.bpe import train_bpe
from sweeper.data.sources import for_trials, held_out_sets, model_vocab, training_stream
from sweeper.errors import SweeperInputError

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("mixture")
    texts = corpus_texts(300)
    jsonl = write_jsonl(root / "text" / "part-0.jsonl", texts)
    pairs = write_shards(root / "pairs", n_shards=1, per_shard=80)
    tok = train_bpe(texts + ["a big red square at the top left."], 320)
    tok.save(str(root / "tokenizer.json"))
    data = {
        "source": "mixture",
        "tokenizer": str(root / "tokenizer.json"),
        "cache_dir": str(root / "cache"),
        "targets": {
            "caption": {"source": "webdataset", "path": str(pairs), "val_sequences": 8},
            "text": {"source": "hf_text", "path": str(jsonl), "val_sequences": 8},
        },
    }
    return {"root": root, "data": data}


def spec_for(data):
    return with_vocab(get_model_spec("early_fusion", "tiny-2"), model_vocab(data))


def test_sequences_follow_the_weights_and_each_target_is_validated_on_its_own_source(sources):
    data = for_trials(sources["data"])
    spec = spec_for(data)
    assert spec.config.vocab_size == 320
    stream = training_stream(spec, (0.75, 0, 0.25), 8, 0, data)
    ids = np.concatenate([next(stream)["target_id"].numpy() for _ in range(4)])
    caption, text = TARGETS.index("caption"), TARGETS.index("text")
    assert (ids == caption).sum() == 24 and (ids == text).sum() == 8  # stratified: exactly 3:1
    batch = next(stream)
    assert batch["patches"].shape[0] == int(batch["is_image"].sum()) > 0
    assert not batch["is_image"][batch["target_id"] == text].any()  # text sequences carry no image
    val = held_out_sets(spec, n_batches=2, batch_size=4, seed=0, data=data)
    assert set(val) == {"caption", "text"}
    assert all(int(b["is_image"].sum()) > 0 for b in val["caption"])
    assert all(int(b["is_image"].sum()) == 0 for b in val["text"])


def test_a_run_on_the_mixture_learns_both_targets_and_resumes_exactly(sources):
    data = for_trials(sources["data"])
    spec = spec_for(data)
    reports, whole, resumed = train_and_resume(spec, data, (0.5, 0, 0.5))
    for target in ("caption", "text"):
        assert reports[-1][f"val_loss_{target}"] < reports[0][f"val_loss_{target}"] - 0.5, (target, reports)
    assert set(whole.losses) == {"caption", "text", "avg"}
    assert resumed.losses == whole.losses and resumed.flops == whole.flops


def test_a_weight_without_a_source_and_a_source_for_the_wrong_target_are_named(sources, tmp_path: Path):
    def config(data, mixture):
        space = {
            "model": {"kind": "early_fusion", "ladder": "tiny"},
            "budget": 1e12,
            "training": {"mixture": mixture},
            "data": data,
        }
        (tmp_path / "space.yaml").write_text(yaml.safe_dump(space))
        return load_config(str(tmp_path / "space.yaml"))

    data = sources["data"]
    config(data, [0.5, 0, 0.5])  # the good one loads
    with pytest.raises(
        SweeperInputError,
        match="interleaved has weight 0.2 but data.targets has no interleaved "
        "source; add data.targets.interleaved",
    ):
        config(data, [0.4, 0.2, 0.4])
    wrong = {**data, "targets": {**data["targets"], "text": data["targets"]["caption"]}}
    with pytest.raises(SweeperInputError, match="it supplies caption, not text") as err:
        config(wrong, [0.5, 0, 0.5])
    assert err.value.field == "data.targets.text.source"
    generated = {**data, "targets": {**data["targets"], "interleaved": {"source": "generated"}}}
    with pytest.raises(SweeperInputError, match="generated data has its own character vocabulary"):
        config(generated, [0.4, 0.2, 0.4])
    with pytest.raises(SweeperInputError, match="unknown target"):
        config({**data, "targets": {"speech": {"source": "generated"}}}, [0.5, 0, 0.5])


@pytest.mark.integration
def test_a_sweep_trains_on_pairs_documents_and_text_through_one_bpe(ray_local, tmp_path):
    """Every format a study brings, in one sweep through Ray Tune and MLflow: webdataset JPEG pairs for
    captions, OBELICS-style parquet for interleaved documents, jsonl text; the BPE comes from the command."""
    from mlflow.tracking import MlflowClient
    from test_interleaved import write_documents

    from models.flops import TokenCounts
    from sweeper import Sweeper

    texts = corpus_texts(300)
    jsonl = write_jsonl(tmp_path / "text" / "part-0.jsonl", texts)
    made = subprocess.run(
        [
            sys.executable,
            "-m",
            "sweeper.cli",
            "tokenizer",
            "--data",
            str(jsonl.parent),
            "--vocab-size",
            "400",
            "-o",
            str(tmp_path / "tokenizer.json"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert made.returncode == 0, made.stderr
    data = {
        "source": "mixture",
        "tokenizer": str(tmp_path / "tokenizer.json"),
        "cache_dir": str(tmp_path / "cache"),
        "targets": {
            "caption": {
                "source": "webdataset",
                "path": str(write_shards(tmp_path / "pairs", 1, 80)),
                "val_sequences": 8,
            },
            "interleaved": {
                "source": "obelics",
                "val_sequences": 8,
                "path": str(write_documents(tmp_path / "docs" / "part-0.parquet", 120)),
            },
            "text": {"source": "hf_text", "path": str(jsonl), "val_sequences": 8},
        },
    }
    space = {
        "model": {"kind": "early_fusion", "ladder": "tiny", "sizes": ["tiny-1", "tiny-2", "tiny-3"]},
        "budget": 2e12,
        "design": "grid",
        "budgets": {"slices": [6e10], "min_tokens_per_param": 0.1, "min_steps": 10},
        "training": {"mixture": [0.4, 0.3, 0.3], "eval_every": 20, "eval_batches": 2, "batch_size": 8},
        "fit": {"n_bootstrap": 10},
        "data": data,
    }
    (tmp_path / "mix.yaml").write_text(yaml.safe_dump(space))
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    result = Sweeper(str(tmp_path / "mix.yaml"), tracking_uri=uri, experiment="it-mix").run(
        progress=lambda line: None
    )
    assert (
        len(list((tmp_path / "cache").glob("*/meta.json"))) == 1
    )  # the text is tokenized once, for all trials
    client = MlflowClient(uri)
    trials = client.search_runs(
        [result.experiment_id], f"tags.`mlflow.parentRunId` = '{result.parent_run_id}'"
    )
    assert len(trials) == 3
    for run in trials:
        params, metrics = run.data.params, run.data.metrics
        assert params["data.tokenizer"] == str(tmp_path / "tokenizer.json")  # a path, not a secret to mask
        assert (
            params["data.caption.source"] == "webdataset" and params["data.interleaved.source"] == "obelics"
        )
        assert run.data.tags["sweeper.status"] == "ok", run.data.tags
        assert (
            params["vocab_size"] == "448" and params["data.source"] == "mixture"
        )  # 400 ids, rounded up to 64s
        for target in ("caption", "interleaved", "text"):
            curve = [m.value for m in client.get_metric_history(run.info.run_id, f"val_loss_{target}")]
            assert curve[-1] < curve[0] - 0.3, (target, curve)
        counts = TokenCounts(
            positions=int(metrics["n_tokens_trained"]),
            image=int(metrics["n_image_tokens"]),
            scored=int(metrics["n_scored_tokens"]),
        )
        spec = with_vocab(get_model_spec("early_fusion", params["size"]), 448)
        assert 0 < counts.image < counts.positions and metrics["skipped_images"] == 0
        assert metrics["epochs"] > 0  # passes over the most repeated of its sources, as planned
        assert metrics["flops"] == pytest.approx(counts.flops(spec.config, spec.seq_len))
