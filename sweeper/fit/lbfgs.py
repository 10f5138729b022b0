"""Batched L-BFGS over many independent small problems, plus a scipy polish.

Every start (or bootstrap resample) is its own 5-to-10-dimensional problem; the
cost is in evaluating the objective over all runs, so we advance all problems in
lock-step and evaluate them in one vectorised call. Problems that converge drop
out of the active set. The final answer always comes from scipy's L-BFGS-B at
tight tolerance, so the batched solver only needs to be a good pre-conditioner.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.optimize import minimize

# scipy_polish minimises f / f(x0), so ftol is relative to the objective's own size.
# The iteration cap stops crawls along flat valleys (an unidentified E -> 0) where
# every step still lowers f by more than ftol but the optimum is not attained.
POLISH_OPTIONS = {"ftol": 1e-15, "gtol": 1e-12, "maxiter": 3000, "maxfun": 6000, "maxcor": 20}

BatchFG = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


def _two_loop(g, s_hist, y_hist, rho, n_hist):
    """L-BFGS direction -H g for every row; empty history slots have rho = 0."""
    q = g.copy()
    m = s_hist.shape[1]
    alphas = np.zeros((g.shape[0], m))
    for j in range(m - 1, -1, -1):  # newest pair is at index m-1
        alphas[:, j] = rho[:, j] * np.einsum("ij,ij->i", s_hist[:, j], q)
        q -= alphas[:, j, None] * y_hist[:, j]
    sy = np.einsum("ij,ij->i", s_hist[:, -1], y_hist[:, -1])
    yy = np.einsum("ij,ij->i", y_hist[:, -1], y_hist[:, -1])
    gamma = np.where(n_hist > 0, sy / np.where(yy > 0, yy, 1.0), 1.0)
    r = gamma[:, None] * q
    for j in range(m):
        beta = rho[:, j] * np.einsum("ij,ij->i", y_hist[:, j], r)
        r += s_hist[:, j] * (alphas[:, j] - beta)[:, None]
    return -r


def batched_lbfgs(
    fg: BatchFG,
    x0: np.ndarray,
    *,
    max_iter: int = 300,
    memory: int = 8,
    ftol: float = 1e-13,
    gtol: float = 1e-12,
    max_backtracks: int = 30,
):
    """Minimise S problems at once. fg(x_rows, row_ids) -> (f, g) for those rows.

    Returns (x, f, n_iter): final points, objectives, iterations used.
    """
    with np.errstate(over="ignore", invalid="ignore"):  # bad trial points are rejected
        return _batched_lbfgs(fg, x0, max_iter, memory, ftol, gtol, max_backtracks)


def _batched_lbfgs(fg, x0, max_iter, memory, ftol, gtol, max_backtracks):
    x = np.array(x0, dtype=float)
    n, p = x.shape
    f, g = fg(x, np.arange(n))
    s_hist, y_hist = np.zeros((n, memory, p)), np.zeros((n, memory, p))
    rho, n_hist = np.zeros((n, memory)), np.zeros(n, dtype=int)
    active = np.isfinite(f) & np.all(np.isfinite(g), axis=1)
    it = 0
    for it in range(1, max_iter + 1):
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        d = _two_loop(g[idx], s_hist[idx], y_hist[idx], rho[idx], n_hist[idx])
        gd = np.einsum("ij,ij->i", g[idx], d)
        bad = ~(gd < 0)
        if bad.any():  # lost descent: fall back to steepest descent and forget history
            d[bad], gd[bad] = -g[idx][bad], -np.einsum("ij,ij->i", g[idx][bad], g[idx][bad])
            n_hist[idx[bad]], rho[idx[bad]] = 0, 0.0
        fresh = n_hist[idx] == 0
        t = np.where(fresh, 1.0 / np.maximum(np.linalg.norm(d, axis=1), 1.0), 1.0)
        x_new, f_new, g_new, ok = _backtrack(fg, idx, x[idx], f[idx], d, gd, t, max_backtracks)
        s, yv = x_new - x[idx], g_new - g[idx]
        sy = np.einsum("ij,ij->i", s, yv)
        upd = ok & (sy > 1e-12 * np.einsum("ij,ij->i", yv, yv))
        rows = idx[upd]
        s_hist[rows] = np.concatenate([s_hist[rows, 1:], s[upd, None]], axis=1)
        y_hist[rows] = np.concatenate([y_hist[rows, 1:], yv[upd, None]], axis=1)
        rho[rows] = np.concatenate([rho[rows, 1:], 1.0 / sy[upd, None]], axis=1)
        n_hist[rows] = np.minimum(n_hist[rows] + 1, memory)
        decrease = f[idx] - f_new
        x[idx[ok]], f[idx[ok]], g[idx[ok]] = x_new[ok], f_new[ok], g_new[ok]
        scale = np.maximum(np.maximum(np.abs(f[idx]), np.abs(f_new)), 1.0)
        done = (~ok) | (decrease <= ftol * scale) | (np.abs(g[idx]).max(axis=1) <= gtol)
        active[idx[done]] = False
    return x, f, it


def _backtrack(fg, idx, x, f, d, gd, t, max_backtracks, c1=1e-4):
    """Armijo backtracking per row; rows that never satisfy it are reported not ok."""
    x_new, f_new, g_new = x.copy(), f.copy(), np.zeros_like(x)
    ok = np.zeros(len(idx), dtype=bool)
    pending = np.arange(len(idx))
    for _ in range(max_backtracks):
        trial = x[pending] + t[pending, None] * d[pending]
        ft, gt = fg(trial, idx[pending])
        accept = np.isfinite(ft) & (ft <= f[pending] + c1 * t[pending] * gd[pending])
        acc = pending[accept]
        x_new[acc], f_new[acc], g_new[acc], ok[acc] = trial[accept], ft[accept], gt[accept], True
        pending = pending[~accept]
        if pending.size == 0:
            break
        t[pending] *= 0.5
    return x_new, f_new, g_new, ok


def scipy_polish(
    fun_grad: Callable[[np.ndarray], tuple[float, np.ndarray]],
    x0: np.ndarray,
    *,
    rounds: int = 4,
    options: dict | None = None,
):
    """L-BFGS-B from x0 at tight tolerance, restarted while it still improves.

    A restart discards curvature pairs gathered far from the optimum; on the
    nearly piecewise-linear Huber surface that often lets it go further.
    """
    opts = dict(POLISH_OPTIONS, **(options or {}))
    x, f = np.asarray(x0, float), fun_grad(np.asarray(x0, float))[0]
    # scipy's ftol is relative to max(|f|, 1): with f ~ 1e-4 it is an absolute 1e-15,
    # which stalls L-BFGS-B along the a-alpha ridge of a bootstrap resample (1e-5 above
    # the cold refit). Minimising f / f(x0) makes it relative.
    scale = 1.0 / abs(f) if np.isfinite(f) and abs(f) > 1e-300 else 1.0

    def scaled(theta):
        value, grad = fun_grad(theta)
        return value * scale, grad * scale

    for _ in range(rounds):
        res = minimize(scaled, x, jac=True, method="L-BFGS-B", options=opts)
        value = float(res.fun) / scale
        if not value < f - 1e-12 * abs(f):  # a restart that gains nothing real: stop
            if value < f:
                x, f = res.x, value
            break
        x, f = res.x, value
    return x, f
