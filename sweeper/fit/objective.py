"""The paper's objective: summed Huber loss on log-space residuals.

f(theta) = sum_r w_r * huber_delta(LSE_k(terms[r, k]) - log L_r), delta = 1e-3.

Summed, not averaged: L-BFGS stops when the relative decrease falls below
ftol * max(|f|, 1); a mean of ~1e-6-sized Huber values sits far below 1, so the
mean objective stops after a handful of iterations and its bootstrap spread is an
artefact of early stopping, not of the data.
"""

from __future__ import annotations

import numpy as np

from sweeper.fit.laws import Law

HUBER_DELTA = 1e-3
# Elements (starts x runs x terms) per chunk: big enough to amortise numpy call
# overhead, small enough to stay in cache-friendly sizes and modest memory.
CHUNK_ELEMENTS = 1 << 20


def objective_and_grad(
    law: Law,
    design: dict,
    y: np.ndarray,
    theta: np.ndarray,
    weights: np.ndarray | None = None,
    delta: float = HUBER_DELTA,
    want_grad: bool = True,
):
    """Objective (S,) and gradient (S, P) for S parameter vectors at once.

    weights: None (every run once), (R,) shared, or (S, R) one row per problem
    (bootstrap resamples are multinomial counts, so resampling is a weighting).
    y: (R,) shared, or (S, R) one row per problem (a residual bootstrap's redrawn losses).
    """
    theta = np.atleast_2d(theta)
    step = max(1, CHUNK_ELEMENTS // (len(y) * 3))
    if theta.shape[0] <= step:
        return _chunk(law, design, y, theta, weights, delta, want_grad)
    f = np.empty(theta.shape[0])
    g = np.empty_like(theta) if want_grad else None
    for lo in range(0, theta.shape[0], step):
        sl = slice(lo, lo + step)
        w = weights[sl] if weights is not None and weights.ndim == 2 else weights
        fc, gc = _chunk(law, design, y[sl] if y.ndim == 2 else y, theta[sl], w, delta, want_grad)
        f[sl] = fc
        if want_grad:
            g[sl] = gc
    return f, g


def _chunk(law, design, y, theta, weights, delta, want_grad):
    t = law.terms(theta, design)  # (K, S, R)
    m = t[0].copy()
    for tk in t[1:]:
        np.maximum(m, tk, out=m)
    t -= m
    ex = np.exp(t, out=t)
    se = ex[0].copy()
    for ek in ex[1:]:
        se += ek
    r = m + np.log(se) - y
    a = np.abs(r)
    c = np.minimum(a, delta)
    h = c * (a - 0.5 * c)
    if weights is not None:
        h *= weights
    f = h.sum(axis=1)
    if not want_grad:
        return f, None
    psi = np.copysign(c, r)  # Huber derivative: r clipped to [-delta, delta]
    if weights is not None:
        psi *= weights
    # d LSE / d term_k is the softmax weight of term k.
    ex *= psi / se
    return f, law.terms_vjp(theta, design, ex)


def scalar_objective(law: Law, design: dict, y: np.ndarray, weights: np.ndarray | None = None):
    """v -> (f, grad) for one parameter vector: the form scipy's L-BFGS-B takes."""

    def fun_grad(v: np.ndarray):
        f, g = objective_and_grad(law, design, y, v[None, :], weights)
        return float(f[0]), g[0]

    return fun_grad
