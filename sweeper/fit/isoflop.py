"""Approach 2: a parabola in log N per isoFLOP slice, then N_opt, D_opt ∝ C^a, C^b.

Known bias: the loss along an isoFLOP slice is not symmetric in log N, so the
parabola's vertex is off the true optimum when the slice is wide; report this
beside Approach 3 (evaluate.compare_approaches) rather than instead of it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sweeper.errors import SweeperInputError
from sweeper.fit.csv_input import TARGET_COLUMNS, validate_frame
from sweeper.fit.derived import compute_of
from sweeper.fit.result import FitResult, summarise


def slice_keys(frame: pd.DataFrame) -> np.ndarray:
    """The budget of each run's slice: `budget`, else log10(flops) rounded to 0.1 dex."""
    if "budget" in frame and frame["budget"].notna().all():
        return frame["budget"].to_numpy(float)
    return 10.0 ** np.round(np.log10(compute_of(frame)), 1)


def slice_optima(frame: pd.DataFrame, column: str, min_points: int = 3) -> pd.DataFrame:
    """Per slice: C, N_opt, D_opt from the vertex of L = p0 + p1 x + p2 x^2, x = log N.

    Slices with too few sizes, a concave parabola or a vertex outside the sizes
    tried are skipped: their optimum is not bracketed, so any vertex is a guess.
    """
    keys = slice_keys(frame)
    log_n = np.log(frame["n_params"].to_numpy(float))
    loss = frame[column].to_numpy(float)
    # FLOPs per (parameter x token) as spent in each run (6 if C = 6ND); numpy groups, not pandas
    # masks: an adaptive sweep has a slice per budget, and the bootstrap regroups every resample.
    per_nd = compute_of(frame) / (frame["n_params"].to_numpy(float) * frame["n_tokens"].to_numpy(float))
    budgets, group = np.unique(keys, return_inverse=True)
    rows = []
    for g in np.flatnonzero(np.bincount(group) >= min_points):
        members = group == g
        x = log_n[members]
        if np.unique(x).size < min_points:
            continue
        p2, p1, _ = np.polyfit(x, loss[members], 2)
        if p2 <= 0:
            continue
        x_opt = -p1 / (2.0 * p2)
        if not x.min() <= x_opt <= x.max():
            continue
        n_opt = float(np.exp(x_opt))
        c = float(budgets[g])
        rows.append({"budget": c, "n_opt": n_opt, "d_opt": c / (float(np.median(per_nd[members])) * n_opt)})
    return pd.DataFrame(rows, columns=["budget", "n_opt", "d_opt"])


def _power_laws(opt: pd.DataFrame) -> dict[str, float]:
    lc = np.log(opt["budget"].to_numpy())
    a, log_ka = np.polyfit(lc, np.log(opt["n_opt"].to_numpy()), 1)
    b, log_kb = np.polyfit(lc, np.log(opt["d_opt"].to_numpy()), 1)
    return {"a": float(a), "b": float(b), "K_a": float(np.exp(log_ka)), "K_b": float(np.exp(log_kb))}


def isoflop_fit(
    frame: pd.DataFrame,
    *,
    target: str = "loss",
    n_bootstrap: int = 0,
    seed: int = 0,
    ci_level: float = 0.95,
    min_points: int = 3,
) -> FitResult:
    """Approach 2 with bootstrap intervals from resampling runs within each slice."""
    column = TARGET_COLUMNS.get(target, target)
    frame = validate_frame(frame, target=column, n_theta=3, min_sizes=3).reset_index(drop=True)
    opt = slice_optima(frame, column, min_points)
    if len(opt) < 2:
        raise SweeperInputError(
            "isoFLOP slices",
            len(opt),
            f"need 2 or more budgets whose slices have {min_points}+ sizes bracketing the optimum",
        )
    fitted = _power_laws(opt)
    resid = np.log(opt["n_opt"]) - np.log(fitted["K_a"] * opt["budget"] ** fitted["a"])
    mean, std, ci = {}, {}, {}
    if n_bootstrap > 0:
        mean, std, ci = _bootstrap(frame, column, min_points, n_bootstrap, seed, ci_level)
    derived = dict(fitted, d=fitted["b"] / fitted["a"], dn=fitted["b"] - fitted["a"])
    return FitResult(
        law="isoflop",
        method="isoflop",
        target=target,
        params=fitted,
        derived=derived,
        objective=float(np.sum(resid**2)),
        n_runs=len(frame),
        ci=ci,
        std=std,
        mean=mean,
        n_bootstrap=n_bootstrap,
        ci_level=ci_level,
        extras={"slices": opt.to_dict(orient="list")},
    )


def resampled_optima(frame: pd.DataFrame, column: str, n: int, seed: int, min_points: int = 3):
    """Slice optima of `n` bootstrap resamples (runs drawn with replacement within each
    slice), skipping resamples that leave fewer than 2 slices bracketed."""
    rng = np.random.default_rng(seed)
    keys = slice_keys(frame)
    groups = [np.flatnonzero(keys == c) for c in np.unique(keys)]
    for _ in range(n):
        idx = np.concatenate([rng.choice(g, size=len(g), replace=True) for g in groups])
        opt = slice_optima(frame.iloc[idx], column, min_points)
        if len(opt) >= 2:
            yield opt


def _bootstrap(frame, column, min_points, n, seed, level):
    samples: dict[str, list] = {k: [] for k in ("a", "b", "K_a", "K_b", "d", "dn")}
    for opt in resampled_optima(frame, column, n, seed, min_points):
        p = _power_laws(opt)
        p.update(d=p["b"] / p["a"], dn=p["b"] - p["a"])
        for k, values in samples.items():
            values.append(p[k])
    return summarise({k: np.array(v) for k, v in samples.items()}, level)
