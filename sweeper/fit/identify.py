"""Is the law identified by these runs? The checks behind FitResult.identified.

A fit can reach a low objective and still say nothing: a term switched off
(its coefficient underflows, so its exponent can take any value), an exponent no
law has, a flat direction of the objective, resamples that land in different
basins, or isoFLOP slices whose minima all sit at an edge of the sizes tried.
Bootstrap intervals of such a fit are narrow for the wrong reason, so every
quantity the problem touches loses its interval (FitResult.ci drops it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from sweeper.fit.isoflop import slice_keys
from sweeper.fit.laws import Law, extra_columns

# Published exponents (Chinchilla, Kaplan, the reference's Tables 2-12, the six studies in
# shared/scaling-data) lie in 0.05-1.5; 3.0 leaves room for odd data without admitting the
# alpha = 7.4 of a fit whose N term only bends a few points.
EXPONENT_RANGE = (0.01, 3.0)
EXPONENTS = ("alpha", "beta")
TERM_OFF_SHARE = 1e-4  # a term below this share of the loss at every run says nothing
MAX_LOG_COEFFICIENT = 80.0  # log A beyond this: the coefficient is compensating an exponent
# Column-normalised Gauss-Newton curvature: the six published tables reach 1.2e6, flat directions 1e30+.
MAX_CONDITION = 1e10
MAX_OTHER_BASIN = 0.05  # share of degenerate resamples allowed (the CI's own tails)

# Which named quantities depend on which law parameter; derived ones depend on all exponents.
TERM_PARAMS = {"alpha": ("A", "alpha"), "beta": ("B", "beta")}


@dataclass(frozen=True)
class Identification:
    identified: bool
    warnings: tuple[str, ...]
    unidentified: frozenset[str]  # params / derived names that get no interval


def log_predictions(law: Law, design: dict, theta: np.ndarray) -> np.ndarray:
    t = law.terms(np.atleast_2d(theta), design)
    m = t.max(axis=0)
    return m + np.log(np.exp(t - m).sum(axis=0))  # (S, R)


def term_shares(law: Law, design: dict, theta: np.ndarray) -> np.ndarray:
    """(K, R): each term's share of the predicted loss at each run."""
    t = law.terms(np.atleast_2d(theta), design)[:, 0, :]
    with np.errstate(over="ignore", invalid="ignore"):
        w = np.exp(t - t.max(axis=0))
        return w / w.sum(axis=0)


def condition_number(law: Law, design: dict, theta: np.ndarray) -> float:
    """Condition number of J^T J (J = d log L / d theta, columns scaled to unit norm)."""
    p = len(theta)
    eps = 1e-6
    steps = theta[None, :] + eps * np.eye(p)
    with np.errstate(all="ignore"):
        base = log_predictions(law, design, theta)[0]
        jac = (log_predictions(law, design, steps) - base).T / eps  # (R, P)
    norms = np.linalg.norm(jac, axis=0)
    if not np.all(np.isfinite(jac)) or np.any(norms == 0):
        return np.inf
    s = np.linalg.svd(jac / norms, compute_uv=False)
    return float((s[0] / s[-1]) ** 2) if s[-1] > 0 else np.inf


def _term_problems(law: Law, design: dict, theta: np.ndarray, params: dict) -> dict[str, str]:
    """Exponent name -> why its term says nothing (off, implausible, overflowing)."""
    problems = {}
    lo, hi = EXPONENT_RANGE
    shares = term_shares(law, design, theta)
    for k, name in enumerate(EXPONENTS):
        if name not in params:
            continue
        value, coef = params[name], params[TERM_PARAMS[name][0]]
        if not (np.isfinite(value) and np.isfinite(coef) and coef > 0):
            problems[name] = f"{name} or its coefficient is not finite"
        elif np.log(coef) > MAX_LOG_COEFFICIENT:
            problems[name] = (
                f"the coefficient of the {name} term overflows "
                f"(log {TERM_PARAMS[name][0]} = {np.log(coef):.0f})"
            )
        elif k < len(shares) and np.all(shares[k] < TERM_OFF_SHARE):
            problems[name] = f"the {name} term is switched off (under {TERM_OFF_SHARE:g} of the loss)"
        elif not lo <= value <= hi:
            problems[name] = f"{name} = {value:.3g} lies outside the plausible range [{lo}, {hi}]"
    return problems


def other_basin_share(law: Law, design: dict, thetas: np.ndarray, theta: np.ndarray) -> float:
    """Share of bootstrap optima that are degenerate: a term switched off, or an exponent outside
    the plausible range. A resample whose exponents are merely far from the full-data optimum's is
    the interval's own spread (a resample that drops the top slice extrapolates from less); the
    percentile interval carries it, and on well-posed grids it held the truth (benchmarks/coverage.py)."""
    if len(thetas) == 0:
        return 0.0
    away = sum(bool(_term_problems(law, design, row, law.to_params(row, design))) for row in thetas)
    return away / len(thetas)


def _interior_minimum(n_params: np.ndarray, loss: np.ndarray) -> bool:
    by_size = pd.Series(loss).groupby(n_params).min().sort_index().to_numpy()
    return 0 < int(np.argmin(by_size)) < len(by_size) - 1


def isoflop_edges(frame: pd.DataFrame, column: str, law: Law, params: dict) -> tuple[int, int]:
    """(slices with 3+ sizes, of which those whose minimum lies strictly inside their sizes);
    (0, 0) unless such slices hold at least half the runs, i.e. the design is an isoFLOP grid.

    A slice counts as bracketing when its lowest measured loss, or the fitted law's lowest
    prediction on its points, is inside: noise can move a flat minimum to an edge. An adaptive
    design spreads its runs over many budgets, and its few full slices are the cheap ones of
    its initial design, which often lie wholly on one side of the frontier.
    """
    keys = slice_keys(frame)
    slices = [frame[keys == c] for c in np.unique(keys)]
    slices = [sub for sub in slices if sub["n_params"].nunique() >= 3]
    if 2 * sum(len(sub) for sub in slices) < len(frame):
        return 0, 0
    usable = inside = 0
    for sub in slices:
        n = sub["n_params"].to_numpy(float)
        usable += 1
        with np.errstate(all="ignore"):
            predicted = law.predict(params, n, sub["n_tokens"].to_numpy(float), **extra_columns(sub))
        inside += _interior_minimum(n, sub[column].to_numpy(float)) or (
            np.all(np.isfinite(predicted)) and _interior_minimum(n, predicted)
        )
    return usable, inside


def identify(
    law: Law,
    design: dict,
    theta: np.ndarray,
    params: dict,
    frame: pd.DataFrame,
    *,
    column: str,
    thetas: np.ndarray | None = None,
    derived_names=(),
) -> Identification:
    """Run every check; name what each failure leaves without an interval."""
    reasons: list[str] = []
    lost: set[str] = set()
    everything = set(params) | set(derived_names)
    sizes, tokens = frame["n_params"].nunique(), frame["n_tokens"].nunique()
    if sizes < law.min_distinct_sizes or tokens < 3:
        reasons.append(
            f"runs at {sizes} model size(s) and {tokens} token count(s); separating E "
            f"from the N and D terms needs {law.min_distinct_sizes}+ of each"
        )
        lost |= everything
    for name, why in _term_problems(law, design, theta, params).items():
        reasons.append(why)
        lost |= set(TERM_PARAMS[name]) | set(derived_names)
    if "E" in params and np.all(term_shares(law, design, theta)[-1] < TERM_OFF_SHARE):
        reasons.append("the irreducible loss E is switched off")
        lost |= {"E"} | set(derived_names)
    cond = condition_number(law, design, theta)
    if not cond <= MAX_CONDITION:
        reasons.append(
            f"the objective is flat in some direction (curvature condition number "
            f"{cond:.2g} > {MAX_CONDITION:g}); the runs do not separate the terms"
        )
        lost |= everything
    if thetas is not None and len(thetas):
        share = other_basin_share(law, design, thetas, theta)
        if share > MAX_OTHER_BASIN:
            reasons.append(
                f"{share:.0%} of bootstrap refits land in a degenerate basin of the objective (a "
                "term switched off or an implausible exponent); the interval would straddle them"
            )
            lost |= everything
    usable, inside = isoflop_edges(frame, column, law, params)
    if usable and not inside:
        reasons.append(
            f"no isoFLOP slice has its minimum inside its sizes (0 of {usable}); "
            "the compute-optimal size lies outside the ladder"
        )
        lost |= set(derived_names)
    return Identification(identified=not reasons, warnings=tuple(reasons), unidentified=frozenset(lost))
