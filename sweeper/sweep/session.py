"""The sweep session: what happens on the driver when a trial starts, finishes or fails.

One object updates the ledger, refits the law from the ledger's runs (in memory,
so an MLflow outage cannot stall the stop decision), logs each refit, and prints
the trial's line. Ray Tune reaches it through SessionCallback; the in-process
driver for simulated sweeps (sweeper.sweep.in_process) calls it directly. MLflow
writes go through the TrialRecorder, which holds no sweep state, so the order of
the two callbacks does not matter.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd
from ray import tune

from sweeper.errors import SweeperInputError
from sweeper.fit import SearchSettings, fit_law, get_law
from sweeper.fit.derived import trainable_optimum
from sweeper.fit.two_step import fit_two_step
from sweeper.samplers.frontier import EXPONENTS, fisher_halfwidths
from sweeper.sweep.ledger import Refit, SweepLedger, widened_for_stopping
from sweeper.tracking.mlflow_runs import DriverOnly
from sweeper.trial.spec import TrialSpec

# The bootstrap costs ~50x a point fit; it runs once the linearised (Fisher) half-widths
# are within this factor of the target, so a sweep far from converging refits cheaply.
SCREEN = 2.0
# A refit starts from the previous optimum, except every FRESH_SEARCH-th one (and any after an
# unidentified fit), which searches the whole start grid again in case the optimum changed basin.
FRESH_SEARCH = 10

FitFn = Callable[..., object]  # (ok runs, n_bootstrap, previous FitResult or None) -> FitResult


def online_fit(cfg):
    """The refit after each trial (the session decides when to bootstrap and when to search afresh):
    from the coarse start grid, or from the previous refit's optimum alone. One more run moves the
    optimum a little, and a single warm start costs a tenth of the grid."""
    law = get_law(cfg.fit.law)

    def fit(frame, n_bootstrap: int, previous=None):
        warm = previous is not None and previous.identified and previous.law == law.name
        return fit_law(
            frame,
            law=law,
            target=cfg.fit.target,
            n_bootstrap=n_bootstrap,
            seed=cfg.seed,
            target_compute=cfg.fit.target_compute,
            grid=[law.to_theta(previous.params)] if warm else "coarse",
            settings=SearchSettings(keep=1, n_polish=1) if warm else None,
        )

    return fit


def sweep_session(ledger: SweepLedger, cfg, **extra) -> SweepSession:
    """The session of a sweep config (the driver's, and the forecast's simulated sweeps)."""
    return SweepSession(
        ledger,
        fit=online_fit(cfg),
        n_bootstrap=cfg.fit.n_bootstrap,
        law=cfg.fit.law,
        target_compute=cfg.fit.target_compute,
        **extra,
    )


class SweepSession:
    def __init__(
        self,
        ledger: SweepLedger,
        *,
        fit: FitFn,
        n_bootstrap: int,
        law: str = "chinchilla",
        log_refit: Callable[[Refit, int], None] | None = None,
        printer=None,
        warn: Callable[[str], None] = print,
        min_runs: int = 6,
        target_compute: float | None = None,
    ):
        self.ledger, self.fit, self.n_bootstrap, self.law = ledger, fit, n_bootstrap, law
        self.target_compute = target_compute  # where a watched log_L_opt predicts
        self.log_refit, self.printer, self.warn, self.min_runs = log_refit, printer, warn, min_runs

    # What the adaptive searcher asks (samplers.searcher.Budget): it commits compute through here.
    @property
    def remaining(self) -> float:
        return self.ledger.remaining

    def stop_reason(self) -> str:
        return self.ledger.stop_reason()

    def commit(self, trial_id: str, point_id: str, cost: float) -> None:
        self.ledger.start(trial_id, point_id, cost)

    def no_candidate(self, reason: str) -> None:
        self.ledger.exhausted = self.ledger.exhausted or reason

    def started(self, trial_id: str, point: dict) -> None:
        self.ledger.start(trial_id, point["point_id"], float(point.get("flops", 0.0)))

    def finished(self, trial_id: str, point: dict, result: dict) -> None:
        if self.ledger.finish(trial_id, point, result):
            self._safe_refit()
        self._print(point, result, result.get("status", "ok"))

    def failed(self, trial_id: str, point: dict) -> None:
        self.ledger.fail(trial_id)
        self._print(point, {}, "failed")

    def _task_halfwidths(self, frame: pd.DataFrame) -> dict[str, float]:
        """Watched task accuracies' half-widths, widened like the fit's (the stop selects them too)."""
        watched = [w for w in self.ledger.rule.watch if w.startswith("task.")]
        if not watched:
            return {}
        widths = task_halfwidths(frame, watched, self.target_compute, self.n_bootstrap)
        return {k: v * self.ledger.rule.ci_widening for k, v in widths.items()}

    def _print(self, point: dict, result: dict, status: str) -> None:
        if self.printer is not None:
            self.printer.trial_finished(point["point_id"], result.get("loss"), status, self.ledger)

    def _safe_refit(self) -> None:
        # The trial is recorded already; a refit that fails must not end the sweep.
        try:
            self.refit()
        except Exception as exc:  # noqa: BLE001 - said once per failure, and the next trial refits
            self.warn(f"online refit failed ({type(exc).__name__}: {exc}); continuing")

    def refit(self) -> Refit | None:
        ledger = self.ledger
        if len(ledger.runs) < self.min_runs:
            return None
        frame = ledger.frame()
        try:
            previous = ledger.latest_fit() if len(ledger.refits) % FRESH_SEARCH else None
            quick = self.fit(frame, 0, previous)
        except SweeperInputError:  # too few runs for the law's parameters yet
            return None
        widths = screened_halfwidths(quick, frame, ledger.rule.watch, self.law, self.target_compute)
        near = quick.identified and all(w <= SCREEN * ledger.rule.limit(name) for name, w in widths.items())
        if near and self.n_bootstrap > 0:
            fit = self.fit(frame, self.n_bootstrap, quick)
            fit = widened_for_stopping(fit, ledger.rule.ci_widening)  # a stop decision may rest on them
            widths = {w: float(fit.ci_halfwidth(w)) for w in ledger.rule.watch}
            widths.update(self._task_halfwidths(frame))
            refit = Refit(n_runs=len(frame), flops_spent=ledger.spent, fit=fit, halfwidths=widths)
        else:
            refit = Refit(
                n_runs=len(frame), flops_spent=ledger.spent, fit=quick, halfwidths=widths, bootstrapped=False
            )
        ledger.refits.append(refit)  # the stop decision has it now, whatever happens to the log below
        if self.log_refit is not None:
            try:
                self.log_refit(refit, len(ledger.refits))
            except Exception as exc:  # noqa: BLE001 - MLflow down: the refit still counts, its chart misses a point
                self.warn(
                    f"refit {len(ledger.refits)} not logged to MLflow ({type(exc).__name__}); continuing"
                )
        return refit


def task_halfwidths(frame: pd.DataFrame, watched, target_compute, n_bootstrap: int) -> dict[str, float]:
    """Half-widths of watched task accuracies (task.<name>.accuracy): the two-step prediction's
    interval at the target (sweeper.fit.two_step); inf where it gives none it vouches for."""
    out = {}
    for name in watched:
        loss_column = name.removesuffix(".accuracy") + ".loss"
        if name not in frame or loss_column not in frame:
            out[name] = math.inf
            continue
        rows = frame[np.isfinite(frame[name].astype(float)) & np.isfinite(frame[loss_column].astype(float))]
        try:
            target = {"compute": target_compute} if target_compute else None
            p = fit_two_step(rows, name, target, loss_column=loss_column, n_boot=max(n_bootstrap, 50))
        except SweeperInputError:
            out[name] = math.inf
            continue
        ci = p.ci.get("accuracy")
        out[name] = 0.5 * (ci[1] - ci[0]) if ci and p.trusted else math.inf
    return out


def screened_halfwidths(
    fit, frame: pd.DataFrame, watch, law: str, target_compute: float | None = None
) -> dict[str, float]:
    """Delta-method half-widths of the watched exponents, and of log_L_opt at `target_compute`;
    inf where the fit identifies nothing, 0 for watched quantities the linearisation does not
    cover (the bootstrap decides those)."""
    if not fit.identified:
        return {w: math.inf for w in watch}
    exponents = [w for w in watch if w in EXPONENTS]
    widths = {w: 0.0 for w in watch}
    predict_at = None
    if "log_L_opt" in watch and target_compute and "K_a" in fit.derived:
        optimum = np.column_stack(
            trainable_optimum(get_law(law), fit.params, fit.derived, frame, target_compute)
        )
        if np.all(np.isfinite(optimum)):
            predict_at = optimum
        else:  # no optimum the fit can name: nothing pins the prediction down
            widths["log_L_opt"] = math.inf
    if (exponents or predict_at is not None) and {"alpha", "beta"} <= set(fit.params):
        n, d = frame["n_params"].to_numpy(float), frame["n_tokens"].to_numpy(float)
        widths.update(
            fisher_halfwidths(
                get_law(law),
                fit.params,
                n,
                d,
                np.log(frame["loss"].to_numpy(float)),
                exponents,
                predict_at=predict_at,
            )
        )
    return widths


class SessionCallback(DriverOnly, tune.Callback):
    """Ray Tune's trial events, handed to the session."""

    def __init__(self, session: SweepSession):
        self.session = session

    def on_trial_start(self, iteration, trials, trial, **info):
        self.session.started(trial.trial_id, TrialSpec.of(trial.config).point)

    def on_trial_complete(self, iteration, trials, trial, **info):
        self.session.finished(trial.trial_id, TrialSpec.of(trial.config).point, trial.last_result or {})

    def on_trial_error(self, iteration, trials, trial, **info):
        self.session.failed(trial.trial_id, TrialSpec.of(trial.config).point)
