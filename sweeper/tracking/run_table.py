"""RunRecord / RunTable: the one schema between trials, MLflow and the fitter.

A RunRecord is what a finished trial is; MLflow stores it as a child run
(params for what was planned, metrics for what was measured, tags for
provenance). The fitter only ever sees a RunTable read back from MLflow, so a
restarted driver fits exactly what the record holds.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

TARGETS = ("caption", "interleaved", "text")
STATUSES = ("ok", "diverged", "failed", "stopped", "running")
LOSS_COLUMNS = ("loss",) + tuple(f"loss_{t}" for t in TARGETS)

# column -> (MLflow section, key, dtype). n_params is the count the law uses:
# non-embedding parameters, and the active ones for MoE; the total is kept beside it.
COLUMNS: dict[str, tuple[str, str, str]] = {
    "sweep_id": ("tags", "sweeper.sweep_id", "str"),
    "trial_id": ("run", "run_id", "str"),
    "point_id": ("tags", "sweeper.point_id", "str"),
    "model_kind": ("params", "kind", "str"),
    "size": ("params", "size", "str"),
    "n_params": ("params", "n_params", "float"),
    "n_params_total": ("params", "n_params_total", "float"),
    "n_tokens": ("params", "n_tokens", "float"),
    "budget": ("params", "budget", "float"),
    "flops": ("metrics", "flops", "float"),  # C of the (N, D) point, what the law uses
    "flops_spent": (
        "metrics",
        "flops_spent",
        "float",
    ),  # what the trial trained (less with cooldown branching)
    "loss": ("metrics", "loss", "float"),
    "loss_caption": ("metrics", "loss_caption", "float"),
    "loss_interleaved": ("metrics", "loss_interleaved", "float"),
    "loss_text": ("metrics", "loss_text", "float"),
    "status": ("tags", "sweeper.status", "str"),
    "seed": ("params", "seed", "float"),
    "source": ("tags", "source", "str"),
    "design": ("tags", "sweeper.design", "str"),
    "wall_time_s": ("metrics", "wall_time_s", "float"),
    "error": ("tags", "sweeper.error", "str"),
}


@dataclass(frozen=True, kw_only=True)
class RunRecord:
    sweep_id: str
    trial_id: str
    point_id: str
    model_kind: str
    size: str
    n_params: float
    n_params_total: float
    n_tokens: float
    flops: float
    budget: float
    losses: dict[str, float] = field(default_factory=dict)  # loss (avg) and loss_<target>
    status: str = "ok"
    seed: int = 0
    source: str = "trained"  # "trained" or "simulated"
    design: str = "grid"
    wall_time_s: float = float("nan")
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    error: str = ""

    def to_row(self) -> dict[str, Any]:
        row = {k: v for k, v in asdict(self).items() if k not in ("losses", "hyperparameters")}
        row.update({c: self.losses.get(c, np.nan) for c in LOSS_COLUMNS})
        return row


class RunTable:
    """A DataFrame of runs with the COLUMNS above; `.ok()` is what fits use."""

    def __init__(self, frame: pd.DataFrame):
        missing = [c for c in COLUMNS if c not in frame.columns]
        for c in missing:
            frame[c] = np.nan if COLUMNS[c][2] == "float" else ""
        self.frame = frame.reset_index(drop=True)

    @classmethod
    def from_records(cls, records: list[RunRecord]) -> RunTable:
        return cls(pd.DataFrame([r.to_row() for r in records], columns=list(COLUMNS)))

    @classmethod
    def from_mlflow(
        cls, *, experiment: str, tracking_uri: str | None = None, sweep_id: str | None = None
    ) -> RunTable:
        from sweeper.tracking.mlflow_runs import search_trial_runs  # mlflow import only when used

        return cls(
            frame_from_mlflow(
                search_trial_runs(experiment=experiment, tracking_uri=tracking_uri, sweep_id=sweep_id)
            )
        )

    def ok(self) -> RunTable:
        f = self.frame
        keep = (f["status"] == "ok") & np.isfinite(f["loss"].astype(float))
        return RunTable(f[keep].copy())

    def __len__(self) -> int:
        return len(self.frame)

    @property
    def total_flops(self) -> float:
        """Compute really spent: a branched trial counts only what it added to the shared stable run."""
        f = self.frame
        return float(np.nansum(f["flops_spent"].astype(float).fillna(f["flops"].astype(float))))

    def to_csv(self, path) -> None:
        self.frame.to_csv(path, index=False)


def frame_from_mlflow(runs: pd.DataFrame) -> pd.DataFrame:
    """Map `mlflow.search_runs` output (params.X, metrics.X, tags.X) onto COLUMNS."""
    out = pd.DataFrame(index=runs.index)
    for column, (section, key, dtype) in COLUMNS.items():
        source = key if section == "run" else f"{section}.{key}"
        if source in runs.columns:
            values = runs[source]
        else:
            values = pd.Series(np.nan if dtype == "float" else "", index=runs.index)
        if dtype == "float":
            out[column] = pd.to_numeric(values, errors="coerce").astype(float)
        else:
            out[column] = values.fillna("").astype(str)
    # downstream tasks (task.<name>.accuracy, .loss, ...) and bits per byte ride along: the two-step
    # task law and `--target bpb` fit them; their names are the tasks'
    for source in runs.columns:
        if source.startswith(("metrics.task.", "metrics.bpb")):
            out[source.removeprefix("metrics.")] = pd.to_numeric(runs[source], errors="coerce").astype(float)
    return out


def load_run_table(
    *, experiment: str, tracking_uri: str | None = None, sweep_id: str | None = None
) -> RunTable:
    return RunTable.from_mlflow(experiment=experiment, tracking_uri=tracking_uri, sweep_id=sweep_id)


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
    task_predictions: dict[str, Any] = field(default_factory=dict)  # name -> fit.two_step.TaskPrediction

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
            "task_predictions": {name: p.to_dict() for name, p in self.task_predictions.items()},
        }
