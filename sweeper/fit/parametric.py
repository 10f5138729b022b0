"""Approach 3: fit a registered law to a run table, with bootstrap intervals."""

from __future__ import annotations

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from sweeper.errors import SweeperInputError
from sweeper.fit.bootstrap import bootstrap_thetas
from sweeper.fit.csv_input import TARGET_COLUMNS, check_run_count, validate_frame
from sweeper.fit.derived import derived_quantities
from sweeper.fit.identify import identify
from sweeper.fit.laws import Law
from sweeper.fit.multistart import SearchSettings, find_optimum
from sweeper.fit.registry import get_law
from sweeper.fit.result import FitResult, summarise


def resolve_grid(law: Law, design: dict, grid) -> np.ndarray:
    """'paper' (8,820 Chinchilla starts), 'coarse' (243, for online refits) or an array."""
    if grid is None or isinstance(grid, str):
        kind = grid or "paper"
        if kind not in ("paper", "coarse"):
            raise SweeperInputError("grid", kind, "use 'paper', 'coarse' or an array of starts")
        return law.grid(design, kind)
    starts = np.atleast_2d(np.asarray(grid, float))
    if starts.shape[1] != len(law.grid(design, "coarse")[0]):
        raise SweeperInputError(
            "grid", starts.shape, f"each start needs one value per internal parameter of the {law.name} law"
        )
    return starts


def fit_law(
    frame: pd.DataFrame,
    *,
    law: str | Law = "chinchilla",
    target: str = "loss",
    grid=None,
    n_bootstrap: int = 0,
    seed: int = 0,
    ci_level: float = 0.95,
    settings: SearchSettings | None = None,
    target_compute: float | None = None,
) -> FitResult:
    """Fit `law` to `frame` (contract-1 columns) by best-of-grid summed-Huber L-BFGS.

    n_bootstrap > 0 adds mean, std and percentile intervals (level `ci_level`)
    for every parameter and derived quantity, resampling runs with replacement.
    `target_compute` adds the predicted optimal loss there (log_L_opt) to the derived quantities.
    """
    law = get_law(law)
    column = TARGET_COLUMNS.get(target, target)
    frame = validate_frame(frame, target=column, n_theta=None).reset_index(drop=True)
    design = law.design(frame)  # law-specific columns, built once for the fit and its bootstrap
    starts = resolve_grid(law, design, grid)
    check_run_count(frame, starts.shape[1])
    y = np.log(frame[column].to_numpy(float))
    # One BLAS thread: the work is many tiny products, which threads only slow down. A degenerate
    # fit overflows (exp of a huge log-coefficient); identify() says so in words, numpy need not.
    with threadpool_limits(limits=1), np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        opt = find_optimum(law, frame, y, starts, settings or SearchSettings(), design=design)
        params = law.to_params(opt.theta, design)
        derived = derived_quantities(law, params, frame, target_compute=target_compute)
        mean, std, ci, thetas = {}, {}, {}, None
        if n_bootstrap > 0:
            thetas = bootstrap_thetas(law, frame, y, opt.local_optima, n_bootstrap, seed, design=design)
            mean, std, ci = _summarise_thetas(law, design, frame, thetas, ci_level, target_compute)
        verdict = identify(
            law, design, opt.theta, params, frame, column=column, thetas=thetas, derived_names=derived
        )
    # An interval around a quantity the runs do not identify would be narrow for the wrong reason.
    ci = {k: v for k, v in ci.items() if k not in verdict.unidentified}
    return FitResult(
        law=law.name,
        params=params,
        derived=derived,
        objective=opt.objective,
        n_runs=len(frame),
        target=target,
        method="parametric",
        ci=ci,
        std=std,
        mean=mean,
        n_bootstrap=n_bootstrap,
        ci_level=ci_level,
        identified=verdict.identified,
        warnings=verdict.warnings,
        unidentified=tuple(sorted(verdict.unidentified)),
        extras={"n_starts": opt.n_starts},
    )


def _summarise_thetas(law, design, frame, thetas, level, target_compute=None):
    rows = []
    for theta in thetas:
        p = law.to_params(theta, design)
        # The regression route costs a grid search per resample; where a closed form
        # exists it agrees to ~1e-4 (Table 9), so resamples use the closed form only.
        rows.append(
            {
                **p,
                **derived_quantities(
                    law, p, frame, regression=law.name == "sparsity", target_compute=target_compute
                ),
            }
        )
    names = list(dict.fromkeys(k for row in rows for k in row))
    samples = {k: np.array([row.get(k, np.nan) for row in rows]) for k in names}
    return summarise(samples, level)


def available_targets(frame: pd.DataFrame) -> dict[str, str]:
    """Target name -> column for the per-target losses present in the frame."""
    return {name: col for name, col in TARGET_COLUMNS.items() if col in frame}


def fit_per_target(frame: pd.DataFrame, *, targets=None, **kwargs) -> dict[str, FitResult]:
    """One fit per target (caption, interleaved, text, average) from one run table."""
    names = targets or list(available_targets(frame))
    if not names:
        raise SweeperInputError(
            "targets", list(frame.columns), f"need at least one of {sorted(TARGET_COLUMNS.values())}"
        )
    out = {}
    for name in names:
        column = TARGET_COLUMNS.get(name, name)
        sub = frame[frame[column].notna()] if column in frame else frame
        out[name] = fit_law(sub, target=name, **kwargs)
    return out
