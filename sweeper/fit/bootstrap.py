"""Bootstrap over runs (reference Appendix C.6, Table 11).

A resample with replacement is a vector of multinomial counts, so all resamples
are one batched weighted problem: every resample starts from each distinct local
optimum of the full-data fit, all (resample, start) pairs advance together in
batched L-BFGS, and each resample's best point is polished with scipy at the same
tight tolerance as the main fit. Loose tolerances here would leave the resamples
near their common start and shrink the intervals, which is the peers' failure.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sweeper.fit.identify import log_predictions
from sweeper.fit.laws import Law
from sweeper.fit.lbfgs import batched_lbfgs, scipy_polish
from sweeper.fit.objective import objective_and_grad, scalar_objective


def resample_weights(n_runs: int, n_resamples: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.multinomial(n_runs, np.full(n_runs, 1.0 / n_runs), size=n_resamples).astype(float)


def bootstrap_thetas(
    law: Law,
    frame: pd.DataFrame,
    y: np.ndarray,
    starts: np.ndarray,
    n_resamples: int,
    seed: int,
    design: dict | None = None,
    polish_rounds: int = 2,
) -> np.ndarray:
    """(n_resamples, P) optimal parameters, one row per resample of the runs."""
    design = law.design(frame) if design is None else design
    weights = resample_weights(len(frame), n_resamples, seed)
    k = len(starts)
    x0 = np.tile(starts, (n_resamples, 1))
    w_rows = np.repeat(weights, k, axis=0)

    def fg(x, rows):
        return objective_and_grad(law, design, y, x, w_rows[rows])

    x, f, _ = batched_lbfgs(fg, x0, max_iter=2000)
    f = np.where(np.isfinite(f), f, np.inf).reshape(n_resamples, k)
    best = x.reshape(n_resamples, k, -1)[np.arange(n_resamples), np.argmin(f, axis=1)]
    out = best.copy()
    for i in range(n_resamples if polish_rounds else 0):
        out[i] = scipy_polish(scalar_objective(law, design, y, weights[i]), best[i], rounds=polish_rounds)[0]
    return out


def residual_draws(
    y: np.ndarray, fitted: np.ndarray, n_resamples: int, seed: int, n_theta: int
) -> np.ndarray:
    """(n_resamples, R) log losses: the fitted values plus residuals redrawn with replacement, scaled
    up by sqrt(R / (R - P)) since fitted residuals are smaller than the noise by the parameters they used."""
    rng = np.random.default_rng(seed)
    resid = y - fitted
    resid = (resid - resid.mean()) * np.sqrt(len(y) / max(1, len(y) - n_theta))
    return fitted[None, :] + resid[rng.integers(0, len(y), size=(n_resamples, len(y)))]


def residual_bootstrap_thetas(
    law: Law,
    frame: pd.DataFrame,
    y: np.ndarray,
    theta: np.ndarray,
    n_resamples: int,
    seed: int,
    design: dict | None = None,
    polish_rounds: int = 1,
) -> np.ndarray:
    """(n_resamples, P) optima refitted to redrawn losses at the same runs (a residual bootstrap).

    The design stays as run: a case resample that drops the top slice extrapolates from less than
    the sweep had, which widens the intervals of small designs beyond their real precision.
    """
    design = law.design(frame) if design is None else design
    fitted = log_predictions(law, design, theta)[0]
    draws = residual_draws(y, fitted, n_resamples, seed, len(theta))
    x0 = np.tile(theta, (n_resamples, 1))

    def fg(x, rows):
        return objective_and_grad(law, design, draws[rows], x)

    x, _, _ = batched_lbfgs(fg, x0, max_iter=2000)
    out = np.empty_like(x)
    for i in range(n_resamples):
        out[i] = scipy_polish(scalar_objective(law, design, draws[i]), x[i], rounds=polish_rounds)[0]
    return out
