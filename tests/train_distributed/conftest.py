"""Shared fixtures: the single-process reference trajectory of the tiny recipe."""

from __future__ import annotations

import os

import pytest

from train_distributed.recipe import HP, KIND, SIZE, single_process

os.environ.setdefault("DS_ACCELERATOR", "cpu")


@pytest.fixture(scope="session")
def spec():
    from models.registry import get_model_spec

    return get_model_spec(KIND, SIZE)


@pytest.fixture(scope="session")
def reference():
    """The single-process loop's curve: {step: val_loss}, and its final TrainResult."""
    return single_process(KIND)


@pytest.fixture(scope="session")
def reference_no_text():
    """The same with image-bearing data only (caption + interleaved): what ZeRO-3 is tested on."""
    return single_process(KIND, HP.replace(mixture=(0.5, 0.5, 0.0)))
