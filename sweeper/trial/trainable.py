"""The Ray Tune trainable that really trains: one (N, D) point per trial.

It only trains: which point it gets (grid, adaptive sampler, resume) is decided
elsewhere, and the driver's TrialRecorder turns its reports into MLflow runs.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import torch
from ray import tune

from sweeper.train.recipes import hparams_from

STATE_FILE = "train_state.pt"


def load_state(checkpoint) -> dict | None:
    """The training state in a trial checkpoint this trial wrote (tensors only: no arbitrary unpickling)."""
    if checkpoint is None:
        return None
    with checkpoint.as_directory() as directory:
        path = Path(directory) / STATE_FILE
        return torch.load(path, weights_only=True, map_location="cpu")


def stopped_checkpoint(point: dict):
    return tune.Checkpoint.from_directory(point["checkpoint"]) if point.get("checkpoint") else None


def is_distributed(config: dict, spec) -> bool:
    """Large enough for the TorchTrainer + DeepSpeed path (see the `distributed:` section)."""
    section = config.get("distributed") or {}
    if not section.get("enabled"):
        return False  # no DeepSpeed import on the single-process path
    from sweeper.train.distributed import settings_from, use_distributed

    return use_distributed(spec, settings_from(section))


def train_point(config: dict) -> None:
    """Train the model of `config['point']` for exactly its planned tokens."""
    from models.registry import at_mixture, point_spec
    from sweeper.train.device import trial_device
    from sweeper.train.loop import train
    from sweeper.trial.faults import inject

    point = config["point"]
    spec = point_spec(point)
    if is_distributed(config, spec):
        from sweeper.train.distributed import train_point_distributed

        return train_point_distributed(config)
    # Threads: train() takes Ray's OMP_NUM_THREADS, which Ray sets to the trial's CPUs.
    device = trial_device()  # the GPU Ray assigned, or the CPU; a reserved GPU torch cannot see fails here
    started = time.perf_counter()
    faults = config.get("faults", {})

    def report(metrics: dict, state: dict | None = None) -> None:
        if state is None:
            tune.report(dict(metrics))
        else:
            with tempfile.TemporaryDirectory(prefix="sweeper-ckpt-") as directory:
                torch.save(state, Path(directory) / STATE_FILE)
                tune.report(dict(metrics), checkpoint=tune.Checkpoint.from_directory(directory))
        inject(faults, point["point_id"])  # mid-training, after the first evaluation (tests only)

    # Tune's checkpoint when it retries this trial after a crash; else the last one of the trial that an
    # interrupted sweep stopped (--resume, sweeper.sweep.interruption)
    resume = load_state(tune.get_checkpoint() or stopped_checkpoint(point))
    hp, seed, n_tokens = hparams_from(config), int(config.get("seed", 0)), int(point["n_tokens"])
    spec = at_mixture(
        spec, hp.mixture
    )  # FLOPs estimates at this trial's mixture; train() counts the real ones
    branching, extra = config.get("branching"), {}
    if branching:  # a cooldown off the shared stable run of this size (sweeper.train.branching)
        from sweeper.train.branching import train_point_branched

        result, extra = train_point_branched(
            spec,
            hp,
            n_tokens=n_tokens,
            seed=seed,
            store_root=branching["store"],
            warmup_steps=branching["warmup_steps"][f"{point['kind']}/{point['size']}"],
            report=report,
            checkpoint=report,
            resume=resume,
            device=device,
            data=config.get("data"),
        )
    else:
        result = train(
            spec,
            hp,
            n_tokens=n_tokens,
            seed=seed,
            report=report,
            checkpoint=report,
            resume=resume,
            device=device,
            data=config.get("data"),
        )
    tune.report(
        {
            **result.final_report(),
            "wall_time_s": time.perf_counter() - started,
            "resumed_from_step": int(resume["step"]) if resume else 0,
            "device": device,
            **extra,  # with branching: branch_step, stable_from_step, flops_spent
            **{k: v for k, v in result.extra.items() if isinstance(v, (int, float))},
        }
    )
