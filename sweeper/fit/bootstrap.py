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

from sweeper.fit.laws import Law
from sweeper.fit.lbfgs import batched_lbfgs, scipy_polish
from sweeper.fit.objective import objective_and_grad, scalar_objective


def resample_weights(n_runs: int, n_resamples: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.multinomial(n_runs, np.full(n_runs, 1.0 / n_runs), size=n_resamples).astype(float)


def bootstrap_thetas(law: Law, frame: pd.DataFrame, y: np.ndarray, starts: np.ndarray,
                     n_resamples: int, seed: int, design: dict | None = None) -> np.ndarray:
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
    out = np.empty_like(best)
    for i in range(n_resamples):
        out[i] = scipy_polish(scalar_objective(law, design, y, weights[i]), best[i], rounds=2)[0]
    return out
