"""Hyperparameter scaling laws: the optimal learning rate and batch as power laws of C (or N).

As in the DeepSeek LLM study: per rung, the trials that ran to the end and came
within `near_optimal` of the rung's best loss form the near-optimal region; the
law is a log-log least-squares line through the rungs' best values, and its
bootstrap (the same multinomial resampling of rungs as the loss laws, plus a
draw from each rung's near-optimal region in place of its argmin) gives
intervals that reflect how flat each optimum is. The edges of the region get
their own lines, so the report shows a band, not only the argmin.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from sweeper.errors import SweeperInputError
from sweeper.fit.bootstrap import resample_weights
from sweeper.fit.result import FitResult, summarise

LAW_NAME = "hparam_power"
FITTED = ("lr", "batch_tokens")  # the hyperparameters a recipe takes from a law


@dataclass(frozen=True, kw_only=True)
class RungSummary:
    """One tuned rung: its point, what its trials found, and what they cost."""

    point: dict
    n_trials: int
    n_completed: int
    n_stopped: int
    flops_spent: float
    best_loss: float
    best: dict[str, float]  # hyperparameter -> value of the best completed trial
    near: dict[str, tuple[float, float]]  # hyperparameter -> (lowest, highest) among near-optimal trials
    near_values: dict[str, list[float]] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "point": self.point,
            "n_trials": self.n_trials,
            "n_completed": self.n_completed,
            "n_stopped": self.n_stopped,
            "flops_spent": self.flops_spent,
            "best_loss": self.best_loss,
            "best": self.best,
            "near": {k: list(v) for k, v in self.near.items()},
            "near_values": self.near_values,
        }

    @classmethod
    def from_dict(cls, data: dict) -> RungSummary:
        """The inverse of to_dict (a rung.json artifact): how a resumed tune job reads a finished rung."""
        return cls(**{**data, "near": {k: tuple(v) for k, v in data["near"].items()}})


def summarise_rung(point: dict, trials: list[dict], tolerance: float) -> RungSummary:
    """trials: [{"hparams": {...}, "val_loss": float, "completed": bool, "flops": float}]."""
    done = [t for t in trials if t["completed"] and math.isfinite(t["val_loss"])]
    spent = float(sum(t["flops"] for t in trials))
    stopped = sum(1 for t in trials if t.get("stopped", not t["completed"]))
    if not done:
        return RungSummary(
            point=point,
            n_trials=len(trials),
            n_completed=0,
            n_stopped=stopped,
            flops_spent=spent,
            best_loss=math.nan,
            best={},
            near={},
        )
    best = min(done, key=lambda t: t["val_loss"])
    near = [t for t in done if t["val_loss"] <= best["val_loss"] * (1.0 + tolerance)]
    names = [k for k, v in best["hparams"].items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
    values = {k: [float(t["hparams"][k]) for t in near] for k in names}
    return RungSummary(
        point=point,
        n_trials=len(trials),
        n_completed=len(done),
        n_stopped=stopped,
        flops_spent=spent,
        best_loss=float(best["val_loss"]),
        best={k: float(best["hparams"][k]) for k in names},
        near={k: (min(v), max(v)) for k, v in values.items()},
        near_values=values,
    )


def _line(x: np.ndarray, y: np.ndarray, w: np.ndarray | None = None) -> tuple[float, float]:
    """Weighted least squares of log y on log x: (log K, exponent)."""
    lx, ly = np.log(x), np.log(y)
    w = np.ones_like(lx) if w is None else w
    mx, my = np.average(lx, weights=w), np.average(ly, weights=w)
    var = np.average((lx - mx) ** 2, weights=w)
    slope = np.average((lx - mx) * (ly - my), weights=w) / var
    return float(my - slope * mx), float(slope)


def fit_hparam_law(
    name: str,
    rungs: list[RungSummary],
    *,
    scale_with: str = "C",
    n_bootstrap: int = 200,
    seed: int = 0,
    ci_level: float = 0.95,
) -> FitResult:
    """value_opt = K x^exponent over the rungs (x = C or N), with bootstrap CIs and the near-optimal band."""
    usable = [r for r in rungs if name in r.best and r.best[name] > 0]
    x = np.array([_x(r, scale_with) for r in usable], float)
    if len(usable) < 2 or len(np.unique(x)) < 2:
        raise SweeperInputError(
            "rungs",
            len(usable),
            f"fitting {name} against {scale_with} needs tuned rungs at "
            f"two or more distinct {scale_with}; tune more sizes (tune.sizes)",
        )
    y = np.array([r.best[name] for r in usable], float)
    log_k, slope = _line(x, y)
    lo = np.array([r.near[name][0] for r in usable], float)
    hi = np.array([r.near[name][1] for r in usable], float)
    params = {"K": math.exp(log_k), "exponent": slope}
    derived = {}
    for edge, vals in (("near_lo", lo), ("near_hi", hi)):
        k_e, a_e = _line(x, vals)
        derived[f"{edge}_K"], derived[f"{edge}_exponent"] = math.exp(k_e), a_e
    mean, std, ci = {}, {}, {}
    if n_bootstrap > 0:
        mean, std, ci = summarise(_bootstrap(name, usable, x, n_bootstrap, seed), ci_level)
    resid = np.log(y) - (log_k + slope * np.log(x))
    points = [
        {"x": float(xi), "best": float(yi), "near": [float(a), float(b)], "point_id": r.point["point_id"]}
        for xi, yi, a, b, r in zip(x, y, lo, hi, usable)
    ]
    return FitResult(
        law=LAW_NAME,
        params=params,
        derived=derived,
        objective=float(np.sum(resid**2)),
        n_runs=len(usable),
        target=name,
        method="hparam",
        ci=ci,
        std=std,
        mean=mean,
        n_bootstrap=n_bootstrap,
        ci_level=ci_level,
        extras={"scale_with": scale_with, "points": points},
    )


def _x(rung: RungSummary, scale_with: str) -> float:
    return float(rung.point["budget"] if scale_with == "C" else rung.point["n_params"])


def _bootstrap(
    name: str, rungs: list[RungSummary], x: np.ndarray, n: int, seed: int
) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed + 1)
    weights = resample_weights(len(rungs), n, seed)
    samples = {"K": np.full(n, np.nan), "exponent": np.full(n, np.nan)}
    for i, w in enumerate(weights):
        if len(np.unique(x[w > 0])) < 2:
            continue  # every draw at one x: no slope to estimate
        y = np.array([rng.choice(r.near_values.get(name) or [r.best[name]]) for r in rungs], float)
        log_k, slope = _line(x[w > 0], y[w > 0], w[w > 0])
        samples["K"][i], samples["exponent"][i] = math.exp(log_k), slope
    return samples


def predict(fit: FitResult, x) -> np.ndarray:
    return fit.params["K"] * np.asarray(x, float) ** fit.params["exponent"]


def format_law(fit: FitResult) -> str:
    x = fit.extras.get("scale_with", "C")
    ci = fit.ci.get("exponent")
    shown = f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else ""
    d = fit.derived
    return (
        f"{fit.target}_opt = {fit.params['K']:.3g} * {x}^{fit.params['exponent']:.3f}{shown} "
        f"({int(fit.ci_level * 100)}% CI, {fit.n_runs} rungs); near-optimal band "
        f"{d['near_lo_K']:.3g}*{x}^{d['near_lo_exponent']:.3f} .. "
        f"{d['near_hi_K']:.3g}*{x}^{d['near_hi_exponent']:.3f}"
    )
