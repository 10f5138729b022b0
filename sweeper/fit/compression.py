"""The modality compression law (multimodal-scaling-hypothesis.txt, Eq 4).

L = E + A/N^alpha + B/D_eff^beta with D_eff = sum_m D_m / k_m: tokens of each
modality count for less (or more) than a text token by a fitted compression
factor k_m. B absorbs any common scale, so the reference modality (text when
present, else the first alphabetically) is pinned to k = 1 and the others are
fitted as kappa_m = log k_m.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from sweeper.errors import SweeperInputError
from sweeper.fit.laws import (
    COARSE_AXES,
    Law,
    _lse,
    product_grid,
    shaped_params,
    shaped_terms,
    shaped_theta,
    shaped_vjp,
)

PREFIX = "n_tokens_"
# Fewer Chinchilla starts than the paper's grid: each extra modality multiplies them.
_BASE_AXES = dict(
    a=(0.0, 5.0, 10.0, 20.0, 30.0),
    alpha=(0.0, 0.5, 1.0, 1.5, 2.5),
    b=(0.0, 5.0, 10.0, 20.0, 30.0),
    beta=(0.0, 0.5, 1.0, 1.5, 2.5),
    e=(-1.0, 0.0, 1.0),
)


def modalities_of(columns) -> list[str]:
    mods = sorted(c[len(PREFIX) :] for c in columns if c.startswith(PREFIX))
    if "text" in mods:  # text is the natural unit; keep it first as the reference
        mods.remove("text")
        mods.insert(0, "text")
    return mods


@dataclass(frozen=True, kw_only=True)
class CompressionLaw(Law):
    def design(self, frame: pd.DataFrame) -> dict:
        mods = modalities_of(frame.columns)
        if len(mods) < 2:
            raise SweeperInputError(
                "n_tokens_<modality>",
                mods,
                "the compression law needs token columns for at least two modalities, "
                "e.g. n_tokens_text and n_tokens_image",
            )
        log_dm = np.log(np.stack([frame[PREFIX + m].to_numpy(float) for m in mods], axis=1))
        return {
            "log_n": np.log(frame["n_params"].to_numpy(float)),
            "log_dm": log_dm,
            "modalities": mods,
            "R": len(frame),
        }

    def _log_deff(self, theta, design):
        kappa = np.concatenate([np.zeros((theta.shape[0], 1)), theta[:, 5:]], axis=1)
        z = design["log_dm"][None, :, :] - kappa[:, None, :]  # (S, R, M)
        return z

    def terms(self, theta, design):
        log_deff = _lse(self._log_deff(theta, design), axis=-1)
        return shaped_terms(theta, design["log_n"][None, :], log_deff)

    def terms_vjp(self, theta, design, weights):
        z = self._log_deff(theta, design)
        log_deff = _lse(z, axis=-1)
        soft = np.exp(z - log_deff[..., None])
        grad = shaped_vjp(theta, weights, design["log_n"][None, :], log_deff)
        # d log D_eff / d kappa_m = -softmax_m, so d t1 / d kappa_m = beta * softmax_m.
        grad[:, 5:] = theta[:, [3]] * np.einsum("sr,srm->sm", weights[1], soft[:, :, 1:])
        return grad

    def grid(self, design, kind="paper"):
        extra = len(design["modalities"]) - 1
        base = product_grid(**(_BASE_AXES if kind == "paper" else COARSE_AXES))
        kappas = product_grid(
            **{f"k{i}": ((-1.0, 0.0, 1.0) if kind == "paper" else (0.0,)) for i in range(extra)}
        )
        return np.concatenate([np.repeat(base, len(kappas), axis=0), np.tile(kappas, (len(base), 1))], axis=1)

    def to_params(self, theta, design=None):
        out = shaped_params(theta)
        mods = design["modalities"] if design else [f"m{i}" for i in range(len(theta) - 4)]
        out[f"k_{mods[0]}"] = 1.0
        for m, kappa in zip(mods[1:], theta[5:]):
            out[f"k_{m}"] = float(np.exp(kappa))
        return out

    def to_theta(self, params):
        ks = [k for k in params if k.startswith("k_")][1:]  # first k_ is the pinned reference
        return np.array(shaped_theta(params) + [np.log(params[k]) for k in ks])

    def predict(self, params, n_params, n_tokens=None, **extra):
        mods = [k[2:] for k in params if k.startswith("k_")]
        missing = [PREFIX + m for m in mods if PREFIX + m not in extra]
        if missing:
            raise SweeperInputError("predict", missing, "pass tokens per modality as keywords")
        n = np.atleast_1d(np.asarray(n_params, float))
        d_eff = sum(np.asarray(extra[PREFIX + m], float) / params[f"k_{m}"] for m in mods)
        return params["E"] + params["A"] / n ** params["alpha"] + params["B"] / d_eff ** params["beta"]


COMPRESSION = CompressionLaw(
    name="compression", description="L = E + A/N^alpha + B/(sum_m D_m/k_m)^beta (compression factors k_m)"
)
