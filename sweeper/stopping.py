"""When to stop: the online fitter (a Tune callback) and the ConvergenceStopper.

The online fitter refits the law from the MLflow-backed RunTable after every
finished trial and logs each refit to the parent run (compute spent, parameters,
CI half-widths), so the MLflow UI charts convergence. The stopper only reads
the refit history: the sampler decides where, the stopper decides when.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

from ray import tune

from sweeper.errors import SweeperInputError
from sweeper.tracking import DriverOnly


@dataclass(frozen=True, kw_only=True)
class Refit:
    n_runs: int
    flops_spent: float
    halfwidths: dict[str, float]
    fit: object = None


@dataclass(kw_only=True)
class RefitHistory:
    refits: list[Refit] = field(default_factory=list)
    flops_spent: float = 0.0  # every finished trial's compute, failed ones included

    def add(self, refit: Refit) -> None:
        self.refits.append(refit)


def converged(history: RefitHistory, *, watch: tuple[str, ...], target_ci: float, patience: int) -> bool:
    """Every watched half-width <= target_ci in each of the last `patience` refits."""
    recent = history.refits[-patience:]
    if len(recent) < patience:
        return False
    return all(
        math.isfinite(r.halfwidths.get(name, math.inf)) and r.halfwidths.get(name, math.inf) <= target_ci
        for r in recent
        for name in watch
    )


class ConvergenceStopper(DriverOnly, tune.Stopper):
    """Ends the whole sweep once converged or once the budget is spent; records why."""

    def __init__(self, history: RefitHistory, *, watch: tuple[str, ...], target_ci: float, patience: int, budget: float,
                 on_convergence: bool = True):
        self.history, self.watch, self.target_ci, self.patience, self.budget = history, watch, target_ci, patience, budget
        self.on_convergence = on_convergence  # False for the grid baseline: it runs every planned trial
        self.stop_reason = ""

    def __call__(self, trial_id: str, result: dict) -> bool:
        return False  # never cuts a single trial short: a half-trained point is a wrong point

    def stop_all(self) -> bool:
        if not self.stop_reason:
            if self.on_convergence and converged(self.history, watch=self.watch, target_ci=self.target_ci,
                                                 patience=self.patience):
                last = self.history.refits[-1].halfwidths
                shown = ", ".join(f"{k}={last[k]:.4f}" for k in self.watch)
                self.stop_reason = f"converged: CI half-widths {shown} <= {self.target_ci} for {self.patience} refits"
            elif self.history.flops_spent >= self.budget:
                self.stop_reason = f"budget exhausted: {self.history.flops_spent:.3g} of {self.budget:.3g} FLOPs"
        return bool(self.stop_reason)


FitFn = Callable[[object], object]  # RunTable of ok runs -> FitResult, or None if not identifiable


class OnlineFitter(DriverOnly, tune.Callback):
    """Refits after each finished trial from the RunTable that MLflow holds."""

    def __init__(self, *, history: RefitHistory, load_table: Callable[[], object], fit: FitFn,
                 watch: tuple[str, ...], log: Callable[[Refit, int], None] | None = None, min_runs: int = 6,
                 warn: Callable[[str], None] = print):
        self.history, self.load_table, self.fit = history, load_table, fit
        self.watch, self.log, self.min_runs, self.warn = watch, log, min_runs, warn

    def on_trial_complete(self, iteration, trials, trial, **info):
        result = trial.last_result or {}
        self.history.flops_spent += float(result.get("flops_spent", result.get("flops", 0.0)) or 0.0)
        self._safe_refit()

    def on_trial_error(self, iteration, trials, trial, **info):
        self._safe_refit()

    def _safe_refit(self) -> None:
        # The trial is already recorded in MLflow; a failed refit must not end the sweep.
        try:
            self.refit()
        except Exception as exc:  # noqa: BLE001 - reported, and the next trial refits again
            self.warn(f"online refit failed ({type(exc).__name__}: {exc}); continuing")

    def refit(self) -> Refit | None:
        table = self.load_table().ok()
        if len(table) < self.min_runs:
            return None
        if self.history.refits and len(table) == self.history.refits[-1].n_runs:
            return None  # a failed or diverged trial added no run: the same fit must not count twice
        try:
            fit = self.fit(table)
        except SweeperInputError:  # too few distinct sizes yet: wait for more runs
            fit = None
        if fit is None:
            return None
        halfwidths = {name: float(fit.ci_halfwidth(name)) for name in self.watch}
        refit = Refit(n_runs=len(table), flops_spent=self.history.flops_spent, halfwidths=halfwidths, fit=fit)
        self.history.add(refit)
        if self.log is not None:
            self.log(refit, len(self.history.refits))
        return refit
