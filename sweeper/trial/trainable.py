"""The Ray Tune trainable that really trains: one (N, D) point per trial.

It only trains: which point it gets (grid, adaptive sampler, resume) is decided
elsewhere, and the driver's TrialRecorder turns its reports into MLflow runs.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import torch
from ray import tune

from models.registry import at_mixture, get_model_spec, point_spec
from sweeper.train.branching import train_branched, train_point_branched
from sweeper.train.device import trial_device
from sweeper.train.loop import train
from sweeper.trial.faults import inject
from sweeper.trial.spec import TrialSpec

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


def is_distributed(trial: TrialSpec, spec) -> bool:
    """Large enough for the TorchTrainer + DeepSpeed path (see the `distributed:` section)."""
    section = trial.distributed or {}
    if not section.get("enabled"):
        return False  # no DeepSpeed import on the single-process path
    from sweeper.train.distributed import settings_from, use_distributed

    return use_distributed(spec, settings_from(section))


def train_point(config: dict) -> None:
    """Train the model of the trial's point for exactly its planned tokens."""
    trial = TrialSpec.of(config)
    point = trial.point
    spec = point_spec(point)
    if is_distributed(trial, spec):
        return run_distributed(trial)
    # Threads: train() takes Ray's OMP_NUM_THREADS, which Ray sets to the trial's CPUs.
    device = trial_device()  # the GPU Ray assigned, or the CPU; a reserved GPU torch cannot see fails here
    started = time.perf_counter()
    faults = trial.faults

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
    hp, seed, n_tokens = trial.train_hparams(), int(trial.seed), int(point["n_tokens"])
    spec = at_mixture(
        spec, hp.mixture
    )  # FLOPs estimates at this trial's mixture; train() counts the real ones
    branching, extra = trial.branching, {}
    # the same run either way: a branch off the size's shared stable run, or a run of its own
    common = dict(
        n_tokens=n_tokens, seed=seed, report=report, checkpoint=report, resume=resume, device=device
    )
    common.update(data=trial.data, tasks=trial.tasks)
    if branching:  # a cooldown off the shared stable run of this size (sweeper.train.branching)
        result, extra = train_point_branched(
            spec,
            hp,
            store_root=branching["store"],
            warmup_steps=branching["warmup_steps"][f"{point['kind']}/{point['size']}"],
            **common,
        )
    else:
        result = train(spec, hp, **common)
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


def train_point_distributed(config: dict) -> None:
    """Tune function trainable: the trial's point through TorchTrainer + DeepSpeed, whatever its size."""
    run_distributed(TrialSpec.of(config))


def run_distributed(trial: TrialSpec) -> None:
    """One TorchTrainer run of the trial's point inside its Tune trial; metrics flow back to Tune."""
    from ray.tune.integration.ray_train import TuneReportCallback

    from sweeper.train.distributed import make_trainer, settings_from

    started = time.perf_counter()
    storage = trial.train_storage_path or os.path.expanduser("~/ray_results/sweeper-train")
    context = tune.get_context()
    name = "".join(
        c if c.isalnum() or c in "-_." else "_"
        for c in f"{context.get_experiment_name()}-{context.get_trial_id()}-{trial.point_id}"
    )
    loop_config = {
        "point": dict(trial.point),
        "hparams": dict(trial.hparams),
        "recipe": dict(trial.recipe),  # fitted laws inlined: workers need no MLflow
        "seed": trial.seed,
        "max_failures": trial.max_failures,
        "tasks": dict(trial.tasks),
    }
    result = make_trainer(
        loop_config,
        settings_from(trial.distributed),
        storage_path=storage,
        name=name,
        callbacks=[TuneReportCallback()],
    ).fit()
    final = dict(result.metrics or {})
    final["wall_time_s"] = time.perf_counter() - started
    final.setdefault("status", "failed" if result.error else "ok")
    tune.report(final)


def train_size_branched(config: dict) -> None:
    """Tune function trainable: one size's stable run + every branch in the trial's `points`.

    Each branch's final result is reported with its `point_id` (and `branch_final: 1`),
    so the driver can log one MLflow run per (N, D) point from one trial.
    """
    trial = TrialSpec.of(config)
    points, hp = trial.points, trial.train_hparams()
    spec = at_mixture(get_model_spec(points[0]["kind"], points[0]["size"]), hp.mixture)
    results = train_branched(
        spec,
        hp,
        [(p["point_id"], int(p["n_tokens"])) for p in points],
        seed=int(trial.seed),
        report=lambda pid, m: tune.report({**m, "point_id": pid}),
    )
    for pid, r in results.items():
        tune.report(
            {
                **r.final_report(),
                "point_id": pid,
                "branch_final": 1,
                "equivalent_flops": r.extra["equivalent_flops"],
                "branch_step": r.extra["branch_step"],
            }
        )
