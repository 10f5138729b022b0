"""Held-out evaluation (reference Table 10) and Approach 2 vs 3 side by side."""

from __future__ import annotations

import numpy as np
import pandas as pd

from sweeper.errors import SweeperInputError
from sweeper.fit.csv_input import TARGET_COLUMNS
from sweeper.fit.derived import compute_of
from sweeper.fit.laws import extra_columns
from sweeper.fit.parametric import fit_law
from sweeper.fit.result import FitResult


def prediction_errors(observed, predicted) -> dict[str, float]:
    """MSE and R^2 on the loss, and mean absolute error in percent of the loss."""
    obs, pred = np.asarray(observed, float), np.asarray(predicted, float)
    err = pred - obs
    ss_tot = float(np.sum((obs - obs.mean()) ** 2))
    return {
        "mse": float(np.mean(err**2)),
        "r2": float(1.0 - np.sum(err**2) / ss_tot) if ss_tot > 0 else float("nan"),
        "mae_pct": float(100.0 * np.mean(np.abs(err) / obs)),
        "n": int(obs.size),
    }


def holdout_evaluate(
    frame: pd.DataFrame,
    *,
    compute_threshold: float,
    law: str = "chinchilla",
    target: str = "loss",
    **fit_kwargs,
) -> dict:
    """Fit on runs with C < threshold, predict those at or above it.

    Returns {"fit": FitResult, "held_in": errors, "held_out": errors}.
    """
    column = TARGET_COLUMNS.get(target, target)
    below = compute_of(frame) < compute_threshold
    if below.all() or not below.any():
        raise SweeperInputError(
            "compute_threshold", compute_threshold, "choose a threshold with runs on both sides"
        )
    fitted = fit_law(frame[below], law=law, target=target, **fit_kwargs)
    out = {"fit": fitted}
    for name, part in (("held_in", frame[below]), ("held_out", frame[~below])):
        pred = fitted.predict(part["n_params"].to_numpy(), part["n_tokens"].to_numpy(), **extra_columns(part))
        out[name] = prediction_errors(part[column].to_numpy(float), pred)
    return out


def compare_approaches(parametric: FitResult, isoflop: FitResult, names=("a", "b")) -> dict[str, dict]:
    """a and b from Approach 3 and 2 side by side; `disagree` says whether their intervals do not overlap,
    or is None where either has no interval it vouches for (a verdict needs two intervals)."""
    out = {}
    for name in names:
        p3, p2 = parametric.derived.get(name), isoflop.derived.get(name)
        if p3 is None or p2 is None:
            continue
        ci3, ci2 = parametric.ci.get(name), isoflop.ci.get(name)
        disagree = None
        if ci3 and ci2 and parametric.trusted(name) and isoflop.trusted(name):
            disagree = bool(ci3[1] < ci2[0] or ci2[1] < ci3[0])
        out[name] = {"approach3": p3, "approach2": p2, "ci3": ci3, "ci2": ci2, "disagree": disagree}
    return out
