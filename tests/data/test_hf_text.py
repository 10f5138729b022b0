"""Text from a Hugging Face `datasets` source with a `tokenizers` BPE the project's command trains:
tokenized once into cached token shards, identical across file formats, trained on and resumed
at the exact sample, and bad input named by field and file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from tokenizers import Tokenizer
from training_runs import train_and_resume

from models.registry import get_model_spec, with_vocab
from sweeper.config.schema import load_config
from sweeper.data.bpe import EOS
from sweeper.data.documents import text_doc
from sweeper.data.sources import for_trials, model_vocab, training_stream
from sweeper.data.text_corpus import tokenized_corpus
from sweeper.errors import SweeperInputError
from sweeper.plan.trials import make_plan

REPO = Path(__file__).resolve().parents[2]


def corpus_texts(n: int = 400, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(text_doc(rng)) for _ in range(n)]


def write_jsonl(path: Path, texts: list[str], field: str = "text") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps({field: t, "id": i}) + "\n" for i, t in enumerate(texts)))
    return path


def sweeper_cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "sweeper.cli", *args], capture_output=True, text=True, env=env, timeout=300
    )


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("hf_text")
    texts = corpus_texts()
    jsonl = write_jsonl(root / "jsonl" / "part-0.jsonl", texts)
    tok = root / "tokenizer.json"
    run = sweeper_cli("tokenizer", "--data", str(jsonl.parent), "--vocab-size", "384", "-o", str(tok))
    assert run.returncode == 0, run.stderr
    return {"root": root, "texts": texts, "jsonl": jsonl, "tokenizer": tok}


def data_section(corpus, path, **extra) -> dict:
    return {
        "source": "hf_text",
        "path": str(path),
        "tokenizer": str(corpus["tokenizer"]),
        "cache_dir": str(corpus["root"] / "cache"),
        "val_sequences": 8,
        "text_field": "text",
        **extra,
    }


def bad_section(corpus, **extra) -> dict:
    return {**data_section(corpus, corpus["jsonl"]), **extra}


def test_the_command_trains_a_byte_level_bpe_that_round_trips(corpus):
    tok = Tokenizer.from_file(str(corpus["tokenizer"]))
    assert tok.get_vocab_size() == 384 and tok.token_to_id(EOS) is not None
    for text in corpus["texts"][:20] + ["unseen: ünïcødé 42 ✓"]:  # byte-level: nothing is unknown
        ids = tok.encode(text, add_special_tokens=False).ids
        assert tok.decode(ids) == text
    ids = tok.encode(corpus["texts"][0]).ids
    assert len(ids) < len(corpus["texts"][0].encode()) / 1.5  # merges learned from the corpus compress it


def test_the_corpus_is_tokenized_once_identically_from_jsonl_and_parquet(corpus):
    tok = Tokenizer.from_file(str(corpus["tokenizer"]))
    eos = tok.token_to_id(EOS)
    expected = np.concatenate([tok.encode(t, add_special_tokens=False).ids + [eos] for t in corpus["texts"]])
    folder, dtype = tokenized_corpus(data_section(corpus, corpus["jsonl"]), str(corpus["jsonl"]))
    shards = sorted(Path(folder).glob("*.bin"))
    assert dtype == "uint16" and np.array_equal(np.fromfile(shards[0], np.uint16), expected)
    meta = json.loads((Path(folder) / "meta.json").read_text())
    assert meta["documents"] == len(corpus["texts"]) and meta["tokens"] == len(expected)
    built = shards[0].stat().st_mtime_ns
    assert tokenized_corpus(data_section(corpus, corpus["jsonl"]), str(corpus["jsonl"]))[0] == folder
    assert shards[0].stat().st_mtime_ns == built  # cached: not tokenized again

    parquet = corpus["root"] / "pq" / "part-0.parquet"
    parquet.parent.mkdir()
    pd.DataFrame({"text": corpus["texts"]}).to_parquet(parquet)
    other, _ = tokenized_corpus(data_section(corpus, parquet.parent), str(parquet.parent))
    assert other != folder
    assert np.array_equal(np.fromfile(next(Path(other).glob("*.bin")), np.uint16), expected)


def test_the_model_embeds_the_tokenizers_vocabulary_and_trains_and_resumes_exactly(corpus):
    data = for_trials(data_section(corpus, corpus["jsonl"]))
    vocab = model_vocab(data)
    assert vocab == 384  # 384 ids, a multiple of 64 already
    spec = with_vocab(get_model_spec("dense_text", "tiny-2"), vocab)
    assert spec.config.vocab_size == 384 and spec.n_params == get_model_spec("dense_text", "tiny-2").n_params
    reports, whole, resumed = train_and_resume(spec, data, (0, 0, 1))
    assert reports[-1]["val_loss"] < reports[0]["val_loss"] - 0.5, reports  # it learns the corpus
    assert resumed.losses == whole.losses and resumed.train_loss == whole.train_loss
    assert training_stream(spec, None, 4, 0, data).shards.n_held_out == 8


def test_bad_input_names_the_field_the_value_and_the_fix(corpus, tmp_path):
    def config(data: dict, **model):
        space = {
            "model": {"kind": "dense_text", "ladder": "tiny", **model},
            "budget": 1e12,
            "training": {"mixture": [0, 0, 1]},
            "data": data,
        }
        (tmp_path / "space.yaml").write_text(yaml.safe_dump(space))
        return load_config(str(tmp_path / "space.yaml"))

    def plan_with(**data):
        return make_plan(config(bad_section(corpus, **data)))

    with pytest.raises(SweeperInputError, match="no such file or folder") as err:
        plan_with(path=str(tmp_path / "nowhere"))
    assert err.value.field == "data.path"
    with pytest.raises(SweeperInputError, match=r"no such column .* its columns are \['id', 'text'\]") as err:
        plan_with(text_field="body")
    assert err.value.field == "data.text_field"
    with pytest.raises(SweeperInputError, match="train one with `sweeper tokenizer") as err:
        plan_with(tokenizer=str(tmp_path / "missing.json"))
    assert err.value.field == "data.tokenizer"
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(SweeperInputError, match="not a Hugging Face tokenizers file"):
        plan_with(tokenizer=str(tmp_path / "bad.json"))
    with pytest.raises(
        SweeperInputError, match="vocabulary of 384 ids does not fit the model's embedding of 128"
    ):
        make_plan(config(data_section(corpus, corpus["jsonl"]), vocab_size=128))
    empty = write_jsonl(tmp_path / "empty" / "e.jsonl", [""] * 3)
    with pytest.raises(SweeperInputError, match="every row was empty"):
        plan_with(path=str(empty))
    with pytest.raises(SweeperInputError, match="hf_text needs a tokenizer.json"):
        config({"source": "hf_text", "path": str(corpus["jsonl"])})
    run = sweeper_cli(
        "tokenizer", "--data", str(corpus["jsonl"]), "--vocab-size", "100", "-o", str(tmp_path / "t")
    )
    assert run.returncode == 2 and "Traceback" not in run.stderr and "--vocab-size: got 100" in run.stderr
