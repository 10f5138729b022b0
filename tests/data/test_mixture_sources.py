"""A mixture of real sources by weight (`data.source: mixture`): captions from webdataset JPEG shards and
text from jsonl through one BPE, in the mixture's proportions, each target validated on its own held-out
data, trained and resumed exactly; a weight for a target with no source is named."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import yaml
from test_captions import write_shards
from test_hf_text import corpus_texts, write_jsonl

from models.registry import get_model_spec, with_vocab
from sweeper.config import load_config
from sweeper.data import TARGETS
from sweeper.data.bpe import train_bpe
from sweeper.data.sources import for_trials, held_out_sets, model_vocab, training_stream
from sweeper.errors import SweeperInputError
from sweeper.train.loop import TrainHParams, train


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("mixture")
    texts = corpus_texts(300)
    jsonl = write_jsonl(root / "text" / "part-0.jsonl", texts)
    pairs = write_shards(root / "pairs", n_shards=1, per_shard=80)
    tok = train_bpe(texts + ["a big red square at the top left."], 320)
    tok.save(str(root / "tokenizer.json"))
    data = {"source": "mixture", "tokenizer": str(root / "tokenizer.json"), "cache_dir": str(root / "cache"),
            "targets": {"caption": {"source": "webdataset", "path": str(pairs), "val_sequences": 8},
                        "text": {"source": "hf_text", "path": str(jsonl), "val_sequences": 8}}}
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
    hp = TrainHParams(lr=1e-2, batch_size=4, mixture=(0.5, 0, 0.5), eval_every=10, eval_batches=2,
                      eval_batch_size=4, checkpoint_every=10)
    n_tokens = 30 * hp.batch_size * spec.seq_len
    reports, states = [], []
    whole = train(spec, hp, n_tokens=n_tokens, seed=0, data=data, report=reports.append,
                  checkpoint=lambda metrics, state: (reports.append(metrics), states.append(copy.deepcopy(state))))
    for target in ("caption", "text"):
        assert reports[-1][f"val_loss_{target}"] < reports[0][f"val_loss_{target}"] - 0.5, (target, reports)
    assert set(whole.losses) == {"caption", "text", "avg"}
    resumed = train(spec, hp, n_tokens=n_tokens, seed=0, data=data, resume=states[0])
    assert resumed.losses == whole.losses and resumed.flops == whole.flops


def test_a_weight_without_a_source_and_a_source_for_the_wrong_target_are_named(sources, tmp_path: Path):
    def config(data, mixture):
        space = {"model": {"kind": "early_fusion", "ladder": "tiny"}, "budget": 1e12,
                 "training": {"mixture": mixture}, "data": data}
        (tmp_path / "space.yaml").write_text(yaml.safe_dump(space))
        return load_config(str(tmp_path / "space.yaml"))

    data = sources["data"]
    config(data, [0.5, 0, 0.5])  # the good one loads
    with pytest.raises(SweeperInputError, match="interleaved has weight 0.2 but data.targets has no interleaved "
                                                "source; add data.targets.interleaved"):
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
