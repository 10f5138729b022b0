"""Approach 1: the lowest loss against compute, L ∝ C^c (reference Appendix C.3).

The frontier is the lower convex hull of all runs in (log C, log L); sampled on
a grid of compute values above `min_compute` (the paper drops C <= 3e19, where
the smallest models dominate the hull), a line in log-log space gives c and K.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sweeper.errors import SweeperInputError
from sweeper.fit.csv_input import TARGET_COLUMNS, validate_frame
from sweeper.fit.derived import compute_of
from sweeper.fit.result import FitResult, summarise


def lower_hull(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vertices of the lower convex hull of points (x, y), by increasing x."""
    order = np.lexsort((y, x))
    hull: list[int] = []
    for i in order:
        if hull and x[hull[-1]] == x[i]:
            continue  # same x, higher y: never on the lower hull
        while len(hull) >= 2:
            j, k = hull[-2], hull[-1]
            cross = (x[k] - x[j]) * (y[i] - y[j]) - (y[k] - y[j]) * (x[i] - x[j])
            if cross > 0:
                break
            hull.pop()
        hull.append(int(i))
    return x[hull], y[hull]


def _fit_line(log_c, log_l, min_compute, n_points):
    hx, hy = lower_hull(log_c, log_l)
    lo = max(hx[0], np.log(min_compute)) if min_compute else hx[0]
    if not hx[-1] > lo:
        return None
    grid = np.linspace(lo, hx[-1], n_points)
    c, log_k = np.polyfit(grid, np.interp(grid, hx, hy), 1)
    return float(c), float(np.exp(log_k)), (hx, hy)


def envelope_fit(
    frame: pd.DataFrame,
    *,
    target: str = "loss",
    min_compute: float | None = None,
    n_points: int = 200,
    n_bootstrap: int = 0,
    seed: int = 0,
    ci_level: float = 0.95,
) -> FitResult:
    column = TARGET_COLUMNS.get(target, target)
    frame = validate_frame(frame, target=column, n_theta=2, min_sizes=1).reset_index(drop=True)
    log_c = np.log(compute_of(frame))
    log_l = np.log(frame[column].to_numpy(float))
    fitted = _fit_line(log_c, log_l, min_compute, n_points)
    if fitted is None:
        raise SweeperInputError("min_compute", min_compute, "no runs above it: lower the threshold")
    c, k, (hx, hy) = fitted
    mean, std, ci = {}, {}, {}
    if n_bootstrap > 0:
        rng = np.random.default_rng(seed)
        cs, ks = [], []
        for _ in range(n_bootstrap):
            idx = rng.integers(0, len(frame), len(frame))
            res = _fit_line(log_c[idx], log_l[idx], min_compute, n_points)
            if res is not None:
                cs.append(res[0])
                ks.append(res[1])
        mean, std, ci = summarise({"c": np.array(cs), "K": np.array(ks)}, ci_level)
    resid = log_l - (np.log(k) + c * log_c)
    return FitResult(
        law="envelope",
        method="envelope",
        target=target,
        params={"K": k, "c": c},
        derived={"c": c},
        objective=float(np.sum(np.minimum(resid, 0.0) ** 2)),
        n_runs=len(frame),
        ci=ci,
        std=std,
        mean=mean,
        n_bootstrap=n_bootstrap,
        ci_level=ci_level,
        extras={"hull_log_c": hx.tolist(), "hull_log_loss": hy.tolist(), "min_compute": min_compute},
    )
