"""Sweeper: plan -> Ray Tune trials -> MLflow -> fit -> SweepResult.

    result = Sweeper(budget=3e12, space="tiny").run()
    result.fit.params, result.fit.ci, result.runs.frame

Everything fails fast: the config is validated and the plan is made before Ray
starts, so a mistyped key or a budget that cannot fill a slice costs nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sweeper.config import SweepConfig, load_config
from sweeper.faults import NO_HARNESS, Harness
from sweeper.plan import Plan, make_plan
from sweeper.results import RunTable


@dataclass(frozen=True, kw_only=True)
class SweepResult:
    sweep_id: str
    experiment_id: str
    parent_run_id: str
    tracking_uri: str
    fit: Any  # sweeper.fit.FitResult, or None when too few runs finished to fit
    runs: RunTable
    total_flops: float
    n_trials: int
    converged: bool
    stop_reason: str
    fits_per_target: dict[str, Any] = field(default_factory=dict)
    fit_error: str = ""  # why there is no fit, when there is none
    prediction: Any = None  # sweeper.fit.prediction.Prediction: N_opt, D_opt, loss at the target, or None
    prediction_error: str = ""  # why there is no prediction although there is a fit
    interrupted: bool = False  # stopped by SIGINT/SIGTERM: --resume continues it (stop_reason says how)

    @property
    def ci_halfwidth(self) -> dict[str, float]:
        if self.fit is None:
            return {}
        return {name: float(self.fit.ci_halfwidth(name)) for name in self.fit.ci}

    def to_dict(self) -> dict[str, Any]:
        return {
            "sweep_id": self.sweep_id,
            "experiment_id": self.experiment_id,
            "parent_run_id": self.parent_run_id,
            "tracking_uri": self.tracking_uri,
            "total_flops": self.total_flops,
            "n_trials": self.n_trials,
            "n_ok": int((self.runs.frame["status"] == "ok").sum()),
            "converged": self.converged,
            "stop_reason": self.stop_reason,
            "ci_halfwidth": self.ci_halfwidth,
            "fit": self.fit.to_dict() if self.fit is not None else None,
            "fit_error": self.fit_error or None,
            "fits_per_target": {t: f.to_dict() for t, f in self.fits_per_target.items()},
            "prediction": self.prediction.to_dict() if self.prediction is not None else None,
            "prediction_error": self.prediction_error or None,
            "interrupted": self.interrupted,
        }


class Sweeper:
    """The public entry point; keyword arguments override the search space."""

    def __init__(self, space: str = "tiny", *, harness: Harness = NO_HARNESS, **overrides: Any):
        self.config: SweepConfig = load_config(space, **overrides)
        self.harness = harness  # tests and benchmarks only: injected faults and delays (sweeper.faults)

    def plan(self) -> Plan:
        return make_plan(self.config)

    def run(self, *, sweep_id: str | None = None, progress=None) -> SweepResult:
        # Ray and MLflow load only when a sweep runs, not when the API is imported.
        from sweeper.execution import run_sweep
        from sweeper.library_logs import LibraryLogs
        from sweeper.progress import ConsoleProgress

        console = progress or ConsoleProgress()
        try:
            with LibraryLogs(kind="run") as logs:
                console(f"Ray and MLflow logs: {logs.path}")
                return run_sweep(
                    self.config, self.plan(), sweep_id=sweep_id, progress=console, harness=self.harness
                )
        finally:
            getattr(console, "close", lambda: None)()


def train_storage_path(storage_path: str | None) -> str:
    """Where distributed trials keep Ray Train checkpoints: `train_results` under ray.storage_path."""
    if storage_path and "://" in storage_path:
        return f"{storage_path.rstrip('/')}/train_results"
    return str((Path(storage_path) if storage_path else Path(".sweeper")).resolve() / "train_results")


def trial_config(cfg: SweepConfig, harness: Harness = NO_HARNESS) -> dict[str, Any]:
    """What every trial receives besides its point: the training recipe, the simulation law, a test's
    faults."""
    from sweeper.data.sources import for_trials
    from sweeper.tuning.recipe import recipe_spec

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
