"""DataLoader workers build exactly the batches the in-process stream gives, in order, from any start;
a run with workers equals a run without, resumed or not."""

from __future__ import annotations

import itertools

import pytest
import torch
import webdataset as wds
from test_captions import write_shards
from test_shards import write_corpus
from training_runs import train_and_resume

from models.registry import get_model_spec
from sweeper.data.loader import LoaderBatches
from sweeper.data.sources import training_stream

TEXT = get_model_spec("dense_text", "tiny-2")
IMAGES = get_model_spec("early_fusion", "tiny-2")


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("loader")
    shards = {
        "source": "token_shards",
        "path": str(write_corpus(root / "tokens")),
        "dtype": "uint16",
        "val_path": None,
        "val_sequences": 8,
    }
    pairs = {
        "source": "webdataset",
        "path": str(write_shards(root / "pairs", n_shards=1, per_shard=40)),
        "val_path": None,
        "val_sequences": 4,
        "bad_images": "skip",
        "tokenizer": None,
    }
    broken = write_shards(root / "broken", n_shards=1, per_shard=30)
    with wds.TarWriter(str(broken / "00000-bad.tar")) as sink:  # a corrupt image among the first in the order
        sink.write(
            {"__key__": "bad0", "jpg": b"\xff\xd8\xff\xe0 not really a jpeg", "txt": b"a broken picture."}
        )
    broken = {**pairs, "path": str(broken)}
    mixed = {"source": "mixture", "targets": {"caption": broken, "text": shards}}
    return {
        "text": (TEXT, (0, 0, 1), shards),
        "pairs": (IMAGES, (1, 0, 0), pairs),
        "broken pairs": (IMAGES, (1, 0, 0), broken),
        "mixture": (IMAGES, (0.5, 0, 0.5), mixed),
    }


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize(
    "name,workers,start",
    [
        ("text", 2, 0),
        ("text", 2, 5),
        ("pairs", 2, 0),
        ("pairs", 1, 3),
        ("broken pairs", 3, 2),
        ("mixture", 2, 1),
    ],
)
def test_workers_hand_out_the_in_process_batches_in_order(sources, name, workers, start):
    spec, mixture, data = sources[name]

    def make():
        return training_stream(spec, mixture, 4, 0, data)

    expected = make()
    for _ in range(start):
        next(expected)
    loaded = LoaderBatches(make, workers)
    if start and loaded.can_skip:
        loaded.skip(start)
    elif start:
        for _ in range(start):
            next(loaded)
    for want, got in zip(itertools.islice(expected, 7), itertools.islice(loaded, 7)):
        assert same(want, got)


def test_passing_over_document_batches_decodes_no_image(sources, monkeypatch):
    import sweeper.data.captions as captions

    spec, mixture, data = sources["pairs"]
    decoded = []
    monkeypatch.setattr(captions, "decode_image", lambda *a: decoded.append(a) or None)
    stream = training_stream(spec, mixture, 4, 0, data)
    stream.pass_over(5)
    assert decoded == [] and stream.skipped_images == 0
    next(stream)
    assert 0 < len(decoded) <= 4 * 4  # only the built batch's images: 4 sequences of at most 4 pairs


def test_a_run_with_loader_workers_equals_one_without_and_resumes_the_same(sources):
    spec, mixture, data = sources["pairs"]
    _, plain, _ = train_and_resume(spec, data, mixture, steps=20)
    _, loaded, resumed = train_and_resume(spec, {**data, "loader_workers": 2}, mixture, steps=20)
    assert loaded.losses == plain.losses and loaded.flops == plain.flops
    assert resumed.losses == plain.losses and loaded.extra["skipped_images"] == 0
