"""What every trial receives besides its point (the driver-to-trial contract): the training recipe, the
simulation law, a test's faults, the data section and where distributed trials checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sweeper.config.schema import SweepConfig
from sweeper.trial.faults import NO_HARNESS, Harness


def train_storage_path(storage_path: str | None) -> str:
    """Where distributed trials keep Ray Train checkpoints: `train_results` under ray.storage_path."""
    if storage_path and "://" in storage_path:
        return f"{storage_path.rstrip('/')}/train_results"
    return str((Path(storage_path) if storage_path else Path(".sweeper")).resolve() / "train_results")


def trial_config(cfg: SweepConfig, harness: Harness = NO_HARNESS) -> dict[str, Any]:
    """What every trial receives besides its point: the training recipe, the simulation law, a test's
    faults."""
    from sweeper.data.sources import for_trials
    from sweeper.train.recipes import recipe_spec

    # hparams carries recipe/recipe_run, so every trial's MLflow run records them (hp.recipe);
    # "recipe" holds what the trainable needs to apply it per point (fitted laws inlined).
    return {
        "hparams": cfg.training.model_dump(),
        "recipe": recipe_spec(cfg),
        "seed": cfg.seed,
        "source": "simulated" if cfg.trainable == "simulated" else "trained",
        "sim": {
            "law": cfg.simulation.law,
            "params": dict(cfg.simulation.params),
            "noise": cfg.simulation.noise,
            "delay_s": harness.delay_s,
        },
        "faults": harness.faults(),
        "distributed": cfg.distributed.model_dump(),
        "data": for_trials(cfg.data.model_dump()),
        "train_storage_path": train_storage_path(cfg.ray.storage_path),
        "max_failures": cfg.ray.max_failures,  # also the worker-group restarts of a distributed trial
    }
