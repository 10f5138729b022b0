"""Image-caption pairs from webdataset tar shards of real JPEG/PNG files (written with webdataset's
TarWriter): every pair once per epoch, patches and scored caption text in place, C counted by modality,
training that learns and resumes with the same losses, and corrupt images skipped and counted or named."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import webdataset as wds
import yaml
from PIL import Image
from training_runs import train_and_resume

from models.config import ImageConfig
from models.flops import TokenCounts
from models.registry import get_model_spec
from sweeper.config.schema import load_config
from sweeper.data.captions import CaptionShards
from sweeper.data.images import caption, random_scene, render
from sweeper.data.shards import IGNORE
from sweeper.data.sources import held_out_sets, training_stream
from sweeper.data.tokenizer import CharTokenizer
from sweeper.errors import SweeperInputError
from sweeper.plan.trials import make_plan

SPEC = get_model_spec("early_fusion", "tiny-2")  # 24 px images, 16 patches, 128 positions
DRAW = ImageConfig(image_size=48, patch_size=6)  # files at twice the model's size: the loader resizes


def jpeg(scene, rng, fmt: str = "JPEG") -> bytes:
    pix = ((render(scene, DRAW, rng) + 0.5).clip(0, 1) * 255).astype(np.uint8).transpose(1, 2, 0)
    out = io.BytesIO()
    Image.fromarray(pix).save(out, format=fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return out.getvalue()


def write_shards(folder: Path, n_shards: int = 2, per_shard: int = 60, seed: int = 0) -> Path:
    """img2dataset's layout: 00000.tar with 000000000.jpg + .txt (and some .png + .json) per key."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for s in range(n_shards):
        with wds.TarWriter(str(folder / f"{s:05d}.tar")) as sink:
            for i in range(per_shard):
                scene, key = random_scene(rng), f"{s:05d}{i:04d}"
                if i % 5 == 4:
                    sink.write(
                        {
                            "__key__": key,
                            "png": jpeg(scene, rng, "PNG"),
                            "json": json.dumps({"caption": caption(scene), "width": 48}).encode(),
                        }
                    )
                else:
                    sink.write({"__key__": key, "jpg": jpeg(scene, rng), "txt": caption(scene).encode()})
    return folder


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> Path:
    return write_shards(tmp_path_factory.mktemp("wds") / "pairs")


def data_section(path, **extra) -> dict:
    return {
        "source": "webdataset",
        "path": str(path),
        "val_path": None,
        "val_sequences": 12,
        "bad_images": "skip",
        "tokenizer": None,
        **extra,
    }


def test_every_training_pair_once_per_epoch_and_captions_from_txt_and_json(shards):
    pairs = CaptionShards(str(shards), image=SPEC.config.image, holdout=12)
    assert len(pairs.pairs) == 120 and pairs.n_train == 108
    stream = pairs.indices(seed=3)
    epoch = [next(stream) for _ in range(pairs.n_train)]
    assert sorted(epoch) == list(range(108))  # the held-out tail never trains
    assert epoch != list(range(108))  # shuffled across shards, not only within a buffer
    resumed = pairs.indices(seed=3, start=50)
    assert [next(resumed) for _ in range(10)] == epoch[50:60]  # pair 50 of the order, directly
    png = next(k for k, p in enumerate(pairs.pairs) if p.image[2].endswith(".png"))
    assert pairs.caption(png).startswith("a ") and pairs.caption(png).endswith(".")
    pix = pairs.pixels(0)
    assert pix.shape == (3, 24, 24) and pix.dtype == np.uint8 and pix.min() < pix.max()


def test_the_index_sees_the_pairs_webdatasets_own_reader_sees(shards):
    pairs = CaptionShards(str(shards), image=SPEC.config.image)
    urls = [str(p) for p in sorted(shards.glob("*.tar"))]
    theirs = [
        (s["__key__"], (s.get("txt") or json.loads(s["json"])["caption"].encode()).decode())
        for s in wds.WebDataset(urls, shardshuffle=False, empty_check=False)
    ]
    ours = [(p.key, pairs.caption(k)) for k, p in enumerate(pairs.pairs)]
    assert ours == theirs and len(ours) == 120


def test_a_batch_holds_patches_and_scores_only_caption_text(shards):
    data = data_section(shards)
    batch = next(training_stream(SPEC, (1, 0, 0), 4, 0, data))
    n_patch = SPEC.config.image.n_patches
    assert batch["patches"].shape == (int(batch["is_image"].sum()), SPEC.config.image.patch_dim)
    assert int(batch["is_image"].sum()) % n_patch == 0 and int(batch["is_image"].sum()) >= 4 * n_patch
    scored = batch["targets"] != -100
    assert not scored[:, -1].any()
    # a scored target is the next position's token, and that position is caption text (the last
    # patch of an image predicts the caption's first token, as in the generated data)
    nxt_text = ~batch["is_image"][:, 1:]
    assert bool((nxt_text | ~scored[:, :-1]).all())
    assert bool((batch["targets"][:, :-1][scored[:, :-1]] == batch["tokens"][:, 1:][scored[:, :-1]]).all())
    counts = TokenCounts.of(batch)
    assert 0 < counts.image < counts.positions and counts.scored > 0
    assert counts.flops(SPEC.config, SPEC.seq_len) != pytest.approx(
        counts.positions * SPEC.flops_per_token
    )  # C of these batches, not of the 45/45/10 average


def test_a_run_on_pairs_learns_and_resumes_with_the_same_losses(shards):
    data = data_section(shards)
    reports, whole, resumed = train_and_resume(SPEC, data, (1, 0, 0))
    assert reports[-1]["val_loss"] < reports[0]["val_loss"] - 0.5, reports
    assert whole.n_image_tokens > 0 and whole.extra["skipped_images"] == 0
    assert resumed.losses == whole.losses and resumed.flops == whole.flops
    val = held_out_sets(SPEC, n_batches=2, batch_size=4, seed=0, data=data)
    assert list(val) == ["caption"] and len(val["caption"]) == 2


def test_a_corrupt_image_is_skipped_and_counted_or_named(tmp_path):
    folder = write_shards(tmp_path / "pairs", n_shards=1, per_shard=20)
    with wds.TarWriter(str(folder / "00000-bad.tar")) as sink:  # first in shard order: trained, not held out
        sink.write(
            {"__key__": "bad0", "jpg": b"\xff\xd8\xff\xe0 not really a jpeg", "txt": b"a broken picture."}
        )
    data = data_section(folder, val_sequences=1)
    pairs = CaptionShards(str(folder), image=SPEC.config.image, holdout=1)
    bad = next(k for k, p in enumerate(pairs.pairs) if p.key == "bad0")
    assert pairs.pixels(bad) is None
    stream = training_stream(SPEC, (1, 0, 0), 4, 0, data)
    batches = [next(stream) for _ in range(12)]  # more than an epoch of pairs
    assert stream.skipped_images >= 1
    # the broken pair keeps its positions (nothing after it moves) but none of its caption is scored
    broken = CharTokenizer().encode("a broken picture.")
    seen = 0
    for batch in batches:
        for row, targets in zip(batch["tokens"].tolist(), batch["targets"].tolist()):
            for i in range(len(row) - len(broken)):
                if row[i : i + len(broken)] == broken:
                    seen += 1
                    assert all(t == IGNORE for t in targets[i - 1 : i + len(broken)])
    assert seen >= 1

    space = {
        "model": {"kind": "early_fusion", "ladder": "tiny"},
        "budget": 1e12,
        "training": {"mixture": [1, 0, 0]},
        "data": data_section(folder, bad_images="error"),
    }
    (tmp_path / "space.yaml").write_text(yaml.safe_dump(space))
    with pytest.raises(SweeperInputError, match="the image does not decode") as err:
        make_plan(load_config(str(tmp_path / "space.yaml")))
    assert err.value.value == f"{folder / '00000-bad.tar'}:bad0.jpg"


def test_bad_pair_input_names_the_field_and_the_fix(tmp_path, shards):
    with pytest.raises(SweeperInputError, match="no such file or folder"):
        CaptionShards(str(tmp_path / "none"), image=SPEC.config.image)
    (tmp_path / "empty").mkdir()
    with pytest.raises(SweeperInputError, match="no webdataset .tar shards there"):
        CaptionShards(str(tmp_path / "empty"), image=SPEC.config.image)
    (tmp_path / "empty" / "00000.tar").write_bytes(b"garbage" * 100)
    with pytest.raises(SweeperInputError, match="not a readable tar"):
        CaptionShards(str(tmp_path / "empty"), image=SPEC.config.image)

    def config(**over):
        space = {
            "model": {"kind": "early_fusion", "ladder": "tiny"},
            "budget": 1e12,
            "training": {"mixture": [1, 0, 0]},
            "data": data_section(shards),
        }
        for key, value in over.items():
            space[key] = {**space[key], **value}
        (tmp_path / "space.yaml").write_text(yaml.safe_dump(space))
        return load_config(str(tmp_path / "space.yaml"))

    with pytest.raises(SweeperInputError, match=r"set training.mixture=\[1, 0, 0\]"):
        config(training={"mixture": [0.5, 0, 0.5]})
    with pytest.raises(SweeperInputError, match="use early_fusion, late_fusion or moe"):
        config(model={"kind": "dense_text"}, training={"mixture": [1, 0, 0]})


def plan_space(tmp_path, data: dict) -> Path:
    space = {
        "model": {"kind": "early_fusion", "ladder": "tiny"},
        "budget": 1e12,
        "training": {"mixture": [1, 0, 0]},
        "data": data,
    }
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump(space))
    return path


def test_a_source_whose_images_do_not_decode_is_refused_by_the_plan_and_fails_a_trial(tmp_path, capsys):
    from sweeper.cli import main
    from sweeper.train.loop import TrainHParams, train

    folder = tmp_path / "broken"
    folder.mkdir()
    with wds.TarWriter(str(folder / "00000.tar")) as sink:
        for i in range(30):
            sink.write(
                {"__key__": f"k{i:03d}", "jpg": b"\xff\xd8\xff\xe0 not a jpeg", "txt": b"a lost picture."}
            )
    space = plan_space(tmp_path, data_section(folder, val_sequences=2))
    before = sorted(p.name for p in tmp_path.iterdir())
    assert main(["plan", str(space)]) == 2
    err = capsys.readouterr().err
    assert "every one of the images checked" in err and f"{folder / '00000.tar'}:k000.jpg" in err, err
    assert "data.bad_image_share" in err and sorted(p.name for p in tmp_path.iterdir()) == before

    # a trial that gets such data anyway fails, saying why, instead of "diverging"
    hp = TrainHParams(lr=1e-2, batch_size=2, mixture=(1, 0, 0), eval_every=5, eval_batches=1)
    with pytest.raises(SweeperInputError, match="no position of the trial's first 1 batch"):
        train(SPEC, hp, n_tokens=4 * 2 * SPEC.seq_len, seed=0, data=data_section(folder, val_sequences=2))


def test_one_broken_image_in_many_is_skipped_and_counted_once_however_often_visited(tmp_path):
    folder = write_shards(tmp_path / "pairs", n_shards=1, per_shard=12)
    with wds.TarWriter(str(folder / "00000-bad.tar")) as sink:
        sink.write(
            {"__key__": "bad0", "jpg": b"\xff\xd8\xff\xe0 not really a jpeg", "txt": b"a broken picture."}
        )
    make_plan(
        load_config(str(plan_space(tmp_path, data_section(folder, val_sequences=1))))
    )  # 1 of 13: trains
    stream = training_stream(SPEC, (1, 0, 0), 4, 0, data_section(folder, val_sequences=1))
    for _ in range(40):  # about 13 epochs of the 12 training pairs: the broken one visited each time
        next(stream)
    assert stream.skipped_images == 1 and stream.skipped_files == {f"{folder / '00000-bad.tar'}:bad0.jpg"}
    strict = plan_space(tmp_path, data_section(folder, val_sequences=1, bad_image_share=0.05))
    with pytest.raises(SweeperInputError, match="1 of the 13 images checked"):
        make_plan(load_config(str(strict)))
