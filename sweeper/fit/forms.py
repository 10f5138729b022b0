"""Law forms besides Chinchilla's, fitted side by side so a prediction carries what they disagree on.

Every form is a registered Law in the log-sum-exp shape the optimiser takes (log L = LSE_k term_k),
so each gets the same vectorised multi-start Huber L-BFGS and bootstrap as Chinchilla's:

- interaction: E + A/N^alpha + B/D^beta + G/(N^alpha D^beta), an N·D coupling term (the expanded
  product (E' + A'/N^alpha)(1 + B'/D^beta), the multiplicative shape of Kaplan-style fits);
- data_constrained: E + A/N^alpha + B/D_eff^beta with D_eff = S (1 - exp(-D/S)): tokens past S are
  worth less and less, the saturating effective data of repeated epochs (Muennighoff et al. 2023);
- kaplan: Kaplan et al. 2020's L(N, D) = ((N_c/N)^(alpha_N/alpha_D) + D_c/D)^alpha_D, no floor;
- kaplan_floor: the same with an irreducible loss E (Henighan et al. 2020);
- offset_n: E + A/(N + N_0)^alpha + B/D^beta, curvature at small N: parameters the count leaves out
  (embeddings, Pearce & Song 2024) make the loss bend away from a power law in N for small models.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from sweeper.fit.laws import (
    COARSE_AXES,
    Law,
    LinearLogLaw,
    _lse,
    product_grid,
    shaped_loss,
    shaped_params,
    shaped_terms,
    shaped_theta,
    shaped_vjp,
)


def log_design(frame: pd.DataFrame) -> dict:
    return {
        "log_n": np.log(frame["n_params"].to_numpy(float)),
        "log_d": np.log(frame["n_tokens"].to_numpy(float)),
        "R": len(frame),
    }


# ---- interaction: E + A/N^alpha + B/D^beta + G/(N^alpha D^beta) ----------------------------


def _interaction_features(frame: pd.DataFrame) -> np.ndarray:
    log_n = np.log(frame["n_params"].to_numpy(float))
    log_d = np.log(frame["n_tokens"].to_numpy(float))
    f = np.zeros((len(frame), 4, 6))  # theta = (a, alpha, b, beta, e, g); E stays the last term
    f[:, 0, 0], f[:, 0, 1] = 1.0, -log_n
    f[:, 1, 2], f[:, 1, 3] = 1.0, -log_d
    f[:, 2, 5], f[:, 2, 1], f[:, 2, 3] = 1.0, -log_n, -log_d
    f[:, 3, 4] = 1.0
    return f


def _interaction_params(theta):
    a, alpha, b, beta, e, g = theta
    return {
        "E": float(np.exp(e)),
        "A": float(np.exp(a)),
        "B": float(np.exp(b)),
        "alpha": float(alpha),
        "beta": float(beta),
        "G": float(np.exp(g)),
    }


def _interaction_theta(p):
    with np.errstate(divide="ignore"):
        return np.array(
            [np.log(p["A"]), p["alpha"], np.log(p["B"]), p["beta"], np.log(p["E"]), np.log(p["G"])]
        )


# g starts low (the coupling off, Chinchilla's optimum) and high (log A + log B scale).
_INTERACTION_COARSE = dict(COARSE_AXES, g=(-5.0, 15.0))
_INTERACTION_PAPER = dict(
    a=(0.0, 5.0, 10.0, 20.0),
    alpha=(0.25, 0.5, 1.0, 1.5),
    b=(0.0, 5.0, 10.0, 20.0),
    beta=(0.25, 0.5, 1.0, 1.5),
    e=(-1.0, 0.0, 1.0),
    g=(-5.0, 10.0, 25.0),
)

INTERACTION = LinearLogLaw(
    name="interaction",
    description="L = E + A/N^alpha + B/D^beta + G/(N^alpha D^beta) (an N·D coupling term)",
    features=_interaction_features,
    coarse_axes=_INTERACTION_COARSE,
    paper_axes=_INTERACTION_PAPER,
    param_map=_interaction_params,
    theta_map=_interaction_theta,
)


# ---- data_constrained: E + A/N^alpha + B/D_eff^beta, D_eff = S (1 - exp(-D/S)) ----------------


@dataclass(frozen=True, kw_only=True)
class SaturatingDataLaw(Law):
    """theta = (a, alpha, b, beta, e, s) with s = log S, the token count where data saturates."""

    def design(self, frame: pd.DataFrame) -> dict:
        return log_design(frame)

    @staticmethod
    def _x_and_log_deff(theta, design):
        x = np.exp(design["log_d"][None, :] - theta[:, [5]])  # D / S
        with np.errstate(divide="ignore", over="ignore"):
            return x, theta[:, [5]] + np.log(-np.expm1(-x))

    def terms(self, theta, design):
        _, log_deff = self._x_and_log_deff(theta, design)
        return shaped_terms(theta, design["log_n"][None, :], log_deff)

    def terms_vjp(self, theta, design, weights):
        x, log_deff = self._x_and_log_deff(theta, design)
        with np.errstate(over="ignore", invalid="ignore"):
            # d log D_eff / d s = 1 - x / (e^x - 1): 0 while D << S (D_eff = D), 1 once saturated.
            dlog = np.where(x < 1e-8, 0.0, 1.0 - x / np.expm1(np.minimum(x, 700.0)))
        grad = shaped_vjp(theta, weights, design["log_n"][None, :], log_deff)
        grad[:, 5] = -(weights[1] * theta[:, [3]] * dlog).sum(1)
        return grad

    def grid(self, design, kind="paper"):
        top = float(np.max(design["log_d"]))
        base = product_grid(**COARSE_AXES)
        s = np.array([top + 1.0, top + 4.0])  # saturating inside the data's reach, and well past it
        return np.concatenate([np.repeat(base, len(s), axis=0), np.tile(s, len(base))[:, None]], axis=1)

    def to_params(self, theta, design=None):
        return {**shaped_params(theta), "S": float(np.exp(theta[5]))}

    def to_theta(self, params):
        return np.array(shaped_theta(params) + [np.log(params["S"])])

    def predict(self, params, n_params, n_tokens, **extra):
        s = params["S"]
        return shaped_loss(params, n_params, s * -np.expm1(-np.asarray(n_tokens, float) / s))


DATA_CONSTRAINED = SaturatingDataLaw(
    name="data_constrained",
    description="L = E + A/N^alpha + B/D_eff^beta, D_eff = S(1 - exp(-D/S)) (saturating data, after "
    "Muennighoff et al. 2023)",
)


# ---- offset_n: E + A/(N + N_0)^alpha + B/D^beta ------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class OffsetSizeLaw(Law):
    """theta = (a, alpha, b, beta, e, m) with m = log N_0; log(N + N_0) = LSE(log N, m)."""

    def design(self, frame: pd.DataFrame) -> dict:
        return log_design(frame)

    @staticmethod
    def _log_size(theta, design):
        u = np.stack(
            [
                np.broadcast_to(design["log_n"][None, :], (len(theta), design["R"])),
                np.broadcast_to(theta[:, [5]], (len(theta), design["R"])),
            ]
        )
        log_size = _lse(u, axis=0)
        return log_size, np.exp(theta[:, [5]] - log_size)  # log(N + N_0), and N_0 / (N + N_0)

    def terms(self, theta, design):
        log_size, _ = self._log_size(theta, design)
        return shaped_terms(theta, log_size, design["log_d"][None, :])

    def terms_vjp(self, theta, design, weights):
        log_size, share = self._log_size(theta, design)
        grad = shaped_vjp(theta, weights, log_size, design["log_d"][None, :])
        grad[:, 5] = -(weights[0] * theta[:, [1]] * share).sum(1)
        return grad

    def grid(self, design, kind="paper"):
        smallest = float(np.min(design["log_n"]))
        base = product_grid(**COARSE_AXES)
        m = np.array([smallest - 4.0, smallest])  # the offset negligible, and as large as the smallest model
        return np.concatenate([np.repeat(base, len(m), axis=0), np.tile(m, len(base))[:, None]], axis=1)

    def to_params(self, theta, design=None):
        return {**shaped_params(theta), "N_0": float(np.exp(theta[5]))}

    def to_theta(self, params):
        return np.array(shaped_theta(params) + [np.log(params["N_0"])])

    def predict(self, params, n_params, n_tokens, **extra):
        return shaped_loss(params, np.asarray(n_params, float) + params["N_0"], n_tokens)


OFFSET_N = OffsetSizeLaw(
    name="offset_n",
    description="L = E + A/(N + N_0)^alpha + B/D^beta (curvature at small N: uncounted parameters N_0, "
    "after Pearce & Song 2024)",
)


# ---- Kaplan et al. 2020, with and without an irreducible loss --------------------------------


@dataclass(frozen=True, kw_only=True)
class KaplanLaw(Law):
    """L = [E +] ((N_c/N)^(alpha_N/alpha_D) + D_c/D)^alpha_D.

    theta = (p, q, c, alpha_D[, e]) with q = alpha_N/alpha_D, p = q log N_c, c = log D_c, so
    log of the bracket is m = LSE(p - q log N, c - log D) and its term is alpha_D m.
    """

    floor: bool = False

    def design(self, frame: pd.DataFrame) -> dict:
        return log_design(frame)

    @staticmethod
    def _bracket(theta, design):
        u = np.stack(
            [
                theta[:, [0]] - theta[:, [1]] * design["log_n"][None, :],
                np.broadcast_to(theta[:, [2]] - design["log_d"][None, :], (len(theta), design["R"])),
            ]
        )
        m = _lse(u, axis=0)
        return m, np.exp(u - m)  # log bracket (S, R) and each part's share (2, S, R)

    def terms(self, theta, design):
        m, _ = self._bracket(theta, design)
        term = theta[:, [3]] * m
        if not self.floor:
            return term[None]
        return np.stack([term, np.broadcast_to(theta[:, [4]], term.shape)], axis=0)

    def terms_vjp(self, theta, design, weights):
        m, share = self._bracket(theta, design)
        w = weights[0]
        scaled = w * theta[:, [3]]
        grad = np.zeros_like(theta)
        grad[:, 0] = (scaled * share[0]).sum(1)
        grad[:, 1] = -(scaled * share[0] * design["log_n"][None, :]).sum(1)
        grad[:, 2] = (scaled * share[1]).sum(1)
        grad[:, 3] = (w * m).sum(1)
        if self.floor:
            grad[:, 4] = weights[1].sum(1)
        return grad

    def grid(self, design, kind="paper"):
        log_n, log_d = design["log_n"], design["log_d"]
        axes = dict(q=(0.5, 1.0, 2.0), alpha_d=(0.05, 0.1, 0.3))
        rows = []
        for q, alpha_d in product_grid(**axes):
            # N_c and D_c a few decades past the data: the bracket then sits at a few, as fitted laws do.
            for dn, dd in ((2.0, 2.0), (6.0, 4.0), (12.0, 8.0)):
                row = [q * (np.max(log_n) + dn), q, np.max(log_d) + dd, alpha_d]
                rows += [row + [e] for e in (-1.0, 0.5)] if self.floor else [row]
        return np.array(rows)

    def to_params(self, theta, design=None):
        p, q, c, alpha_d = theta[:4]
        out = {
            "N_c": float(np.exp(p / q)) if q != 0 else float("nan"),
            "alpha_N": float(q * alpha_d),
            "D_c": float(np.exp(c)),
            "alpha_D": float(alpha_d),
        }
        if self.floor:
            out["E"] = float(np.exp(theta[4]))
        return out

    def to_theta(self, params):
        q = params["alpha_N"] / params["alpha_D"]
        theta = [q * np.log(params["N_c"]), q, np.log(params["D_c"]), params["alpha_D"]]
        return np.array(theta + ([np.log(params["E"])] if self.floor else []))

    def predict(self, params, n_params, n_tokens, **extra):
        n = np.asarray(n_params, float)
        d = np.asarray(n_tokens, float)
        bracket = (params["N_c"] / n) ** (params["alpha_N"] / params["alpha_D"]) + params["D_c"] / d
        return params.get("E", 0.0) + bracket ** params["alpha_D"]


KAPLAN = KaplanLaw(
    name="kaplan", description="L = ((N_c/N)^(alpha_N/alpha_D) + D_c/D)^alpha_D (Kaplan et al. 2020, Eq 1.5)"
)
KAPLAN_FLOOR = KaplanLaw(
    name="kaplan_floor",
    floor=True,
    description="L = E + ((N_c/N)^(alpha_N/alpha_D) + D_c/D)^alpha_D (Kaplan's form "
    "with an irreducible loss, Henighan et al. 2020)",
)

# The forms a prediction weighs, Chinchilla's first: the ones a table of (N, D, loss) alone can fit.
PREDICTION_FORMS = ("chinchilla", "interaction", "data_constrained", "offset_n", "kaplan", "kaplan_floor")
