"""Shared fixtures: the single-process reference trajectory of the tiny recipe."""

from __future__ import annotations

import os

import pytest

from train_distributed.recipe import HP, KIND, SEED, SIZE, n_tokens

os.environ.setdefault("DS_ACCELERATOR", "cpu")


@pytest.fixture(scope="session")
def spec():
    from models.registry import get_model_spec

    return get_model_spec(KIND, SIZE)


@pytest.fixture(scope="session")
def reference(spec):
    """The single-process loop's curve: {step: val_loss}, and its final TrainResult."""
    from sweeper.train.loop import train

    curve: dict[int, dict] = {}
    result = train(spec, HP, n_tokens=n_tokens(), seed=SEED, report=lambda m: curve.__setitem__(m["step"], dict(m)))
    return curve, result


@pytest.fixture(scope="session")
def reference_no_text(spec):
    """The same with image-bearing data only (caption + interleaved): what ZeRO-3 is tested on."""
    from dataclasses import replace

    from sweeper.train.loop import train

    curve: dict[int, dict] = {}
    result = train(spec, replace(HP, mixture=(0.5, 0.5, 0.0)), n_tokens=n_tokens(), seed=SEED,
                   report=lambda m: curve.__setitem__(m["step"], dict(m)))
    return curve, result
