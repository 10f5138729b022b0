"""Profiles of a nested form's extra term: what the runs cannot rule out, for the prediction's interval.

A form that nests Chinchilla's (saturating data, an offset in N) often fits its extra term to the
boundary (S -> inf, N_0 -> 0) because the ladder cannot see it. Its bootstrap refits stay at that
boundary too (a bootstrap cannot see past one, Andrews 2000), so the interval would say the term is
surely off when the runs only say it is small here, and the prediction 100x away depends on it most.
So the term is pinned at values the runs may not rule out, the rest of the law refitted at each, and
each pin weighed by its likelihood: a profile over the term (sweeper.fit.prediction mixes them in).

A pinned form is Chinchilla's law on transformed runs (D_eff = S (1 - exp(-D/S)), or N + N_0), so each
pin is one fit with the fitter every form uses.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from sweeper.fit.multistart import SearchSettings, find_optimum
from sweeper.fit.registry import get_law

# Pinned values, as multiples of the runs' largest token count (S) or smallest size (N_0): from a term
# the ladder would see plainly down to one it cannot tell from off.
PINS = {
    "data_constrained": ("S", (0.5, 1.0, 2.0, 4.0, 8.0)),
    "offset_n": ("N_0", (0.1, 0.3, 1.0, 3.0)),
}


@dataclass(frozen=True)
class PinnedFit:
    form: str
    key: str  # the pinned parameter
    value: float
    params: dict  # the form's parameters with the term pinned
    ssr: float  # sum of squared log residuals over the runs


def pinned_runs(frame: pd.DataFrame, key: str, value: float) -> pd.DataFrame:
    """The runs as Chinchilla's law sees them when the form's extra term is pinned at `value`."""
    out = frame.copy()
    if key == "S":
        d = frame["n_tokens"].to_numpy(float)
        out["n_tokens"] = value * -np.expm1(-d / value)
    else:
        out["n_params"] = frame["n_params"].to_numpy(float) + value
    return out


def pin_values(frame: pd.DataFrame, key: str, multiples) -> np.ndarray:
    scale = frame["n_tokens"].max() if key == "S" else frame["n_params"].min()
    return float(scale) * np.asarray(multiples, float)


def profile_fits(form: str, frame: pd.DataFrame, y: np.ndarray, starts: np.ndarray | None = None):
    """The form refitted with its extra term pinned at each of PINS' values ([] if it has none)."""
    if form not in PINS:
        return []
    key, multiples = PINS[form]
    chinchilla, law = get_law("chinchilla"), get_law(form)
    n, d = frame["n_params"].to_numpy(float), frame["n_tokens"].to_numpy(float)
    out = []
    for value in pin_values(frame, key, multiples):
        runs = pinned_runs(frame, key, value)
        design = chinchilla.design(runs)
        grid = chinchilla.grid(design, "coarse")
        if starts is not None and len(starts):
            grid = np.vstack([starts, grid])
        opt = find_optimum(chinchilla, runs, y, grid, SearchSettings(keep=4, n_polish=1), design=design)
        params = {**chinchilla.to_params(opt.theta, design), key: float(value)}
        residuals = np.log(law.predict(params, n, d)) - y
        if np.all(np.isfinite(residuals)):
            out.append(PinnedFit(form, key, float(value), params, float(np.sum(residuals**2))))
    return out


def profile_likelihoods(free_ssr: float, pins: list[PinnedFit], sigma: float) -> np.ndarray:
    """Relative likelihoods of the free fit (first) and each pin: exp(-chi2 / 2) against the best."""
    ssr = np.array([free_ssr, *(p.ssr for p in pins)])
    chi2 = (ssr - ssr.min()) / max(sigma, 1e-12) ** 2
    return np.exp(-0.5 * chi2)
