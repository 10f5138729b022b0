import numpy as np
import pytest
import torch

from models.registry import get_model_spec
from sweeper.data import (
    MIXTURES,
    TARGETS,
    TOKENIZER,
    as_mixture,
    data_config,
    pack_sequence,
    targets_of,
    train_batches,
    validation_sets,
)
from sweeper.data.batches import IGNORE
from sweeper.data.mixtures import target_schedule
from sweeper.errors import SweeperInputError

SPEC = get_model_spec("early_fusion", "tiny-1")


def batches(spec, n, seed, mixture=None, batch_size=4):
    it = train_batches(spec, mixture, batch_size, seed)
    return [next(it) for _ in range(n)]


def same(a, b) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_deterministic_per_seed_and_different_across_seeds():
    a, b, c = batches(SPEC, 3, 7), batches(SPEC, 3, 7), batches(SPEC, 3, 8)
    assert all(same(x, y) for x, y in zip(a, b))
    assert not same(a[0], c[0])


def test_batch_layout_is_exactly_batch_times_seq_len():
    for batch in batches(SPEC, 3, 0, batch_size=5):
        assert batch["tokens"].shape == (5, SPEC.seq_len)
        img = SPEC.config.image
        assert batch["patches"].shape == (int(batch["is_image"].sum()), img.patch_dim)
        for row in batch["segment"]:  # images are whole: every image has all its patches
            counts = torch.bincount(row)[1:]
            assert ((counts == img.n_patches) | (counts == 0)).all()
            assert counts.sum() == (row > 0).sum()


def test_targets_score_only_text_that_follows():
    lay = pack_sequence(np.random.default_rng(0), "interleaved", data_config(SPEC))
    tgt = targets_of(lay)
    for i in range(len(tgt) - 1):
        is_text_next = lay.segment[i + 1] == 0 and lay.tokens[i + 1] != TOKENIZER.pad_id
        assert (tgt[i] == lay.tokens[i + 1]) if is_text_next else (tgt[i] == IGNORE)
    assert tgt[-1] == IGNORE


@pytest.mark.parametrize("name", sorted(MIXTURES))
def test_mixture_proportions_hold_within_one_percent(name):
    ids = torch.cat([b["target_id"] for b in batches(SPEC, 25, 0, mixture=name, batch_size=8)])
    share = torch.bincount(ids, minlength=3).double() / ids.numel()
    assert torch.allclose(share, torch.tensor(MIXTURES[name], dtype=torch.double), atol=0.01)


def test_schedule_proportions_for_arbitrary_weights():
    gen = target_schedule(as_mixture({"caption": 1, "interleaved": 2, "text": 7}))
    ids = np.array([next(gen) for _ in range(1000)])
    assert np.allclose(np.bincount(ids, minlength=3) / 1000, [0.1, 0.2, 0.7], atol=0.01)


def test_bad_mixture_is_an_input_error():
    with pytest.raises(SweeperInputError):
        as_mixture("50-50")
    with pytest.raises(SweeperInputError):
        as_mixture((1, -1, 1))


def test_validation_sets_are_per_target_and_held_out():
    val = validation_sets(SPEC, n_batches=2, batch_size=4, seed=0)
    assert set(val) == set(TARGETS)
    for k, target in enumerate(TARGETS):
        assert all((b["target_id"] == k).all() for b in val[target])
    assert val["caption"][0]["is_image"].any() and not val["text"][0]["is_image"].any()
    train = batches(SPEC, 4, 0, mixture=(1, 0, 0))
    assert not any(torch.equal(v["tokens"], t["tokens"]) for v in val["caption"] for t in train)


def test_text_only_model_gets_text_only():
    spec = get_model_spec("dense_text", "tiny-1")
    batch = batches(spec, 1, 0)[0]
    assert not batch["is_image"].any() and (batch["target_id"] == 2).all()
    assert set(validation_sets(spec, n_batches=1, batch_size=2)) == {"text"}


def test_tokenizer_round_trip():
    text = "bako lives in tirun. 3 plus 4 is 7.\n"
    assert TOKENIZER.decode(TOKENIZER.encode(text)) == text
    assert max(TOKENIZER.encode(text)) < TOKENIZER.vocab_size


def test_captions_describe_the_rendered_image():
    from models.config import ImageConfig
    from sweeper.data.images import Shape, caption, render

    scene = (Shape(color="red", shape="square", size="big", place="top left"),)
    pix = render(scene, ImageConfig(image_size=24, patch_size=6), np.random.default_rng(0))
    assert caption(scene) == "a big red square at the top left."
    assert pix[0, :8, :8].mean() > pix[0, 16:, 16:].mean() + 0.5  # red in the top-left cell only
