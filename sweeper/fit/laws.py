"""Registered scaling laws, all written as log L = LSE_k(term_k(theta, x)).

The log-sum-exp form (Hoffmann et al., reference Appendix C) keeps every
coefficient positive without bounds and makes the optimiser law-agnostic: a law
only says how its terms depend on theta (`terms`) and how a weight on each term
flows back to theta (`terms_vjp`). Laws whose terms are linear in theta (the
Chinchilla and sparsity forms) get both from one feature tensor.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from sweeper.errors import SweeperInputError


def product_grid(**axes: tuple[float, ...]) -> np.ndarray:
    """Cartesian product of start values, one column per axis in the given order."""
    return np.array(list(itertools.product(*axes.values())), dtype=float)


def _arange(lo: float, hi: float, step: float) -> tuple[float, ...]:
    return tuple(np.round(np.arange(lo, hi + step / 2, step), 10))


# The paper's grid (Appendix C): 6 * 7 * 6 * 7 * 5 = 8,820 starts in (a, alpha, b, beta, e).
PAPER_AXES = dict(
    a=_arange(0, 30, 5),
    alpha=_arange(0, 2.5, 0.5),
    b=_arange(0, 30, 5),
    beta=_arange(0, 2.5, 0.5),
    e=_arange(-1, 1, 0.5),
)
# For online refits after every trial: 3^5 = 243 starts spanning the same box.
COARSE_AXES = dict(
    a=(0.0, 10.0, 25.0),
    alpha=(0.25, 0.75, 1.5),
    b=(0.0, 10.0, 25.0),
    beta=(0.25, 0.75, 1.5),
    e=(-1.0, 0.0, 1.0),
)


@dataclass(frozen=True, kw_only=True)
class Law:
    """A parametric loss law L(N, D, ...) with internal parameters theta."""

    name: str
    description: str
    min_distinct_sizes: int = 3

    def design(self, frame: pd.DataFrame) -> dict:
        raise NotImplementedError

    def terms(self, theta: np.ndarray, design: dict) -> np.ndarray:
        """theta (S, P) -> terms (K, S, R) whose log-sum-exp over K is log L.

        Terms lead so that reductions over the few terms are elementwise
        operations on contiguous (S, R) slabs; numpy reduces a short last axis slowly.
        """
        raise NotImplementedError

    def terms_vjp(self, theta: np.ndarray, design: dict, weights: np.ndarray) -> np.ndarray:
        """sum_{k,r} weights[k,s,r] * d terms[k,s,r] / d theta[s,p] -> (S, P)."""
        raise NotImplementedError

    def grid(self, design: dict, kind: str = "paper") -> np.ndarray:
        raise NotImplementedError

    def to_params(self, theta: np.ndarray, design: dict | None = None) -> dict[str, float]:
        raise NotImplementedError

    def to_theta(self, params: dict[str, float]) -> np.ndarray:
        raise NotImplementedError

    def predict(self, params: dict[str, float], n_params, n_tokens, **extra) -> np.ndarray:
        raise NotImplementedError


@dataclass(frozen=True, kw_only=True)
class LinearLogLaw(Law):
    """Terms linear in theta: terms[k, s, r] = features[r, k, :] @ theta[s]."""

    features: Callable[[pd.DataFrame], np.ndarray] = field(repr=False)
    coarse_axes: dict = field(default_factory=dict, repr=False)
    paper_axes: dict = field(default_factory=dict, repr=False)
    param_map: Callable[[np.ndarray], dict] = field(repr=False, default=None)
    theta_map: Callable[[dict], np.ndarray] = field(repr=False, default=None)

    def design(self, frame: pd.DataFrame) -> dict:
        feats = np.ascontiguousarray(self.features(frame).transpose(1, 0, 2))  # (K, R, P)
        # Only the parameters a term depends on enter its matmul (2-3 of P columns).
        used = [np.flatnonzero(np.any(f != 0, axis=0)) for f in feats]
        return {"F": feats, "used": used, "R": len(frame)}

    def terms(self, theta, design):
        out = np.empty((len(design["F"]), theta.shape[0], design["R"]))
        for k, (f, cols) in enumerate(zip(design["F"], design["used"])):
            np.matmul(theta[:, cols], f[:, cols].T, out=out[k])
        return out

    def terms_vjp(self, theta, design, weights):
        grad = np.zeros_like(theta)
        for k, (f, cols) in enumerate(zip(design["F"], design["used"])):
            grad[:, cols] += weights[k] @ f[:, cols]
        return grad

    def grid(self, design, kind="paper"):
        axes = self.paper_axes if kind == "paper" else self.coarse_axes
        return product_grid(**axes)

    def to_params(self, theta, design=None):
        return self.param_map(np.asarray(theta, dtype=float))

    def to_theta(self, params):
        return self.theta_map(params)

    def predict(self, params, n_params, n_tokens, **extra):
        frame = pd.DataFrame(
            {
                "n_params": np.atleast_1d(n_params).astype(float),
                "n_tokens": np.atleast_1d(n_tokens).astype(float),
            }
        )
        for key, value in extra.items():
            frame[key] = np.broadcast_to(np.asarray(value, float), len(frame))
        design = self.design(frame)
        t = self.terms(self.to_theta(params)[None, :], design)[:, 0, :]
        return np.exp(_lse(t, axis=0))


def _lse(t: np.ndarray, axis: int = -1) -> np.ndarray:
    m = np.max(t, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)  # every term switched off (log 0): the sum is 0, not nan
    with np.errstate(divide="ignore", over="ignore"):
        return (m + np.log(np.sum(np.exp(t - m), axis=axis, keepdims=True))).squeeze(axis)


# ---- Chinchilla-shaped laws: E + A/N'^alpha + B/D'^beta for an effective size N' and data D' -----------
# theta starts (a, alpha, b, beta, e); a law that reshapes N or D (compression factors, saturating data, an
# offset in N) adds its own parameters after them and its own derivatives of log N' and log D'.


def shaped_terms(theta: np.ndarray, log_size: np.ndarray, log_data: np.ndarray) -> np.ndarray:
    """(3, S, R) terms a - alpha log N', b - beta log D', e; log_size and log_data (S, R) or (R,)."""
    t0 = theta[:, [0]] - theta[:, [1]] * log_size
    t1 = theta[:, [2]] - theta[:, [3]] * log_data
    t0, t1 = np.broadcast_arrays(t0, t1)
    return np.stack([t0, t1, np.broadcast_to(theta[:, [4]], t0.shape)], axis=0)


def shaped_vjp(theta: np.ndarray, weights: np.ndarray, log_size, log_data) -> np.ndarray:
    """The gradient rows of (a, alpha, b, beta, e); the law fills in its own parameters' rows."""
    w0, w1, w2 = weights[0], weights[1], weights[2]
    grad = np.zeros_like(theta)
    grad[:, 0] = w0.sum(1)
    grad[:, 1] = -(w0 * log_size).sum(1)
    grad[:, 2] = w1.sum(1)
    grad[:, 3] = -(w1 * log_data).sum(1)
    grad[:, 4] = w2.sum(1)
    return grad


def shaped_params(theta) -> dict[str, float]:
    a, alpha, b, beta, e = theta[:5]
    return {
        "E": float(np.exp(e)),
        "A": float(np.exp(a)),
        "B": float(np.exp(b)),
        "alpha": float(alpha),
        "beta": float(beta),
    }


def shaped_loss(params: dict, size, data) -> np.ndarray:
    """E + A/N'^alpha + B/D'^beta at effective sizes N' and data D'."""
    size, data = np.asarray(size, float), np.asarray(data, float)
    return params["E"] + params["A"] / size ** params["alpha"] + params["B"] / data ** params["beta"]


def shaped_theta(params: dict) -> list[float]:
    return [np.log(params["A"]), params["alpha"], np.log(params["B"]), params["beta"], np.log(params["E"])]


# ---- Chinchilla: L = E + A / N^alpha + B / D^beta ---------------------------------


def _chinchilla_features(frame: pd.DataFrame) -> np.ndarray:
    log_n = np.log(frame["n_params"].to_numpy(float))
    log_d = np.log(frame["n_tokens"].to_numpy(float))
    r = len(frame)
    f = np.zeros((r, 3, 5))  # theta = (a, alpha, b, beta, e)
    f[:, 0, 0], f[:, 0, 1] = 1.0, -log_n
    f[:, 1, 2], f[:, 1, 3] = 1.0, -log_d
    f[:, 2, 4] = 1.0
    return f


def _chinchilla_params(theta):
    a, alpha, b, beta, e = theta
    return {
        "E": float(np.exp(e)),
        "A": float(np.exp(a)),
        "B": float(np.exp(b)),
        "alpha": float(alpha),
        "beta": float(beta),
    }


def _chinchilla_theta(p):
    with np.errstate(divide="ignore"):  # a coefficient of 0 is log -inf: its term drops out of the sum
        return np.array([np.log(p["A"]), p["alpha"], np.log(p["B"]), p["beta"], np.log(p["E"])])


CHINCHILLA = LinearLogLaw(
    name="chinchilla",
    description="L = E + A/N^alpha + B/D^beta (reference Eq 1)",
    features=_chinchilla_features,
    paper_axes=PAPER_AXES,
    coarse_axes=COARSE_AXES,
    param_map=_chinchilla_params,
    theta_map=_chinchilla_theta,
)


def extra_columns(frame: pd.DataFrame) -> dict:
    """The columns a law's predict() takes besides N and D (tokens per modality, sparsity)."""
    return {
        c: frame[c].to_numpy()
        for c in frame.columns
        if c.startswith("n_tokens_") or c in ("sparsity", "n_experts", "top_k")
    }


# ---- Sparsity-aware (reference Table 12 / C.7, after Abnar et al.) -------------------
# L = E + A/N^alpha + B/D^beta + C (1-S)^lambda + d (1-S)^delta / N^gamma, with S the
# fraction of inactive experts. The extracted reference text loses the fraction bars;
# we use the reading in which more sparsity lowers the loss at fixed active N (the
# paper's MoE finding) for positive lambda and delta, as Table 12 reports.


def sparsity_of(frame: pd.DataFrame) -> np.ndarray:
    if "sparsity" in frame:
        s = frame["sparsity"].to_numpy(float)
    elif "n_experts" in frame:
        top_k = frame["top_k"].to_numpy(float) if "top_k" in frame else 1.0
        s = 1.0 - top_k / frame["n_experts"].to_numpy(float)
    else:
        raise SweeperInputError(
            "sparsity",
            None,
            "the sparsity law needs a 'sparsity' column (fraction of inactive experts) or 'n_experts'",
        )
    if not np.all((s >= 0) & (s < 1)):
        raise SweeperInputError(
            "sparsity", s[~((s >= 0) & (s < 1))][:3].tolist(), "sparsity must lie in [0, 1)"
        )
    return s


def _sparsity_features(frame: pd.DataFrame) -> np.ndarray:
    log_n = np.log(frame["n_params"].to_numpy(float))
    log_d = np.log(frame["n_tokens"].to_numpy(float))
    log_1ms = np.log1p(-sparsity_of(frame))
    f = np.zeros((len(frame), 5, 10))
    f[:, 0, 0], f[:, 0, 1] = 1.0, -log_n  # A / N^alpha
    f[:, 1, 2], f[:, 1, 3] = 1.0, -log_d  # B / D^beta
    f[:, 2, 4], f[:, 2, 5] = 1.0, log_1ms  # C (1-S)^lambda
    f[:, 3, 6], f[:, 3, 7], f[:, 3, 8] = 1.0, log_1ms, -log_n  # d (1-S)^delta / N^gamma
    f[:, 4, 9] = 1.0  # E
    return f


def _sparsity_params(theta):
    a, alpha, b, beta, c, lam, dd, delta, gamma, e = theta
    return {
        "E": float(np.exp(e)),
        "A": float(np.exp(a)),
        "B": float(np.exp(b)),
        "alpha": float(alpha),
        "beta": float(beta),
        "C": float(np.exp(c)),
        "lambda": float(lam),
        "d": float(np.exp(dd)),
        "delta": float(delta),
        "gamma": float(gamma),
    }


def _sparsity_theta(p):
    return np.array(
        [
            np.log(p["A"]),
            p["alpha"],
            np.log(p["B"]),
            p["beta"],
            np.log(p["C"]),
            p["lambda"],
            np.log(p["d"]),
            p["delta"],
            p["gamma"],
            np.log(p["E"]),
        ]
    )


# A full product over 10 axes is out of reach; these axes keep the Chinchilla box
# for the shared terms and two values for each sparsity term (2,592 / 648 starts).
SPARSITY_PAPER = dict(
    a=(0.0, 10.0, 20.0),
    alpha=(0.25, 0.75, 1.5),
    b=(0.0, 10.0, 20.0),
    beta=(0.25, 0.75),
    c=(-2.0, 0.0),
    lam=(0.2, 1.0),
    dd=(5.0, 15.0),
    delta=(0.2,),
    gamma=(0.3, 0.8),
    e=(-1.0, 0.5),
)
SPARSITY_COARSE = dict(SPARSITY_PAPER, a=(0.0, 10.0), alpha=(0.5, 1.0), b=(5.0, 15.0), lam=(0.5,))

SPARSITY = LinearLogLaw(
    name="sparsity",
    description="L = E + A/N^alpha + B/D^beta + C(1-S)^lambda + d(1-S)^delta/N^gamma "
    "(reference Table 12, N = active parameters)",
    features=_sparsity_features,
    paper_axes=SPARSITY_PAPER,
    coarse_axes=SPARSITY_COARSE,
    param_map=_sparsity_params,
    theta_map=_sparsity_theta,
)
