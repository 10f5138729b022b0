"""Backtest on held-out compute: refit each law form without the top slice(s), predict them.

In-sample residuals of a wrong law form look like noise; its extrapolation does not. The top
slices are the nearest thing to the compute a prediction is for, so how each form predicts them
from the rest weighs the forms (sweeper.fit.prediction) and says when none of them extrapolates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.stats import chi2 as chi_square

from sweeper.fit.derived import compute_of
from sweeper.fit.identify import log_predictions
from sweeper.fit.isoflop import slice_keys
from sweeper.fit.multistart import SearchSettings, find_optimum
from sweeper.fit.registry import get_law

HELD_OUT_SHARE = 0.15  # at least this share of the runs is held out (the top slices, whole)
MIN_HELD_IN = 0.6  # ... and at least this share stays in to fit
# A form predicts the held-out slices "within noise" when its misses, in units of what the noise and the
# held-in fit's own uncertainty explain (a Mahalanobis chi-square), stay under this quantile of their
# chi-square.
PASS_QUANTILE = 0.995
# The fitter's Huber loss (clipped at a fraction of the noise) has ~1.4x the variance of least squares.
HUBER_VARIANCE = 1.5


@dataclass(frozen=True)
class Backtest:
    residuals: dict[str, np.ndarray] = field(default_factory=dict)  # form -> log predicted - log observed
    spread: dict[str, np.ndarray] = field(default_factory=dict)  # form -> held-in fit's prediction covariance
    held_in_top: float = math.nan  # largest compute fitted
    held_out_compute: float = math.nan  # geometric mean compute of the held-out runs
    sigma: float = math.nan  # the noise, from the best held-in fit (the held-out runs cannot inflate it)

    @property
    def n_out(self) -> int:
        return len(next(iter(self.residuals.values()))) if self.residuals else 0

    def _covariance(self, name: str, sigma: float) -> np.ndarray:
        """What noise and the held-in fit's uncertainty explain of the misses (per unit of noise variance)."""
        r = self.residuals[name]
        return np.eye(len(r)) + self.spread.get(name, np.zeros((len(r), len(r))))

    def chi2(self, name: str, sigma: float) -> float:
        """The held-out misses as a Mahalanobis chi-square (inf: the form could not be refitted)."""
        r = self.residuals.get(name)
        if r is None:
            return 0.0 if not self.residuals else math.inf
        z = r / sigma
        return float(z @ np.linalg.solve(self._covariance(name, sigma), z))

    def within_noise(self, name: str, sigma: float) -> bool:
        return name in self.residuals and self.chi2(name, sigma) <= chi_square.ppf(PASS_QUANTILE, self.n_out)

    def bias_sd(self, name: str, sigma: float) -> float:
        """The standard deviation of the mean miss that noise and the held-in fit explain."""
        n = self.n_out
        return sigma * math.sqrt(float(np.sum(self._covariance(name, sigma)))) / n

    def every_form_misses(self, sigma: float) -> str:
        """Words for the case no form predicts the held-out slices within noise; '' otherwise."""
        if not self.residuals or any(self.within_noise(n, sigma) for n in self.residuals):
            return ""
        best = min(self.residuals, key=lambda n: self.chi2(n, sigma))
        miss = 100 * (math.exp(abs(float(np.mean(self.residuals[best])))) - 1)
        return (
            f"the losses bend away from every law form at the top budget (the closest, {best}, misses "
            f"the held-out slices by {miss:.2g}%, noise {100 * sigma:.2g}%): extrapolation not trusted"
        )

    def extrapolation_miss(self, weights: np.ndarray, names, sigma: float, compute: float | None) -> float:
        """The weighted forms' held-out bias beyond what noise and fit uncertainty explain (2 sd), in log
        loss, scaled by how much farther the target lies (in log compute) than the held-out slices did."""
        if not self.residuals or not compute or not math.isfinite(self.held_in_top):
            return 0.0
        excess = 0.0
        for name, w in zip(names, weights):
            if name in self.residuals:
                miss = abs(float(np.mean(self.residuals[name])))
                excess += w * max(0.0, miss - 2.0 * self.bias_sd(name, sigma))
        reach = math.log(self.held_out_compute / self.held_in_top)
        scale = max(1.0, math.log(compute / self.held_in_top) / reach) if reach > 0 else 1.0
        return excess * scale

    def summary(self, name: str) -> dict | None:
        r = self.residuals.get(name)
        if r is None:
            return None
        return {
            "mean_log_error": float(np.mean(r)),
            "rms_log_error": float(np.sqrt(np.mean(r**2))),
            "n_held_out": len(r),
        }


def log_prediction_jacobian(law, design: dict, theta: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """(R, P): d log L / d theta at each run of `design`, by forward differences."""
    steps = theta[None, :] + eps * np.eye(len(theta))
    log_l = log_predictions(law, design, np.vstack([theta[None, :], steps]))  # (1 + P, R)
    return ((log_l[1:] - log_l[0]) / eps).T


def prediction_spread(law, design_in: dict, design_out: dict, theta: np.ndarray) -> np.ndarray:
    """The held-out predictions' covariance from the held-in fit's parameter uncertainty, in units of the
    noise variance: J_out (J_in^T J_in)^+ J_out^T, linearised, times the Huber estimator's variance factor.
    Flat directions of the held-in fit (a term switched off) are left out by the pseudo-inverse."""
    with np.errstate(all="ignore"):
        j_in = log_prediction_jacobian(law, design_in, theta)
        j_out = log_prediction_jacobian(law, design_out, theta)
    if not (np.all(np.isfinite(j_in)) and np.all(np.isfinite(j_out))):
        return np.zeros((j_out.shape[0], j_out.shape[0]))
    cov = np.linalg.pinv(j_in.T @ j_in, rcond=1e-10, hermitian=True)
    return HUBER_VARIANCE * j_out @ cov @ j_out.T


def held_out_mask(frame: pd.DataFrame, n_theta: int) -> np.ndarray | None:
    """The runs of the top slices (at least HELD_OUT_SHARE of the runs), or None when holding them
    out would leave too little to fit (fewer than 2 slices, MIN_HELD_IN of the runs or n_theta + 2)."""
    keys = slice_keys(frame)
    budgets = np.unique(keys)[::-1]
    if len(budgets) < 3:
        return None
    mask = np.zeros(len(frame), dtype=bool)
    for budget in budgets[:-2]:
        mask |= keys == budget
        if mask.sum() >= max(3, HELD_OUT_SHARE * len(frame)):
            break
    held_in = int((~mask).sum())
    if held_in < max(MIN_HELD_IN * len(frame), n_theta + 2) or mask.sum() < 2:
        return None
    return mask


def backtest_forms(frame: pd.DataFrame, y: np.ndarray, fits) -> Backtest:
    """Each form refitted on the runs below the top slices, and its log misses there. The refits start
    from the form's optima on all the runs: dropping a slice moves the optimum, not its basin."""
    mask = held_out_mask(frame, max(len(f.theta) for f in fits))
    if mask is None:
        return Backtest()
    inside, outside = frame[~mask].reset_index(drop=True), frame[mask].reset_index(drop=True)
    residuals, spread, sigmas = {}, {}, []
    for fit in fits:
        law = get_law(fit.name)
        design = law.design(inside)
        opt = find_optimum(
            law, inside, y[~mask], fit.local_optima, SearchSettings(keep=4, n_polish=1), design=design
        )
        params = law.to_params(opt.theta, design)
        pred = law.predict(params, outside["n_params"].to_numpy(float), outside["n_tokens"].to_numpy(float))
        fitted = law.predict(params, inside["n_params"].to_numpy(float), inside["n_tokens"].to_numpy(float))
        sigmas.append(residual_sigma(np.log(fitted) - y[~mask], len(opt.theta)))
        r = np.log(pred) - y[mask]
        if np.all(np.isfinite(r)):
            residuals[fit.name] = r
            spread[fit.name] = prediction_spread(law, design, law.design(outside), opt.theta)
    c = compute_of(frame)
    finite = [v for v in sigmas if math.isfinite(v)]
    return Backtest(
        residuals=residuals,
        spread=spread,
        held_in_top=float(np.max(c[~mask])),
        held_out_compute=float(np.exp(np.mean(np.log(c[mask])))),
        sigma=max(min(finite), 1e-6) if finite else math.nan,
    )


def residual_sigma(residuals: np.ndarray, n_theta: int) -> float:
    """The residuals' standard deviation per degree of freedom."""
    return math.sqrt(float(np.sum(residuals**2)) / max(1, len(residuals) - n_theta))


def noise_sigma(fits) -> float:
    """The noise in log loss: the residual standard deviation of the best-fitting form, per degree of
    freedom (the forms are flexible enough that the best one leaves mostly noise)."""
    return max(min(residual_sigma(f.residuals, f.n_params) for f in fits), 1e-6)
