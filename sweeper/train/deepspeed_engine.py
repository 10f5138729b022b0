"""DeepSpeed ZeRO-k setup for one Ray Train worker.

The optimiser is the shared loop's torch AdamW (`make_optimizer`), handed to
`deepspeed.initialize`: the same decoupled weight decay and per-group peak LR
as the single-process path, and no fused/CPU-Adam C++ op to JIT-build (that
build costs 30-60 s on a CPU the first time). DeepSpeed only shards it.

Precision: bf16 on GPU, fp32 on CPU (gloo). The global batch in sequences is
the recipe's `batch_size`; DeepSpeed reaches it as
micro_batch x grad_accum x world_size.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

TAG = "state"  # one tag per checkpoint directory: each Ray Train checkpoint is its own directory


@dataclass(frozen=True, kw_only=True)
class ZeroSettings:
    stage: int  # 0 (plain data parallel) ... 3 (parameters sharded too)
    micro_batch: int  # sequences per worker per forward/backward
    grad_accum: int
    world_size: int
    grad_clip: float
    bf16: bool

    def __post_init__(self) -> None:
        if self.stage not in (0, 1, 2, 3):
            raise ValueError(f"zero_stage={self.stage!r}: DeepSpeed ZeRO stages are 0, 1, 2 or 3")
        if min(self.micro_batch, self.grad_accum, self.world_size) < 1:
            raise ValueError(f"micro_batch, grad_accum and world_size must be >= 1, got {self}")

    @property
    def global_batch(self) -> int:
        return self.micro_batch * self.grad_accum * self.world_size


def prepare_environment() -> None:
    """Before importing deepspeed: CPU accelerator without CUDA; op builds cached in one place."""
    if not torch.cuda.is_available():
        os.environ.setdefault("DS_ACCELERATOR", "cpu")
    os.environ.setdefault(
        "TORCH_EXTENSIONS_DIR", str(Path.home() / ".cache" / "sweeper" / "torch_extensions")
    )


def deepspeed_config(z: ZeroSettings) -> dict:
    zero: dict = {"stage": z.stage}
    if z.stage >= 2:
        zero.update(overlap_comm=False, contiguous_gradients=True)
    if z.stage == 3:
        # Tiny models: gather every parameter every time instead of prefetch heuristics.
        zero.update(stage3_param_persistence_threshold=0, stage3_prefetch_bucket_size=0)
    return {
        "train_micro_batch_size_per_gpu": z.micro_batch,
        "gradient_accumulation_steps": z.grad_accum,
        "train_batch_size": z.global_batch,
        "gradient_clipping": z.grad_clip,
        "zero_optimization": zero,
        "zero_allow_untested_optimizer": True,  # torch AdamW: see the module docstring
        "bf16": {"enabled": z.bf16},
        "fp16": {"enabled": False},
        "steps_per_print": 10**9,
        "wall_clock_breakdown": False,
    }


def initialize(model: torch.nn.Module, optimizer: torch.optim.Optimizer, z: ZeroSettings):
    """The DeepSpeed engine over an already initialised torch.distributed process group."""
    prepare_environment()
    import importlib

    import deepspeed

    # importlib, not `import deepspeed.comm.torch as m`: the package's global `torch` shadows the submodule.
    ds_torch_comm = importlib.import_module("deepspeed.comm.torch")

    # DeepSpeed's CPU shared-memory allreduce is an inference fast path: building it
    # JIT-compiles a C++ op (~1 min) on first use; training reduces through gloo/NCCL.
    ds_torch_comm.build_shm_op = lambda: None
    engine, _, _, _ = deepspeed.initialize(
        model=model, optimizer=optimizer, config=deepspeed_config(z), dist_init_required=False
    )
    return engine


def save(engine, directory: str | os.PathLike, client_state: dict) -> None:
    """Every rank calls this: ZeRO shards are written per rank into `directory`."""
    engine.save_checkpoint(str(directory), tag=TAG, client_state=client_state)


def load(engine, directory: str | os.PathLike) -> dict:
    """Restore model, optimiser shards and LR state; returns the client state saved with them."""
    _, client_state = engine.load_checkpoint(
        str(directory), tag=TAG, load_optimizer_states=True, load_lr_scheduler_states=False
    )
    return client_state or {}
