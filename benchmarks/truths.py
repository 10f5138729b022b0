"""True laws for the coverage and prediction benchmarks: exact Chinchilla laws, and laws of other forms.

Nothing in the project was tuned on these. The misspecified ones are none of the forms the predictor
fits (sweeper.fit.forms): each bends a Chinchilla law in a way the literature reports, so a fit of
the Chinchilla form looks fine in sample and extrapolates wrongly.

- coupled: an N·D term with its own exponents, G / (N^gamma D^delta), gamma and delta unlike alpha, beta;
- repeated: Muennighoff et al. 2023's effective data for U unique tokens repeated, with R* = 6;
- curved: an N exponent that grows with log N (curvature at small N), alpha + kappa log(N / N_mid);
- power_sum: the reducible terms summed under a power, R0 ((A/N^alpha + B/D^beta) / R0)^gamma;
- broken: a data exponent that steepens from beta to beta + delta past D_b (a broken power law).

Each is registered (sweeper.fit.register_law) so that the simulated trainable draws losses from it.
A law is placed on a ladder by its (N_mid, D_mid): the compute-optimal point of its Chinchilla part.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sweeper.fit import get_law, register_law
from sweeper.fit.laws import Law
from sweeper.fit.prediction import optimum_grid, optimum_of

EXACT = {  # coverage.py's laws (kept), and fresh ones added after later changes
    "L1": {"E": 2.2, "alpha": 0.28, "beta": 0.42},
    "L2": {"E": 1.6, "alpha": 0.40, "beta": 0.31},
    "L3": {"E": 2.0, "alpha": 0.46, "beta": 0.36},
    "L4": {"E": 1.85, "alpha": 0.33, "beta": 0.29},
    "L5": {"E": 1.95, "alpha": 0.37, "beta": 0.27},  # added after the form averaging
    "L6": {"E": 2.3, "alpha": 0.36, "beta": 0.40},  # added after the profiles (sweeper.fit.profile)
}
OTHER_FORMS = {
    "coupled": {"E": 2.1, "alpha": 0.34, "beta": 0.30, "share": 0.35, "gamma": 0.18, "delta": 0.16},
    "repeated": {"E": 1.9, "alpha": 0.31, "beta": 0.36, "unique": 3.0, "r_star": 6.0},
    "curved": {"E": 2.05, "alpha": 0.27, "beta": 0.39, "kappa": 0.045},
    # added after the form averaging: the reducible terms summed under a power, (A/N^a + B/D^b)^g
    "power_sum": {"E": 1.8, "alpha": 0.35, "beta": 0.32, "gamma": 0.75},
    # added after the profiles: a data exponent that steepens by delta past D_b = brk x D_mid (a broken
    # power law, Caballero et al. 2023)
    "broken": {"E": 2.15, "alpha": 0.32, "beta": 0.30, "brk": 4.0, "delta": 0.1},
}
REDUCIBLE = 0.35  # the reducible loss at (N_mid, D_mid), as a share of E


def chinchilla_part(shape: dict, n_mid: float, d_mid: float, reducible: float = REDUCIBLE) -> dict:
    """A, B such that (n_mid, d_mid) is the Chinchilla part's optimum, its terms `reducible` x E there."""
    e, alpha, beta = shape["E"], shape["alpha"], shape["beta"]
    n_term, d_term = reducible * e * beta / (alpha + beta), reducible * e * alpha / (alpha + beta)
    return {"E": e, "A": n_term * n_mid**alpha, "B": d_term * d_mid**beta, "alpha": alpha, "beta": beta}


@dataclass(frozen=True, kw_only=True)
class BentLaw(Law):
    """A truth only: predict() gives its losses; it is never fitted (no terms)."""

    def predict(self, params, n_params, n_tokens, **extra):
        n, d = np.asarray(n_params, float), np.asarray(n_tokens, float)
        base = params["E"] + params["A"] / n ** params["alpha"]
        if self.name == "truth_coupled":
            return (
                base
                + params["B"] / d ** params["beta"]
                + params["G"] / (n ** params["gamma"] * d ** params["delta"])
            )
        if self.name == "truth_repeated":
            u, r_star = params["U"], params["r_star"]
            repeats = np.maximum(d / u - 1.0, 0.0)
            d_eff = np.where(d <= u, d, u + u * r_star * (1.0 - np.exp(-repeats / r_star)))
            return base + params["B"] / d_eff ** params["beta"]
        if self.name == "truth_power_sum":
            reducible = params["A"] / n ** params["alpha"] + params["B"] / d ** params["beta"]
            return params["E"] + params["R0"] * (reducible / params["R0"]) ** params["gamma"]
        if self.name == "truth_broken":
            bend = (1.0 + d / params["D_b"]) ** -params["delta"]
            return base + params["B"] / d ** params["beta"] * bend
        if self.name == "truth_curved":
            alpha = params["alpha"] + params["kappa"] * np.log(n / params["N_mid"])
            return params["E"] + params["A"] / n**alpha + params["B"] / d ** params["beta"]
        raise KeyError(self.name)


for _name in OTHER_FORMS:
    register_law(BentLaw(name=f"truth_{_name}", description=f"benchmark truth: {_name}"), replace=True)


def placed(name: str, n_mid: float, d_mid: float) -> tuple[str, dict]:
    """(registered law name, parameters) of benchmark law `name` with its optimum near (n_mid, d_mid)."""
    if name in EXACT:
        return "chinchilla", chinchilla_part(EXACT[name], n_mid, d_mid)
    return placed_form(name, OTHER_FORMS[name], n_mid, d_mid)


def placed_form(
    form: str, shape: dict, n_mid: float, d_mid: float, reducible: float = REDUCIBLE
) -> tuple[str, dict]:
    """(registered law name, parameters) of a law of `form` (one of OTHER_FORMS' names) and `shape`,
    its Chinchilla part's optimum at (n_mid, d_mid) with terms `reducible` x E there."""
    params = chinchilla_part(shape, n_mid, d_mid, reducible)
    if form == "coupled":  # the coupling carries `share` of the reducible loss at the mid point
        params.update(
            gamma=shape["gamma"],
            delta=shape["delta"],
            G=shape["share"] * reducible * shape["E"] * n_mid ** shape["gamma"] * d_mid ** shape["delta"],
        )
    elif form == "repeated":  # unique tokens: `unique` x the mid point's tokens, so big budgets repeat
        params.update(U=shape["unique"] * d_mid, r_star=shape["r_star"])
    elif form == "power_sum":  # equal to the Chinchilla part at the mid point, bent away from it elsewhere
        params.update(gamma=shape["gamma"], R0=reducible * shape["E"])
    elif form == "curved":
        params.update(kappa=shape["kappa"], N_mid=n_mid)
    elif form == "broken":
        params.update(D_b=shape["brk"] * d_mid, delta=shape["delta"])
    return f"truth_{form}", params


def true_prediction(law: str, params: dict, frame, compute: float) -> dict:
    """N_opt, D_opt, L_opt at `compute` under the true law (sizes charged the runs' FLOPs per token, as the
    predictor charges them), and the local exponents a = dlog N_opt/dlog C, b = dlog D_opt/dlog C there."""
    out = {}
    for c in (compute, compute * 2.0):
        n, d = optimum_grid(frame, c)
        out[c] = optimum_of(get_law(law).predict(params, n, d), n, d)
    (n0, d0, l0), (n1, d1, _) = out[compute], out[compute * 2.0]
    step = np.log(2.0)
    return {"N_opt": n0, "D_opt": d0, "loss": l0, "a": np.log(n1 / n0) / step, "b": np.log(d1 / d0) / step}
