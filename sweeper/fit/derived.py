"""Compute-optimal allocation from a fitted law (reference Appendix C, Table 9).

Closed form for L = E + A/N^alpha + B/D^beta under C = kND (k = 6 for the
textbook 6ND; the runs' measured C/(ND) when they carry exact FLOPs, so the
allocation matches the compute the isoFLOP slices really spent):
  N_opt = G (C/k)^a, D_opt = G^-1 (C/k)^b, G = (alpha A / (beta B))^(1/(alpha+beta)),
  a = beta/(alpha+beta), b = alpha/(alpha+beta), d = b/a (D_opt ∝ N_opt^d),
  n = a/b (N_opt ∝ D_opt^n), dn = b - a (D_opt/N_opt ∝ C^dn).
The regression route (Table 9's second row) minimises the law over a token grid
at each compute value and regresses log N_opt and log D_opt on log C; it works
for laws without a closed form (the sparsity law) and checks the closed form.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from sweeper.fit.laws import Law


def closed_form(params: dict[str, float], k: float = 6.0) -> dict[str, float]:
    alpha, beta = params["alpha"], params["beta"]
    s = alpha + beta
    if not (alpha > 0 and beta > 0):
        return {}  # no interior optimum: one resource is useless to the law
    a, b = beta / s, alpha / s
    # numpy powers: a degenerate fit (one exponent near 0) overflows to inf instead of raising,
    # so a bootstrap resample or online refit reports it rather than crashing.
    with np.errstate(over="ignore", divide="ignore"):
        g = np.float64(alpha * params["A"] / (beta * params["B"])) ** (1.0 / s)
        k_a, k_b = g * np.float64(k) ** -a, np.float64(k) ** -b / g
        k_d = k_b * k_a ** (-b / a)
    return {
        "a": a,
        "b": b,
        "G": float(g),
        "K_a": float(k_a),
        "K_b": float(k_b),
        "d": b / a,
        "K_d": float(k_d),
        "n": a / b,
        "dn": b - a,
    }


def optimum_at(derived: dict[str, float], compute):
    """(N_opt, D_opt) at compute C from N = K_a C^a, D = K_b C^b."""
    c = np.asarray(compute, float)
    return derived["K_a"] * c ** derived["a"], derived["K_b"] * c ** derived["b"]


def trainable_optimum(
    law: Law, params: dict, derived: dict[str, float], frame: pd.DataFrame, compute: float, **extra
):
    """([N], [D]) of the least predicted loss at compute C, each size N getting the tokens C buys at
    its own FLOPs per parameter-token (`flops_per_param_token_at`). The frontier's N = K_a C^a assumes
    the runs' median k, a mid-ladder model's; searched within 10x of it, on a grid fine enough (2%
    in N) that the loss, flat at its minimum, is exact to ~1e-5 relative. At the minimum the loss moves with
    the parameters only directly (envelope theorem), which the delta-method screen relies on."""
    with np.errstate(all="ignore"):
        n = optimum_at(derived, [compute])[0][0] * np.geomspace(0.1, 10.0, 233)
        d = compute / (flops_per_param_token_at(frame, n) * n)
        loss = law.predict(params, n, d, **extra)
    finite = np.isfinite(loss)
    if not finite.any():  # a degenerate fit (K_a overflowing, a coefficient at inf): no optimum to name
        return np.array([np.nan]), np.array([np.nan])
    best = int(np.argmin(np.where(finite, loss, np.inf)))
    return n[best : best + 1], d[best : best + 1]


def regression_route(
    law: Law,
    params: dict,
    compute: np.ndarray,
    *,
    d_range: tuple[float, float],
    n_grid: int = 2000,
    k: float = 6.0,
    **extra,
) -> dict:
    """(C, N_opt, D_opt) by grid search at each C, then log-log regressions.

    The paper uses linearly spaced D in [10B, 600B]; log spacing resolves the
    optimum equally well at every budget. Budgets whose optimum falls on the
    grid edge are dropped (the grid does not contain their optimum).
    """
    compute = np.unique(np.asarray(compute, float))
    d = np.geomspace(d_range[0], d_range[1], n_grid)
    c_grid, d_grid = np.meshgrid(compute, d, indexing="ij")
    n_grid_vals = c_grid / (k * d_grid)
    loss = law.predict(params, n_grid_vals.ravel(), d_grid.ravel(), **extra)
    idx = np.argmin(loss.reshape(c_grid.shape), axis=1)
    inside = (idx > 0) & (idx < n_grid - 1)
    if inside.sum() < 2:
        return {}
    c, d_opt = compute[inside], d[idx[inside]]
    n_opt = c / (k * d_opt)
    lc, ln, ld = np.log(c), np.log(n_opt), np.log(d_opt)
    with warnings.catch_warnings():
        # A resample whose optima sit on a few grid points regresses badly; its values say so.
        warnings.simplefilter("ignore", np.exceptions.RankWarning)
        return _regressions(lc, ln, ld)


def _regressions(lc, ln, ld) -> dict:
    a, log_ka = np.polyfit(lc, ln, 1)
    b, log_kb = np.polyfit(lc, ld, 1)
    return {
        "a_regression": float(a),
        "b_regression": float(b),
        "K_a_regression": float(np.exp(log_ka)),
        "K_b_regression": float(np.exp(log_kb)),
        "d_regression": float(np.polyfit(ln, ld, 1)[0]),
        "n_regression": float(np.polyfit(ld, ln, 1)[0]),
        "dn_regression": float(np.polyfit(lc, ld - ln, 1)[0]),
    }


def compute_of(frame: pd.DataFrame) -> np.ndarray:
    if "flops" in frame and frame["flops"].notna().all():
        return frame["flops"].to_numpy(float)
    return 6.0 * frame["n_params"].to_numpy(float) * frame["n_tokens"].to_numpy(float)


def flops_per_nd(frame: pd.DataFrame) -> np.ndarray:
    """Each run's C/(ND): 6 without measured FLOPs."""
    return compute_of(frame) / (frame["n_params"].to_numpy(float) * frame["n_tokens"].to_numpy(float))


def flops_per_param_token(frame: pd.DataFrame) -> float:
    """k in C = kND: the runs' median C/(ND)."""
    return float(np.median(flops_per_nd(frame)))


def flops_per_param_token_at(frame: pd.DataFrame, n_params):
    """k in C = kND for a model of `n_params`, from how the runs' C/(ND) falls with size.

    Attention and embedding FLOPs shrink against 6N as models grow, so k = 6 + c N^-p
    (fitted on each size's median; on the tiny ladder k runs from 15.6 to 7.0). Where the runs
    do not show that shape (6ND compute, one size, k below 6), k is interpolated between sizes.
    """
    ratio = flops_per_nd(frame)
    sizes, which = np.unique(frame["n_params"].to_numpy(float), return_inverse=True)
    per_size = np.array([np.median(ratio[which == i]) for i in range(len(sizes))])
    excess = per_size - 6.0
    if len(sizes) >= 2 and np.all(excess > 1e-6):  # not 6ND's rounding
        slope, intercept = np.polyfit(np.log(sizes), np.log(excess), 1)
        if slope < 0:
            return 6.0 + np.exp(intercept + slope * np.log(n_params))
    return np.interp(np.log(n_params), np.log(sizes), per_size)


# Laws with a compute-optimal frontier over (N, D) alone: the ones log_L_opt is defined for
# (compression's loss also needs each modality's share of D).
OPTIMUM_LAWS = ("chinchilla", "sparsity")


def derived_quantities(
    law: Law,
    params: dict,
    frame: pd.DataFrame,
    *,
    regression: bool = True,
    target_compute: float | None = None,
) -> dict[str, float]:
    """Closed form where the law has one, plus the regression route where it can run.

    With `target_compute` C, also log_L_opt: the log of the predicted loss of the
    compute-optimal model at C, which is what an extrapolating user reads off the law.
    """
    k = flops_per_param_token(frame)
    out = closed_form(params, k) if law.name in ("chinchilla", "compression") else {}
    extra = {}
    if law.name == "sparsity":
        from sweeper.fit.laws import sparsity_of

        extra = {"sparsity": float(np.median(sparsity_of(frame)))}
    if regression and law.name in ("chinchilla", "sparsity"):
        tokens = frame["n_tokens"].to_numpy(float)
        # 64 quantiles of the runs' compute trace the same power law as all of them,
        # at a cost the bootstrap can pay once per resample.
        budgets = np.quantile(compute_of(frame), np.linspace(0.0, 1.0, 64))
        reg = regression_route(
            law, params, budgets, d_range=(tokens.min() / 30.0, tokens.max() * 30.0), k=k, **extra
        )
        out.update(reg)
        if law.name == "sparsity" and reg:  # no closed form: the regression is the answer
            for key in ("a", "b", "K_a", "K_b", "d", "n", "dn"):
                out[key] = reg[f"{key}_regression"]
    if target_compute and "K_a" in out and law.name in OPTIMUM_LAWS:
        n_opt, d_opt = trainable_optimum(law, params, out, frame, target_compute, **extra)
        with np.errstate(all="ignore"):
            loss = law.predict(params, n_opt, d_opt, **extra)[0]
        out["log_L_opt"] = float(np.log(loss)) if loss > 0 else float("nan")
    return out
