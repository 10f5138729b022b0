"""Where a single-process trial trains: the device its Ray reservation gives it.

A trial that reserved GPUs (Ray assigned it GPU ids) trains on CUDA in bf16 autocast with
fused AdamW. One that reserved none trains on the CPU, as before. One that reserved a GPU
and cannot see it fails with a message saying so: training on the CPU instead would hold a
GPU idle and take days without anyone noticing. The DeepSpeed path picks its own device
(sweeper.train.distributed) and does not use this.
"""

from __future__ import annotations

import os


class ReservedGPUMissing(RuntimeError):
    """The trial reserved GPUs and torch sees none: fail it, never fall back to the CPU."""


def choose_device(gpus_reserved: int, cuda_available: bool, *, detail: str = "") -> str:
    """'cuda' with GPUs reserved and visible, 'cpu' with none reserved; raise when reserved but not
    visible."""
    if gpus_reserved <= 0:
        return "cpu"
    if cuda_available:
        return "cuda"
    raise ReservedGPUMissing(
        f"this trial reserved {gpus_reserved} GPU(s) (ray.gpus_per_trial) but torch sees no CUDA device"
        f"{' (' + detail + ')' if detail else ''}; install a CUDA build of torch on the workers and check "
        "the driver (nvidia-smi), or --set ray.gpus_per_trial=0 to train on CPU"
    )


def reserved_gpu_ids() -> list:
    """GPU ids Ray assigned to this worker ([] outside a Ray worker or with none reserved)."""
    import ray

    if not ray.is_initialized():
        return []
    try:
        return list(ray.get_gpu_ids())
    except Exception:  # noqa: BLE001  # not a Ray worker (the driver): nothing reserved
        return []


def trial_device() -> str:
    """The device of this trial's reservation (see choose_device)."""
    import torch

    ids = reserved_gpu_ids()
    detail = (
        f"Ray assigned GPU ids {ids}, CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES')!r}, "
        f"torch {torch.__version__} built for CUDA {torch.version.cuda}"
    )
    return choose_device(len(ids), torch.cuda.is_available(), detail=detail)


def autocast(device: str):
    """bf16 autocast on CUDA; nothing on the CPU (fp32 there, as the tests and the tiny ladder expect)."""
    import contextlib

    import torch

    if str(device).startswith("cuda"):
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()
