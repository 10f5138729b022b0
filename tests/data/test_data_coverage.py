"""What the plan says about a real corpus, held to what trials do with it: C within 2% of the slice on every
source (the plan costs a position at what the source's batches hold), epochs as the trial reads them, one
warning when trials repeat data, and interleaved documents split across sequences rather than cut."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from test_captions import write_shards
from test_hf_text import corpus_texts, write_jsonl
from test_interleaved import write_documents
from test_shards import write_corpus

from models.flops import TokenCounts
from sweeper.config.schema import load_config
from sweeper.data.bpe import train_bpe
from sweeper.data.sources import documents, for_trials, training_stream
from sweeper.data.tokenizer import CharTokenizer
from sweeper.plan.trials import data_use, format_plan, make_plan, model_specs


@pytest.fixture(scope="module")
def corpora(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("coverage")
    texts = corpus_texts(200)
    train_bpe(texts, 320).save(str(root / "tokenizer.json"))
    return {
        "token_shards": {
            "source": "token_shards",
            "path": str(write_corpus(root / "shards", 1, 60_000)),
            "val_sequences": 8,
        },
        "hf_text": {
            "source": "hf_text",
            "path": str(write_jsonl(root / "text" / "p.jsonl", texts)),
            "tokenizer": str(root / "tokenizer.json"),
            "cache_dir": str(root / "cache"),
            "val_sequences": 8,
        },
        "webdataset": {
            "source": "webdataset",
            "path": str(write_shards(root / "pairs", 1, 60)),
            "val_sequences": 8,
        },
        "obelics": {
            "source": "obelics",
            "path": str(write_documents(root / "docs" / "p.parquet", 80)),
            "val_sequences": 8,
        },
    }


MIXTURES = {"token_shards": [0, 0, 1], "hf_text": [0, 0, 1], "webdataset": [1, 0, 0], "obelics": [0, 1, 0]}


def space(tmp_path, data: dict, mixture, kind: str = "early_fusion", budget: float = 3e11):
    text_only = mixture == [0, 0, 1] and kind == "dense_text"
    body = {
        "model": {"kind": kind, "ladder": "tiny", "sizes": ["tiny-1", "tiny-2", "tiny-3"]},
        "budget": budget,
        "design": "grid",
        "budgets": {"n_slices": 2, "min_tokens_per_param": 0.05, "min_steps": 8},
        "training": {"batch_size": 8, **({} if text_only else {"mixture": mixture})},
        "data": data,
    }
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump(body))
    return load_config(str(path))


def counted(cfg, trial) -> tuple[float, int]:
    """(C, documents read) of the batches the trial trains on: its seed's stream, as train() counts it."""
    spec = next(s for s in model_specs(cfg) if s.size == trial.size)
    stream = training_stream(
        spec, cfg.training.mixture, trial.batch_size, cfg.seed, for_trials(cfg.data.model_dump())
    )
    counts = TokenCounts()
    for _ in range(trial.steps):
        counts.add(next(stream))
    packer = getattr(stream, "packer", None)
    return counts.flops(spec.config, spec.seq_len), packer.documents_read if packer else 0


@pytest.mark.parametrize("source", sorted(MIXTURES))
def test_each_trial_spends_its_slice_within_two_percent_and_reads_the_epochs_the_plan_says(
    source, corpora, tmp_path
):
    kind = "dense_text" if source in ("token_shards", "hf_text") else "early_fusion"
    cfg = space(tmp_path, corpora[source], MIXTURES[source], kind)
    plan = make_plan(cfg)
    assert [s.path for s in plan.sources] == [for_trials(corpora[source])["path"]]
    for trial in plan.trials:
        flops, read = counted(cfg, trial)
        assert flops == pytest.approx(trial.budget, rel=0.02), (trial.point_id, flops / trial.budget)
        assert flops == pytest.approx(trial.flops, rel=0.02)
        assert trial.epochs > 0
        if read:  # document sources: what the packer took from the order
            spec = next(s for s in model_specs(cfg) if s.size == trial.size)
            n_train = documents(spec, for_trials(cfg.data.model_dump())).n_train
            assert read / n_train == pytest.approx(trial.epochs, rel=0.1, abs=0.05)


def test_a_mixture_is_costed_per_target_and_its_epochs_follow_the_weights(corpora, tmp_path):
    data = {
        "source": "mixture",
        "targets": {"caption": corpora["webdataset"], "interleaved": corpora["obelics"]},
    }
    cfg = space(tmp_path, data, [0.5, 0.5, 0])
    plan = make_plan(cfg)
    assert sorted(s.unit for s in plan.sources) == ["documents", "pairs"]
    assert all(s.share == pytest.approx(0.5) for s in plan.sources)
    for trial in plan.trials[::2]:
        assert counted(cfg, trial)[0] == pytest.approx(trial.budget, rel=0.02)


def test_repeated_data_is_said_once_in_the_plan_with_how_much(corpora, tmp_path, capsys):
    from sweeper.cli import main

    cfg = space(tmp_path, corpora["webdataset"], [1, 0, 0], budget=3e12)
    plan = make_plan(cfg)
    worst = max(t.epochs for t in plan.trials)
    assert worst > 1 and plan.repetition_warning.startswith(
        f"{sum(t.epochs > 1 for t in plan.trials)} of {len(plan.trials)} trials see their data "
        "more than once "
        f"(up to {worst:.1f} epochs over 52 pairs of"
    )
    table = format_plan(plan)
    assert table.count("WARNING:") == 1 and "epochs" in table.splitlines()[0] and "52 training pairs" in table
    assert main(["plan", str(tmp_path / "space.yaml"), "--format", "json"]) == 0
    out = yaml.safe_load(capsys.readouterr().out)
    assert out["warnings"] == [plan.repetition_warning] and out["data"][0]["size"] == 52
    assert [t["epochs"] for t in out["trials"]] == [pytest.approx(t.epochs) for t in plan.trials]

    big = tmp_path / "big"
    big.mkdir()
    np.random.default_rng(0).integers(0, 128, 4_000_000).astype(np.uint16).tofile(big / "train_000.bin")
    fresh = space(tmp_path, {"source": "token_shards", "path": str(big)}, [0, 0, 1], kind="dense_text")
    plan = make_plan(fresh)
    assert 0 < max(t.epochs for t in plan.trials) < 1 and plan.repetition_warning is None
    assert "WARNING" not in format_plan(plan) and data_use(model_specs(fresh)[0], fresh) is not None


def test_a_long_interleaved_document_goes_on_in_the_next_sequence(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from models.registry import get_model_spec

    spec = get_model_spec("early_fusion", "tiny-2")  # 128 positions
    words = [f"word{i} " for i in range(150)]
    long_text = "".join(words)  # ~1000 characters: about 8 sequences of the character tokenizer
    path = tmp_path / "docs" / "p.parquet"
    path.parent.mkdir()
    pq.write_table(
        pa.table(
            {
                "texts": pa.array([[long_text]] * 3, pa.list_(pa.string())),
                "images": pa.array([[None]] * 3, pa.list_(pa.binary())),
            }
        ),
        path,
    )
    data = {"source": "obelics", "path": str(path), "val_sequences": 1}
    stream = training_stream(spec, (0, 1, 0), 1, 0, data)
    text = ""
    tok = CharTokenizer()
    while stream.packer.documents_read < 2:  # the whole of the first training document, then the next
        row = next(stream)["tokens"][0].tolist()
        text += tok.decode([t for t in row if t not in (tok.bos_id, tok.pad_id)])
    assert long_text in text  # nothing of it was cut
    assert stream.cut_tokens == 0
