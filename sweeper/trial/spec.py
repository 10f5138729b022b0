"""The driver-to-trial contract: a frozen TrialSpec, built once from the config and plan.

Ray Tune carries a trial's config as a plain dict (its param_space and searchers only deal in dicts), so
the driver builds the dict with `trial_config` and every reader turns it back into a TrialSpec with
`TrialSpec.of(config)`: the one place a trial's keys are read. The trainables and the driver's callbacks
read attributes; a key nobody declared fails there, with its name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from sweeper.config.schema import SweepConfig
from sweeper.trial.faults import NO_HARNESS, Harness

Section = Mapping[str, Any]


def section() -> Any:
    return field(default_factory=dict)


@dataclass(frozen=True)
class TrialSpec:
    point: Section = section()  # the planned (N, D) point (PlannedTrial.to_dict(), + "checkpoint")
    hparams: Section = section()  # the training section, before the recipe is applied
    recipe: Section = section()  # fixed / paper / fitted, with fitted laws inlined
    seed: int = 0
    source: str = "trained"  # or "simulated"
    sim: Section = section()  # the simulated trainable's law, params, noise and delay
    faults: Section = section()  # tests only: injected faults (sweeper.trial.faults)
    distributed: Section = section()  # the `distributed:` section
    data: Section | None = None  # the `data:` section, as trials open it
    train_storage_path: str = ""
    max_failures: int = 1
    branching: Section | None = None  # the snapshot store and each size's shared warmup
    # `sweeper tune` rungs: the sampled dimensions, the rung, ASHA's milestones and the simulated surface
    search: Section = section()
    rung: str | None = None
    cooled_eval_at: Section = section()
    tune_sim: Section = section()
    tasks: Section = section()  # the `tasks:` section: what the trained model is scored on at its end
    points: tuple = ()  # a branched size trial: every point of the size (trial.trainable.train_size_branched)

    @classmethod
    def of(cls, config: Mapping[str, Any]) -> TrialSpec:
        """The spec of Ray's trial config (the one boundary where its keys are read)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(config) - known)
        if unknown:
            raise TypeError(f"trial config has keys no TrialSpec field declares: {unknown}")
        return cls(**config)

    @property
    def point_id(self) -> str:
        return str(self.point.get("point_id", ""))

    @property
    def recipe_name(self) -> str:
        return str((self.recipe or {}).get("name", "fixed"))

    def hparam_values(self, spec=None) -> dict:
        """TrainHParams keyword arguments: the training section with the recipe applied at the point."""
        from sweeper.train.recipes import resolve_hparams

        return resolve_hparams(self.hparams, self.recipe, self.point, spec)

    def train_hparams(self, spec=None):
        """The trial's TrainHParams (one recipe resolution for every trainable)."""
        from sweeper.train.loop import TrainHParams

        return TrainHParams(**self.hparam_values(spec))


def train_storage_path(storage_path: str | None) -> str:
    """Where distributed trials keep Ray Train checkpoints: `train_results` under ray.storage_path."""
    if storage_path and "://" in storage_path:
        return f"{storage_path.rstrip('/')}/train_results"
    return str((Path(storage_path) if storage_path else Path(".sweeper")).resolve() / "train_results")


def trial_config(cfg: SweepConfig, harness: Harness = NO_HARNESS) -> dict[str, Any]:
    """What every trial receives besides its point, as the dict Ray carries (TrialSpec's fields)."""
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
        "tasks": cfg.tasks.model_dump(),
    }
