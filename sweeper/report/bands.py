"""Bootstrap bands for the N_opt(C) and D_opt(C) figure: one resampling per approach.

Approach 2 (isoFLOP parabolas): runs are resampled within each slice; each
resample gives every slice's optimum (its interval is the slice's error bar) and
a power law through them (the band). Approach 3 (parametric law): runs are
resampled and the law refitted from the point estimate; each refit's closed-form
optimum traces a curve, and the band is their pointwise percentiles, so it holds
the correlation of a and K_a that separate intervals would lose.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sweeper.fit.isoflop import resampled_optima

CURVES = ("n_opt", "d_opt")


def _percentiles(values, level: float) -> np.ndarray:
    tail = 50.0 * (1.0 - level)
    return np.percentile(np.asarray(values, float), [tail, 100.0 - tail], axis=0)


def isoflop_bootstrap(
    frame: pd.DataFrame,
    compute: np.ndarray,
    *,
    column: str = "loss",
    n_boot: int = 200,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[dict[str, np.ndarray], pd.DataFrame]:
    """(pointwise band of Approach 2's N_opt(C), D_opt(C); each slice's optimum interval)."""
    curves: dict[str, list] = {name: [] for name in CURVES}
    per_slice: dict[float, dict[str, list]] = {}
    lc = np.log(compute)
    for opt in resampled_optima(frame, column, n_boot, seed):
        for name, values in curves.items():
            slope, icept = np.polyfit(np.log(opt["budget"]), np.log(opt[name]), 1)
            values.append(np.exp(icept + slope * lc))
        for row in opt.itertuples():
            found = per_slice.setdefault(float(row.budget), {name: [] for name in CURVES})
            found["n_opt"].append(row.n_opt)
            found["d_opt"].append(row.d_opt)
    band = {name: _percentiles(values, level) for name, values in curves.items() if len(values) >= 2}
    rows = []
    for budget, values in sorted(per_slice.items()):
        if len(values["n_opt"]) >= 2:
            (n_lo, n_hi), (d_lo, d_hi) = (
                _percentiles(values["n_opt"], level),
                _percentiles(values["d_opt"], level),
            )
            rows.append(
                {"budget": budget, "n_opt_lo": n_lo, "n_opt_hi": n_hi, "d_opt_lo": d_lo, "d_opt_hi": d_hi}
            )
    return band, pd.DataFrame(rows, columns=["budget", "n_opt_lo", "n_opt_hi", "d_opt_lo", "d_opt_hi"])


def parametric_band(
    frame: pd.DataFrame,
    fit,
    compute: np.ndarray,
    *,
    column: str = "loss",
    n_boot: int = 40,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, np.ndarray]:
    """Pointwise band of Approach 3's N_opt(C), D_opt(C); empty where the law has no closed-form optimum
    or the fit is not identified (a band around an unidentified law would look like knowledge)."""
    from threadpoolctl import threadpool_limits

    from sweeper.fit.bootstrap import bootstrap_thetas
    from sweeper.fit.derived import closed_form, flops_per_param_token, optimum_at
    from sweeper.fit.registry import get_law

    if fit is None or fit.law != "chinchilla" or not getattr(fit, "identified", True) or n_boot < 2:
        return {}
    law = get_law(fit.law)
    frame = frame.reset_index(drop=True)
    design = law.design(frame)
    y = np.log(frame[column].to_numpy(float))
    start = np.nan_to_num(law.to_theta(fit.params), neginf=-30.0)[None, :]
    with threadpool_limits(limits=1), np.errstate(all="ignore"):
        thetas = bootstrap_thetas(law, frame, y, start, n_boot, seed, design=design)
        k = flops_per_param_token(frame)
        curves: dict[str, list] = {name: [] for name in CURVES}
        for theta in thetas:
            derived = closed_form(law.to_params(theta, design), k)
            if "K_a" not in derived:
                continue
            n_opt, d_opt = optimum_at(derived, compute)
            if np.isfinite(n_opt).all() and np.isfinite(d_opt).all():
                curves["n_opt"].append(n_opt)
                curves["d_opt"].append(d_opt)
    return {name: _percentiles(values, level) for name, values in curves.items() if len(values) >= 2}
