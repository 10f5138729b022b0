"""Search-space dimensions parse, reject bad bounds with errors that name the key, and map to Ray domains."""

import pytest

from sweeper.config.schema import load_config
from sweeper.config.tune_space import apply_sample, mixture_weights, search_space
from sweeper.errors import SweeperInputError


def tune_cfg(space, kind="early_fusion", **tune):
    return load_config(
        "tiny", kind=kind, **{"tune.space": space, **{f"tune.{k}": v for k, v in tune.items()}}
    )


def test_every_distribution_parses_into_a_ray_domain():
    from ray.tune.search.sample import Categorical, Float, Integer

    cfg = tune_cfg(
        {
            "lr": {"dist": "loguniform", "low": 1e-4, "high": 1e-2},
            "warmup_frac": {"dist": "uniform", "low": 0.0, "high": 0.2},
            "batch_tokens": {"dist": "choice", "values": [256, 512, 1024]},
            "warmup_steps": {"dist": "int", "low": 0, "high": 50},
            "mixture.caption": {"dist": "uniform", "low": 0.1, "high": 0.6},
        }
    )
    domains = search_space(cfg.tune)
    assert isinstance(domains["lr"], Float) and isinstance(domains["warmup_steps"], Integer)
    assert isinstance(domains["batch_tokens"], Categorical)
    assert domains["warmup_steps"].upper == 51  # int bounds are inclusive in the YAML
    assert "mixture_caption" in domains


@pytest.mark.parametrize(
    "space, key, words",
    [
        ({"lr": {"dist": "loguniform", "low": 1e-2, "high": 1e-4}}, "tune.space.lr.high", "must exceed low"),
        ({"lr": {"dist": "loguniform", "low": 0.0, "high": 1e-2}}, "tune.space.lr.low", "low > 0"),
        ({"lr": {"dist": "uniform", "low": -1e-3, "high": 1e-2}}, "tune.space.lr.low", "> 0"),
        ({"lr": {"dist": "gaussian", "low": 1e-3, "high": 1e-2}}, "tune.space.lr.dist", "allowed values"),
        ({"lr": {"low": 1e-3, "high": 1e-2}}, "tune.space.lr.dist", "give a distribution"),
        ({"lr": {"dist": "uniform", "low": 1e-3}}, "tune.space.lr.high", "needs both"),
        (
            {"learning_rate": {"dist": "uniform", "low": 0.1, "high": 1}},
            "tune.space.learning_rate",
            "unknown hyperparameter",
        ),
        (
            {"warmup_frac": {"dist": "uniform", "low": 0.0, "high": 1.5}},
            "tune.space.warmup_frac.high",
            "[0, 1)",
        ),
        (
            {"warmup_steps": {"dist": "int", "low": 0.5, "high": 10}},
            "tune.space.warmup_steps",
            "whole-number",
        ),
        (
            {"batch_tokens": {"dist": "loguniform", "low": 256, "high": 4096}},
            "tune.space.batch_tokens.dist",
            "int or logint",
        ),
        (
            {"batch_tokens": {"dist": "choice", "values": []}},
            "tune.space.batch_tokens.values",
            "at least one",
        ),
        (
            {"batch_tokens": {"dist": "choice", "values": [256, 256]}},
            "tune.space.batch_tokens.values",
            "repeat",
        ),
        (
            {"mixture": {"dist": "choice", "values": ["45-45-10", "lots-of-text"]}},
            "tune.space.mixture.values[1]",
            "45-45-10",
        ),
        (
            {"vision_lr_mult": {"dist": "loguniform", "low": 0.01, "high": 1}},
            "tune.space.vision_lr_mult",
            "late_fusion",
        ),
        (
            {"aux_loss_weight": {"dist": "loguniform", "low": 0.001, "high": 0.1}},
            "tune.space.aux_loss_weight",
            "moe",
        ),
        (
            {"lr": {"dist": "loguniform", "low": 1e-4, "high": 1e-2, "bounds": 3}},
            "tune.space.lr.bounds",
            "unknown key",
        ),
    ],
)
def test_bad_dimensions_name_themselves(space, key, words):
    with pytest.raises(SweeperInputError) as info:
        tune_cfg(space)
    assert key in str(info.value) and words in str(info.value)


def test_kind_specific_dimensions_are_accepted_for_their_kind():
    assert tune_cfg(
        {"vision_lr_mult": {"dist": "loguniform", "low": 0.01, "high": 1}}, kind="late_fusion"
    ).tune.space
    assert tune_cfg(
        {"aux_loss_weight": {"dist": "loguniform", "low": 1e-3, "high": 0.1}}, kind="moe"
    ).tune.space
    with pytest.raises(SweeperInputError, match="text-only"):
        tune_cfg({"mixture.text": {"dist": "uniform", "low": 0.1, "high": 1}}, kind="dense_text")


def test_tune_section_rules():
    lr = {"lr": {"dist": "loguniform", "low": 1e-4, "high": 1e-2}}
    with pytest.raises(SweeperInputError, match="tune.reduction_factor"):
        tune_cfg(lr, reduction_factor=1.0)
    with pytest.raises(SweeperInputError, match="tune.grace_frac"):
        tune_cfg(lr, grace_frac=0.0)
    with pytest.raises(SweeperInputError, match=r"tune.mixtures\[1\]"):
        tune_cfg(lr, mixtures=["45-45-10", "half-half"])
    with pytest.raises(SweeperInputError, match="recipe_run"):
        load_config("tiny", **{"training.recipe": "fitted"})


def test_samples_become_training_hyperparameters():
    hp = {"lr": 1e-3, "batch_size": 16, "mixture": (0.45, 0.45, 0.10)}
    out = apply_sample(hp, {"lr": 3e-3, "batch_tokens": 1000, "mixture_text": 0.9}, seq_len=128)
    assert out["lr"] == 3e-3 and out["batch_size"] == 8
    assert out["mixture"] == pytest.approx((0.45 / 1.8, 0.45 / 1.8, 0.9 / 1.8))
    assert apply_sample(hp, {"mixture": "20-40-40"}, seq_len=128)["mixture"] == pytest.approx(
        mixture_weights("20-40-40")
    )
