"""The device a single-process trial trains on follows its Ray reservation."""

from __future__ import annotations

import warnings

import pytest
import torch

from sweeper.train.device import ReservedGPUMissing, autocast, choose_device, reserved_gpu_ids, trial_device


@pytest.mark.parametrize("cuda_available", [False, True])
def test_no_gpu_reserved_trains_on_the_cpu_even_where_cuda_exists(cuda_available):
    # a 0-GPU trial must not grab a GPU another trial reserved
    assert choose_device(0, cuda_available) == "cpu"


def test_a_reserved_and_visible_gpu_is_used():
    assert choose_device(1, True) == "cuda"
    assert choose_device(4, True) == "cuda"


def test_a_reserved_gpu_that_torch_cannot_see_fails_loudly_with_the_fix():
    with pytest.raises(ReservedGPUMissing) as err:
        choose_device(1, False, detail="Ray assigned GPU ids ['0']")
    msg = str(err.value)
    assert "reserved 1 GPU(s)" in msg and "Ray assigned GPU ids ['0']" in msg
    assert "--set ray.gpus_per_trial=0" in msg


def test_outside_a_ray_worker_nothing_is_reserved_so_the_cpu_is_used():
    assert reserved_gpu_ids() == []
    assert trial_device() == "cpu"


def test_autocast_is_bf16_on_cuda_and_absent_on_the_cpu():
    with autocast("cpu"):
        assert not torch.is_autocast_enabled()
    with warnings.catch_warnings():  # built on a machine without CUDA, torch warns that it would be disabled
        warnings.simplefilter("ignore", UserWarning)
        ctx = autocast("cuda")
    assert isinstance(ctx, torch.autocast) and ctx.fast_dtype == torch.bfloat16
