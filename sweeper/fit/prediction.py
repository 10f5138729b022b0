"""The prediction a study acts on: N_opt, D_opt and the loss at compute C (or the loss of a given N, D),
with an interval that carries the noise, what the law forms disagree on, and what a backtest missed.

1. Every form of sweeper.fit.forms is fitted to the runs, each with the same bootstrap resamples.
2. Backtest: each form is refitted without the top slice(s) of compute and predicts them.
3. Each form is weighed by how likely the runs are under it: its in-sample fit with Akaike's
   penalty, plus its backtest errors (a pseudo-Bayesian model average, Yao et al. 2018).
4. The interval is the weighted mixture of the forms' bootstrap distributions (runs resampled with
   replacement: over exact and bent laws it covered better than resampling residuals at the same runs,
   benchmarks/coverage.py --resampling), with a nested form's extra term profiled (sweeper.fit.profile:
   the term pinned where the runs cannot rule it out, each pin weighed by its likelihood), widened (loss only)
   by the part of the backtest's miss that noise does not explain, scaled to the distance of the
   extrapolation.
5. `trusted` is false, with words, when the law is not identified, or no form predicts the held-out
   compute within what the noise explains.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from sweeper.errors import SweeperInputError
from sweeper.fit.backtest import Backtest, backtest_forms, noise_sigma
from sweeper.fit.bootstrap import bootstrap_thetas, residual_bootstrap_thetas
from sweeper.fit.csv_input import TARGET_COLUMNS, validate_frame
from sweeper.fit.derived import compute_of, flops_per_param_token_at
from sweeper.fit.forms import PREDICTION_FORMS
from sweeper.fit.multistart import SearchSettings, find_optimum
from sweeper.fit.profile import PinnedFit, profile_fits, profile_likelihoods
from sweeper.fit.registry import get_law

# a, b: the local exponents d log N_opt / d log C and d log D_opt / d log C at the target (over C to 2C):
# a law of another form than Chinchilla's has no single a, and the one that matters is the one at C.
QUANTITIES = ("N_opt", "D_opt", "loss", "a", "b")
LOG_SCALE = ("N_opt", "D_opt", "loss")
# The N grid searched for the compute-optimal size: 6 decades about a sqrt(C) guess, 2.9% steps.
SEARCH_DECADES = 3.0
SEARCH_POINTS = 481
DEFAULT_EXTRAPOLATION = 10.0
MIN_WEIGHT = 0.01
MIN_RESAMPLES = 10  # a sweep without --target-compute predicts at 10x its largest slice


@dataclass(frozen=True, kw_only=True)
class Prediction:
    compute: float | None
    n_params: float | None  # the optimum's N at `compute`, or the given N
    n_tokens: float | None
    loss: float | None
    ci: dict[str, list[float] | None]
    exponents: dict[str, float | None] = field(default_factory=dict)  # local a, b at `compute`
    trusted: bool
    warnings: tuple[str, ...] = ()
    basis: str = ""  # where the target came from, when the user gave none
    forms: dict[str, dict] = field(default_factory=dict)
    ci_level: float = 0.95

    def to_dict(self) -> dict:
        out = {
            "compute": self.compute,
            "N_opt": self.n_params,
            "D_opt": self.n_tokens,
            "loss": self.loss,
            **self.exponents,
            "ci": dict(self.ci),
            "trusted": self.trusted,
            "warnings": list(self.warnings),
            "ci_level": self.ci_level,
            "forms": self.forms,
        }
        if self.basis:
            out["basis"] = self.basis
        return out

    @classmethod
    def from_dict(cls, data: dict) -> Prediction:
        return cls(
            compute=data.get("compute"),
            n_params=data.get("N_opt"),
            n_tokens=data.get("D_opt"),
            loss=data.get("loss"),
            ci=dict(data.get("ci", {})),
            trusted=bool(data.get("trusted")),
            exponents={k: data[k] for k in ("a", "b") if k in data},
            warnings=tuple(data.get("warnings", ())),
            basis=data.get("basis", ""),
            forms=dict(data.get("forms", {})),
            ci_level=float(data.get("ci_level", 0.95)),
        )

    def lines(self) -> list[str]:
        """The prediction for people: a number only with its interval, and words when not to trust it."""
        head = (
            f"prediction at C = {self.compute:.3g} FLOPs"
            if self.compute
            else f"prediction at N = {self.n_params:.3g}, D = {self.n_tokens:.3g}"
        )
        if self.basis:
            head += f" ({self.basis})"
        rows = [
            (name, value)
            for name, value in (
                ("N_opt", self.n_params),
                ("D_opt", self.n_tokens),
                ("loss", self.loss),
                *self.exponents.items(),
            )
            if self.compute or name == "loss"
        ]
        out = [head + ("" if self.trusted else ": NOT TRUSTED")]
        for name, value in rows:
            ci = self.ci.get(name)
            if value is None or not math.isfinite(value):
                out.append(f"  {name:<6} none")
            elif ci is None:
                out.append(f"  {name:<6} {value:.4g}  (no interval)")
            else:
                out.append(f"  {name:<6} {value:.4g}  {100 * self.ci_level:g}% [{ci[0]:.4g}, {ci[1]:.4g}]")
        return out + [f"  - {w}" for w in self.warnings]


def default_compute(frame: pd.DataFrame) -> float:
    return DEFAULT_EXTRAPOLATION * float(np.max(compute_of(frame)))


def optimum_grid(frame: pd.DataFrame, compute: float) -> tuple[np.ndarray, np.ndarray]:
    """Candidate sizes N about sqrt(C) scaled from the runs, and the tokens C buys each of them."""
    n_runs, c_runs = frame["n_params"].to_numpy(float), compute_of(frame)
    # The runs' median size at their median compute, moved by C^0.5 (a = 0.5 is the textbook middle).
    centre = float(np.exp(np.median(np.log(n_runs)) + 0.5 * (np.log(compute) - np.median(np.log(c_runs)))))
    n = centre * np.logspace(-SEARCH_DECADES, SEARCH_DECADES, SEARCH_POINTS)
    return n, compute / (flops_per_param_token_at(frame, n) * n)


def optimum_of(loss: np.ndarray, n: np.ndarray, d: np.ndarray) -> tuple[float, float, float]:
    """(N, D, L) at the least loss on the grid, refined by a parabola in log N; nan when the least
    loss is at an edge (no optimum within the grid) or the law gives no finite loss there."""
    loss = np.where(np.isfinite(loss), loss, np.inf)
    i = int(np.argmin(loss))
    if not np.isfinite(loss[i]) or i == 0 or i == len(loss) - 1:
        return math.nan, math.nan, math.nan
    x, y = np.log(n[i - 1 : i + 2]), loss[i - 1 : i + 2]
    denom = y[0] - 2 * y[1] + y[2]
    shift = 0.5 * (y[0] - y[2]) / denom if denom > 0 else 0.0
    step = x[1] - x[0]
    frac = float(np.clip(shift, -1.0, 1.0))
    log_n = x[1] + frac * step
    log_d = np.interp(log_n, np.log(n), np.log(d))
    best = y[1] - 0.25 * (y[0] - y[2]) * frac
    return float(np.exp(log_n)), float(np.exp(log_d)), float(min(best, y[1]))


def form_prediction(law, params: dict, frame: pd.DataFrame, target: dict) -> tuple[float, ...]:
    """(N, D, L, a, b) of one law: at the compute target its optimum and local exponents, else the loss
    of the given N and D (a, b nan)."""
    with np.errstate(all="ignore"):
        if target.get("compute"):
            (n, d), (n2, d2) = target["grid"], target["grid2"]
            here = optimum_of(law.predict(params, n, d), n, d)
            there = optimum_of(law.predict(params, n2, d2), n2, d2)
            step = math.log(2.0)
            return (*here, math.log(there[0] / here[0]) / step, math.log(there[1] / here[1]) / step)
        loss = float(law.predict(params, np.array([target["n"]]), np.array([target["d"]]))[0])
        return target["n"], target["d"], loss if np.isfinite(loss) else math.nan, math.nan, math.nan


@dataclass(frozen=True)
class FormFit:
    name: str
    params: dict
    theta: np.ndarray
    local_optima: np.ndarray
    n_params: int
    residuals: np.ndarray  # log predicted - log observed at every run
    point: tuple[float, ...]  # (N, D, L, a, b), as form_prediction
    samples: np.ndarray = field(default_factory=lambda: np.empty((0, 5)))  # (B, 5) bootstrap (N, D, L, a, b)
    profile: tuple[tuple[PinnedFit, tuple[float, ...]], ...] = ()  # (pin, its (N, D, L, a, b)) per pin


def fit_form(name: str, frame: pd.DataFrame, y: np.ndarray, target: dict) -> FormFit | None:
    """The form's point fit (coarse starts) and its prediction; None when it cannot say anything here."""
    law = get_law(name)
    design = law.design(frame)
    starts = law.grid(design, "coarse")
    if len(frame) <= starts.shape[1] + 1:
        return None  # no more runs than the form has parameters
    opt = find_optimum(law, frame, y, starts, SearchSettings(keep=8, n_polish=2), design=design)
    params = law.to_params(opt.theta, design)
    n, d = frame["n_params"].to_numpy(float), frame["n_tokens"].to_numpy(float)
    log_pred = np.log(law.predict(params, n, d))
    if not np.all(np.isfinite(log_pred)):
        return None
    return FormFit(
        name=name,
        params=params,
        theta=opt.theta,
        local_optima=opt.local_optima,
        n_params=starts.shape[1],
        residuals=log_pred - y,
        point=form_prediction(law, params, frame, target),
    )


def with_samples(
    fit: FormFit,
    frame: pd.DataFrame,
    y: np.ndarray,
    target: dict,
    n_bootstrap: int,
    seed: int,
    resampling: str,
) -> FormFit:
    """The form's bootstrap predictions: each resample refitted and predicted as the point fit was."""
    law = get_law(fit.name)
    design = law.design(frame)
    if resampling == "residual":
        thetas = residual_bootstrap_thetas(law, frame, y, fit.theta, n_bootstrap, seed, design=design)
    else:
        thetas = bootstrap_thetas(
            law, frame, y, fit.local_optima[:2], n_bootstrap, seed, design=design, polish_rounds=1
        )
    samples = np.array([form_prediction(law, law.to_params(t, design), frame, target) for t in thetas])
    return dataclasses.replace(fit, samples=samples)


def with_profile(fit: FormFit, frame: pd.DataFrame, y: np.ndarray, target: dict, starts) -> FormFit:
    """The form's extra term pinned where the runs may not rule it out, and each pin's prediction."""
    law = get_law(fit.name)
    pins = profile_fits(fit.name, frame, y, starts)
    return dataclasses.replace(
        fit, profile=tuple((p, form_prediction(law, p.params, frame, target)) for p in pins)
    )


def mixture(fits: list[FormFit], weights: np.ndarray, sigma: float, j: int, log: bool):
    """The components of quantity j's mixture: each form's bootstrap draws, and for a profiled form its
    draws moved to each pin's prediction; the form's weight is shared by its free fit and its pins in
    proportion to their likelihoods."""
    scale = np.log if log else (lambda v: v)
    samples, mass = [], []
    for f, w in zip(fits, weights):
        with np.errstate(all="ignore"):
            own, centre = scale(f.samples[:, j]), float(scale(f.point[j]))
            pins = [(p, float(scale(point[j]))) for p, point in f.profile]
        pins = [(p, v) for p, v in pins if math.isfinite(v) and math.isfinite(centre)]
        likelihood = profile_likelihoods(float(np.sum(f.residuals**2)), [p for p, _ in pins], sigma)
        samples += [own, *(own - centre + v for _, v in pins)]
        mass += list(w * likelihood / likelihood.sum())
    return samples, np.array(mass)


def form_weights(fits: list[FormFit], backtest: Backtest, sigma: float) -> np.ndarray:
    """Akaike weights on the in-sample fit plus the backtest's predictive log-likelihood."""
    score = []
    for f in fits:
        in_sample = float(np.sum(f.residuals**2)) / sigma**2 + 2 * f.n_params
        held_out = backtest.chi2(f.name, sigma)
        score.append(in_sample + (held_out if math.isfinite(held_out) else 1e9))
    score = np.array(score)
    w = np.exp(-0.5 * (score - score.min()))
    return w / w.sum()


def weighted_interval(samples: list[np.ndarray], weights: np.ndarray, level: float) -> tuple[float, float]:
    """Percentiles of the mixture of the forms' bootstrap samples (each form's weight spread over its
    finite draws); nan when the forms that carry weight have too few finite draws."""
    values, mass = [], []
    for s, w in zip(samples, weights):
        s = s[np.isfinite(s)]
        if w <= 1e-6:
            continue
        if s.size < 2:
            return math.nan, math.nan
        values.append(s)
        mass.append(np.full(s.size, w / s.size))
    if not values:
        return math.nan, math.nan
    v, m = np.concatenate(values), np.concatenate(mass)
    order = np.argsort(v)
    cdf = np.cumsum(m[order]) / m.sum()
    tail = (1.0 - level) / 2.0
    return float(np.interp(tail, cdf, v[order])), float(np.interp(1.0 - tail, cdf, v[order]))


def predict(
    frame: pd.DataFrame,
    *,
    target_compute: float | None = None,
    target_n: float | None = None,
    target_d: float | None = None,
    target: str = "loss",
    forms=PREDICTION_FORMS,
    n_bootstrap: int = 100,
    seed: int = 0,
    ci_level: float = 0.95,
    identified: bool = True,
    identification_warnings=(),
    resampling: str = "case",
) -> Prediction:
    """Predict at `target_compute` (or at N = target_n, D = target_d; neither: 10x the largest slice)."""
    column = TARGET_COLUMNS.get(target, target)
    frame = validate_frame(frame, target=column, n_theta=None).reset_index(drop=True)
    basis = ""
    if (target_n is None) != (target_d is None):
        raise SweeperInputError(
            "--target-n/--target-d", (target_n, target_d), "give both N and D, or neither"
        )
    if target_n is not None and target_compute is not None:
        raise SweeperInputError(
            "--target-compute",
            target_compute,
            "predict at a compute (the optimal N, D there) or at --target-n/--target-d, not both",
        )
    if target_n is None and target_compute is None:
        target_compute = default_compute(frame)
        basis = "10x the largest slice: no target compute given"
    target_spec = (
        {
            "compute": target_compute,
            "grid": optimum_grid(frame, target_compute),
            "grid2": optimum_grid(frame, 2.0 * target_compute),
        }
        if target_compute
        else {"n": float(target_n), "d": float(target_d)}
    )
    y = np.log(frame[column].to_numpy(float))
    with threadpool_limits(limits=1), np.errstate(all="ignore"):
        fits = [f for f in (fit_form(name, frame, y, target_spec) for name in forms) if f is not None]
        if not fits:
            raise SweeperInputError("runs", len(frame), "too few runs for any law form")
        backtest = backtest_forms(frame, y, fits)
        sigma = backtest.sigma if math.isfinite(backtest.sigma) else noise_sigma(fits)
        weights = form_weights(fits, backtest, sigma)
        starts = next((f.local_optima for f in fits if f.name == "chinchilla"), None)
        # Forms the runs all but rule out (under MIN_WEIGHT) are dropped before the costly bootstrap.
        keep = weights >= MIN_WEIGHT
        fits, weights = [f for f, k in zip(fits, keep) if k], weights[keep] / weights[keep].sum()
        if n_bootstrap:
            # Each form's resamples in proportion to its weight (the heaviest gets n_bootstrap, none
            # fewer than MIN_RESAMPLES): a light form moves the mixture's percentiles little, and each
            # resample costs a fit.
            least = min(MIN_RESAMPLES, n_bootstrap)
            counts = [max(least, math.ceil(n_bootstrap * w / weights.max())) for w in weights]
            fits = [with_samples(f, frame, y, target_spec, k, seed, resampling) for f, k in zip(fits, counts)]
            fits = [with_profile(f, frame, y, target_spec, starts) for f in fits]
    return _combine(
        fits,
        weights,
        backtest,
        sigma,
        target_compute,
        target_spec,
        ci_level,
        basis,
        identified,
        tuple(identification_warnings),
        n_bootstrap,
    )


def _combine(
    fits, weights, backtest, sigma, compute, target_spec, level, basis, identified, id_warnings, n_bootstrap
) -> Prediction:
    points = np.array([f.point for f in fits])  # (forms, 5)
    scaled = np.log(points[:, :3]), points[:, 3:]
    values = np.concatenate(scaled, axis=1)
    usable = np.isfinite(values) & (weights[:, None] > 1e-6)
    combined = np.sum(np.where(usable, weights[:, None] * values, 0.0), axis=0) / np.maximum(
        np.sum(np.where(usable, weights[:, None], 0.0), axis=0), 1e-300
    )
    combined = np.where(usable.any(axis=0), combined, np.nan)
    point = dict(zip(QUANTITIES, np.concatenate([np.exp(combined[:3]), combined[3:]])))
    warnings = list(id_warnings)
    ci: dict[str, list[float] | None] = {}
    widen = backtest.extrapolation_miss(
        weights, [f.name for f in fits], sigma, compute or _compute_of_model(target_spec)
    )
    for j, name in enumerate(QUANTITIES):
        if not compute and name != "loss":
            continue
        if not n_bootstrap or not identified:
            ci[name] = None
            continue
        log = name in LOG_SCALE
        lo, hi = weighted_interval(*mixture(fits, weights, sigma, j, log), level)
        if name == "loss" and math.isfinite(lo):
            lo, hi = lo - widen, hi + widen
        if not math.isfinite(lo):
            ci[name] = None
        else:
            ci[name] = [float(np.exp(lo)), float(np.exp(hi))] if log else [lo, hi]
    bends = backtest.every_form_misses(sigma)
    if bends:
        warnings.append(bends)
    if not n_bootstrap:
        warnings.append("no bootstrap (n_bootstrap = 0): no intervals, so the prediction is not trusted")
    if widen > 0:
        warnings.append(
            f"the held-out slices were missed by more than noise explains; the loss interval is "
            f"widened by {100 * (math.exp(widen) - 1):.2g}% each side for it"
        )
    if not math.isfinite(point["loss"]):
        warnings.append(
            "no law form has a compute-optimal size within 1000x of the runs' sizes at this compute"
        )
    trusted = (
        identified and not bends and all(v is not None for v in ci.values()) and math.isfinite(point["loss"])
    )
    forms = {
        f.name: {
            "weight": float(w),
            **{q: _num(v) for q, v in zip(QUANTITIES, f.point)},
            "backtest_error": backtest.summary(f.name),
            **({"profile": _profile_summary(f, sigma)} if f.profile else {}),
        }
        for f, w in zip(fits, weights)
    }
    if compute:
        n_value, d_value = _num(point["N_opt"]), _num(point["D_opt"])
        exponents = {"a": _num(point["a"]), "b": _num(point["b"])}
    else:
        n_value, d_value, exponents = target_spec["n"], target_spec["d"], {}
    return Prediction(
        compute=compute,
        n_params=n_value,
        n_tokens=d_value,
        loss=_num(point["loss"]),
        ci=ci,
        exponents=exponents,
        trusted=trusted,
        warnings=tuple(warnings),
        basis=basis,
        forms=forms,
        ci_level=level,
    )


def _profile_summary(fit: FormFit, sigma: float) -> list[dict]:
    """Each pin: its value, likelihood against the form's best member, share of the form's weight in the
    mixture, and what it predicts."""
    likelihood = profile_likelihoods(float(np.sum(fit.residuals**2)), [p for p, _ in fit.profile], sigma)
    share = likelihood / likelihood.sum()
    return [
        {
            p.key: p.value,
            "likelihood": float(lik),
            "share": float(part),
            **{q: _num(v) for q, v in zip(QUANTITIES, point)},
        }
        for (p, point), lik, part in zip(fit.profile, likelihood[1:], share[1:])
    ]


def _compute_of_model(target: dict) -> float:
    return 6.0 * target["n"] * target["d"]


def _num(value) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None
