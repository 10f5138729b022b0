"""The two-step task scaling law (issue #31; the OLMo ladder, Bhagia et al. 2024).

1. Task loss from size and data: L(N, D), a registered law form (Chinchilla's by default) fitted with
   the project's multi-start Huber L-BFGS (sweeper.fit.multistart).
2. Accuracy from task loss: acc(L) = a / (1 + exp(-k (L - L0))) + b, k < 0 (accuracy falls as loss
   rises), b about chance, a + b <= 1; Huber least squares over every row (trials and checkpoints).
3. Chained: the accuracy at a target is the sigmoid of the task loss step 1 predicts there, at a given
   (N, D) or at a compute C (step 1's compute-optimal N, D at C, as sweeper.fit.prediction finds them).

The interval is a joint bootstrap over runs: each resample refits both steps on the same rows, so the
chained accuracy carries both steps' noise and how they covary. No interval (and `trusted` false, with
words) when either step is not identified or too many resamples fail to give an accuracy.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.optimize import least_squares
from scipy.stats import f as f_dist
from threadpoolctl import threadpool_limits

from sweeper.errors import SweeperInputError
from sweeper.fit.csv_input import normalise_columns, validate_frame
from sweeper.fit.forms import PREDICTION_FORMS
from sweeper.fit.identify import identify, log_predictions
from sweeper.fit.lbfgs import batched_lbfgs, scipy_polish
from sweeper.fit.multistart import SearchSettings, find_optimum
from sweeper.fit.objective import objective_and_grad, scalar_objective
from sweeper.fit.prediction import default_compute, optimum_grid, optimum_of
from sweeper.fit.registry import get_law

# More resamples than this without a chained accuracy (no optimum, no sigmoid) could all sit in one tail;
# the percentile interval would then be narrow for the wrong reason (identify.MAX_OTHER_BASIN's rule).
MAX_FAILED = 0.05
# The sigmoid must explain the accuracy better than a constant at this significance (an F test).
SIGNAL_P = 0.01
# Huber's tuning constant: 95% of least squares' efficiency under Gaussian noise.
HUBER_K = 1.345
# |k| times the observed loss spread: below, the sigmoid is a straight line over the data; above, a step.
K_RANGE = (0.01, 1000.0)


@dataclass(frozen=True)
class Sigmoid:
    a: float
    b: float
    k: float
    L0: float
    scale: float = math.nan  # robust sd of the accuracy residuals
    at_bound: bool = False  # k hit K_RANGE: the data do not fix the sigmoid's steepness

    def __call__(self, loss):
        with np.errstate(over="ignore"):
            return self.a / (1.0 + np.exp(-self.k * (np.asarray(loss, float) - self.L0))) + self.b

    def to_dict(self) -> dict:
        return {"a": self.a, "b": self.b, "k": self.k, "L0": self.L0}


@dataclass(frozen=True, kw_only=True)
class TaskPrediction:
    accuracy: float | None
    loss: float | None  # the task loss step 1 predicts at the target
    N: float | None
    D: float | None
    compute: float | None  # the target compute, or None for a given (N, D)
    ci: dict[str, list[float] | None]
    sigmoid: dict[str, float] = field(default_factory=dict)
    law: dict = field(default_factory=dict)  # step 1's form and parameters
    trusted: bool = False
    warnings: list[str] = field(default_factory=list)
    ci_level: float = 0.95

    @classmethod
    def from_dict(cls, d: dict) -> TaskPrediction:
        """Back from to_dict (a parent run's task_predictions.json)."""
        fields = ("accuracy", "loss", "N", "D", "compute", "ci", "sigmoid", "law", "trusted", "warnings")
        return cls(**{k: d[k] for k in fields if k in d}, ci_level=d.get("ci_level", 0.95))

    @classmethod
    def none(cls, reason: str) -> TaskPrediction:
        """No prediction, and why."""
        ci = {"accuracy": None, "loss": None}
        return cls(accuracy=None, loss=None, N=None, D=None, compute=None, ci=ci, warnings=[reason])

    def to_dict(self) -> dict:
        return {
            "accuracy": self.accuracy,
            "loss": self.loss,
            "N": self.N,
            "D": self.D,
            "compute": self.compute,
            "ci": {k: None if v is None else list(v) for k, v in self.ci.items()},
            "sigmoid": dict(self.sigmoid),
            "law": dict(self.law),
            "trusted": self.trusted,
            "warnings": list(self.warnings),
            "ci_level": self.ci_level,
        }


# ---- step 2: the sigmoid --------------------------------------------------------------------------
# Internal x = (s, b, k, L0), a = s (1 - b), s and b in [0, 1]: box bounds that keep a >= 0 and a + b <= 1.


def _unpack(x, chance):
    s, b, k, l0 = x if chance is None else (x[0], chance, x[1], x[2])
    return s * (1.0 - b), b, k, l0, s


def _residuals_and_jac(loss, acc, chance):
    def sigma(k, l0):
        with np.errstate(over="ignore"):  # exp to inf is the sigmoid's 0: right, not a problem
            return 1.0 / (1.0 + np.exp(-k * (loss - l0)))

    def resid(x):
        a, b, k, l0, _ = _unpack(x, chance)
        return a * sigma(k, l0) + b - acc

    def jac(x):
        a, b, k, l0, s = _unpack(x, chance)
        sig = sigma(k, l0)
        slope = a * sig * (1.0 - sig)
        cols = [(1.0 - b) * sig] + ([] if chance is not None else [1.0 - s * sig])
        return np.column_stack(cols + [slope * (loss - l0), -slope * k])

    return resid, jac


def _bounds(loss, chance):
    spread = float(np.ptp(loss))
    lo, hi = float(loss.min()), float(loss.max())
    # L0 may sit well outside the losses seen (data only near chance); the bootstrap then shows it.
    lower = [0.0, 0.0, -K_RANGE[1] / spread, lo - 5.0 * spread]
    upper = [1.0, 1.0, -K_RANGE[0] / spread, hi + 5.0 * spread]
    if chance is not None:
        del lower[1], upper[1]
    return np.array(lower), np.array(upper)


def _starts(loss, acc, chance):
    spread = float(np.ptp(loss))
    b0 = chance if chance is not None else float(np.clip(np.quantile(acc, 0.05), 0.0, 0.95))
    s0 = float(np.clip((np.max(acc) - b0) / (1.0 - b0), 0.05, 0.95))
    rows = []
    for k in (-2.0, -6.0, -20.0):
        for l0 in (*np.quantile(loss, (0.1, 0.5, 0.9)), loss.min() - spread):
            rows.append([s0, b0, k / spread, l0] if chance is None else [s0, k / spread, l0])
    return np.array(rows)


def fit_sigmoid(loss, acc, *, chance: float | None = None, scale: float | None = None, start=None) -> Sigmoid:
    """acc(L) by Huber least squares (scale: the residual sd the Huber loss is tuned to; None: measured
    from a least-squares fit). From `start` (a Sigmoid) only, else from a small grid of starts."""
    loss, acc = np.asarray(loss, float), np.asarray(acc, float)
    lower, upper = _bounds(loss, chance)
    resid, jac = _residuals_and_jac(loss, acc, chance)

    def solve(x0, **kw):
        return least_squares(resid, np.clip(x0, lower, upper), jac=jac, bounds=(lower, upper), **kw)

    if start is None:
        x0 = min((solve(x) for x in _starts(loss, acc, chance)), key=lambda r: r.cost).x
    else:
        s = start.a / (1.0 - start.b) if start.b < 1.0 else 0.0
        x0 = np.array([s, start.b, start.k, start.L0] if chance is None else [s, start.k, start.L0])
    if scale is None:
        # A robust sd (MAD) of the least-squares residuals sets the Huber scale: outliers cannot inflate it.
        r = resid(np.clip(x0, lower, upper))
        scale = max(1.4826 * float(np.median(np.abs(r - np.median(r)))), 1e-6)
    res = solve(x0, loss="huber", f_scale=HUBER_K * scale)
    a, b, k, l0, _ = _unpack(res.x, chance)
    spread = float(np.ptp(loss))
    at_bound = not (K_RANGE[0] * 1.01 < abs(k) * spread < K_RANGE[1] * 0.99)
    return Sigmoid(float(a), float(b), float(k), float(l0), scale=float(scale), at_bound=at_bound)


def sigmoid_problems(sig: Sigmoid, loss, acc, chance=None) -> list[str]:
    """Why the sigmoid is not identified by these rows (empty: it is)."""
    p = 3 if chance is not None else 4
    n = len(acc)
    if n < p + 2:
        return [f"{n} rows with accuracy; the sigmoid's {p} parameters need {p + 2} or more"]
    out = []
    rss1 = float(np.sum((sig(loss) - acc) ** 2))
    rss0 = float(np.sum((acc - np.mean(acc)) ** 2))
    stat = ((rss0 - rss1) / (p - 1)) / max(rss1 / (n - p), 1e-300)
    p_value = float(f_dist.sf(stat, p - 1, n - p)) if rss0 > 0 else 1.0
    if p_value > SIGNAL_P:
        out.append(
            f"accuracy does not move with task loss beyond its noise (F test p = {p_value:.2g} against a "
            "constant): the sigmoid is not identified"
        )
    elif sig.at_bound:
        out.append("the sigmoid's steepness k sits at its bound: the rows do not fix the transition")
    return out


# ---- step 1: the task-loss law ----------------------------------------------------------------------


def refit_weighted(law, design, y, starts, weights) -> np.ndarray:
    """(S, P): the law refitted under each row of `weights` (resample counts), as
    sweeper.fit.bootstrap.bootstrap_thetas does, but with the caller's resamples so step 2 shares them."""
    n, k = len(weights), len(starts)
    w_rows = np.repeat(weights, k, axis=0)

    def fg(x, rows):
        return objective_and_grad(law, design, y, x, w_rows[rows])

    x, f, _ = batched_lbfgs(fg, np.tile(starts, (n, 1)), max_iter=2000)
    f = np.where(np.isfinite(f), f, np.inf).reshape(n, k)
    best = x.reshape(n, k, -1)[np.arange(n), np.argmin(f, axis=1)]
    return np.array(
        [scipy_polish(scalar_objective(law, design, y, w), b, rounds=1)[0] for w, b in zip(weights, best)]
    )


def chained_targets(law, thetas, frame, spec) -> np.ndarray:
    """(S, 3): (N, D, task loss) at the target under each parameter row; nan where there is no optimum."""
    if spec.get("compute"):
        n, d = optimum_grid(frame, spec["compute"])
    else:
        n, d = np.array([spec["n"]]), np.array([spec["d"]])
    design = law.design(pd.DataFrame({"n_params": n, "n_tokens": d}))
    loss = np.exp(log_predictions(law, design, np.atleast_2d(thetas)))  # (S, grid)
    if not spec.get("compute"):
        return np.column_stack([np.full(len(loss), n[0]), np.full(len(loss), d[0]), loss[:, 0]])
    return np.array([optimum_of(row, n, d) for row in loss])


def resample_counts(frame: pd.DataFrame, n_boot: int, seed: int, run_column: str | None) -> np.ndarray:
    """(n_boot, rows) multinomial counts; rows sharing `run_column` (a run's checkpoints) move together."""
    rng = np.random.default_rng(seed)
    groups = np.unique(
        frame[run_column].to_numpy() if run_column else np.arange(len(frame)), return_inverse=True
    )[1]
    n_groups = int(groups.max()) + 1
    counts = rng.multinomial(n_groups, np.full(n_groups, 1.0 / n_groups), size=n_boot)
    return counts[:, groups].astype(float)


# ---- the chain ----------------------------------------------------------------------------------------


def _target_spec(frame: pd.DataFrame, target: dict | None) -> dict:
    t = {str(k).lower().removeprefix("target_"): v for k, v in (target or {}).items()}
    compute, n, d = t.get("compute", t.get("c")), t.get("n"), t.get("d")
    if compute is not None and (n is not None or d is not None):
        raise SweeperInputError("target", target, "give a compute or an (N, D), not both")
    if (n is None) != (d is None):
        raise SweeperInputError("target", target, "give both N and D, or neither")
    if compute is None and n is None:
        compute = default_compute(frame)
    spec = {"n": n, "d": d} if n is not None else {"compute": compute}
    values = pd.to_numeric(pd.Series(list(spec.values())), errors="coerce").to_numpy(float)
    if not np.all(np.isfinite(values) & (values > 0)):
        raise SweeperInputError("target", target, "the compute, N and D of a target are numbers > 0")
    spec = dict(zip(spec, values.tolist()))
    return spec


def _prepare(frame: pd.DataFrame, accuracy_column: str, loss_column: str):
    frame = normalise_columns(frame)
    acc_col, loss_col = accuracy_column.strip().lower(), loss_column.strip().lower()
    if acc_col not in frame:
        raise SweeperInputError(
            "accuracy_column", accuracy_column, f"no such column in {list(frame.columns)}"
        )
    frame = validate_frame(frame, target=loss_col, n_theta=None).reset_index(drop=True)
    acc = pd.to_numeric(frame[acc_col], errors="coerce").to_numpy(float)
    if not np.all(np.isfinite(acc) & (acc >= 0) & (acc <= 1)):
        raise SweeperInputError(accuracy_column, acc[:3].tolist(), "accuracy must be a share in [0, 1]")
    return frame, loss_col, acc


def fit_two_step(
    frame: pd.DataFrame, accuracy_column: str, target: dict | None = None, **kwargs
) -> TaskPrediction:
    """Predicted accuracy at `target` ({"compute": C} or {"n": N, "d": D}; None: 10x the largest slice).
    Keywords as predict_accuracy."""
    return predict_accuracy(frame, accuracy_column, [target], **kwargs)[0]


def predict_accuracy(
    frame: pd.DataFrame,
    accuracy_column: str,
    targets: list[dict | None],
    *,
    loss_column: str = "loss",
    law: str = "chinchilla",
    chance: float | None = None,
    run_column: str | None = None,
    final_column: str | None = None,
    seed: int = 0,
    n_boot: int = 200,
    ci_level: float = 0.95,
) -> list[TaskPrediction]:
    """One prediction per target, from one fit of both steps and one bootstrap (the fits do not depend
    on the target). `chance` fixes the sigmoid's floor b (else fitted). With checkpoint rows, name the
    column that marks a run's final row (`final_column`: only those fit the task-loss law, as the ladder
    does, since a checkpoint mid-schedule is not a run trained to its D) and the run (`run_column`: the
    bootstrap then resamples runs, a run's rows together)."""
    if law not in PREDICTION_FORMS:
        raise SweeperInputError("law", law, f"a form over (N, D) alone: one of {list(PREDICTION_FORMS)}")
    frame, loss_col, acc = _prepare(frame, accuracy_column, loss_column)
    final = frame[final_column].astype(bool).to_numpy() if final_column else np.ones(len(frame), bool)
    if not final.any():
        raise SweeperInputError(final_column, 0, "no row is marked final: step 1 needs the runs' final rows")
    specs = [_target_spec(frame[final], t) for t in targets]
    counts = resample_counts(frame, n_boot, seed, run_column)
    with threadpool_limits(limits=1), np.errstate(all="ignore"):
        steps = _fit_steps(frame, loss_col, acc, final, get_law(law), chance, counts)
        return [_chain(steps, spec, ci_level) for spec in specs]


@dataclass(frozen=True)
class _Steps:
    law: object
    frame: pd.DataFrame  # the rows that fit step 1
    theta: np.ndarray | None  # step 1's point fit; None: too few rows to fit it
    params: dict
    sigmoid: Sigmoid | None
    warnings: tuple[str, ...]  # why either step is not identified (no interval at any target)
    thetas: np.ndarray | None = None  # (B, P) step 1 refitted on each resample
    sigmoids: tuple = ()  # step 2 refitted on the same resamples (None where it could not be)


def _fit_steps(frame, loss_col, acc, final, law, chance, counts) -> _Steps:
    """Both steps' point fits, and their refits on each resample (rows of `counts`) when identified."""
    loss_obs = frame[loss_col].to_numpy(float)
    runs = frame[final].reset_index(drop=True)
    y = np.log(loss_obs[final])
    design = law.design(runs)
    starts = law.grid(design, "coarse")
    if len(runs) <= starts.shape[1] + 1 or np.ptp(y) <= 0:
        why = f"{len(runs)} runs: too few (or one task loss) to fit the task-loss law's {starts.shape[1]}"
        return _Steps(law, runs, None, {}, None, (why + " parameters",))
    opt = find_optimum(law, runs, y, starts, SearchSettings(keep=8, n_polish=2), design=design)
    params = law.to_params(opt.theta, design)
    sig = fit_sigmoid(loss_obs, acc, chance=chance)
    warnings = sigmoid_problems(sig, loss_obs, acc, chance)
    thetas, sigmoids = None, ()
    if len(counts) and not warnings:
        thetas = refit_weighted(law, design, y, opt.local_optima[:2], counts[:, final])
        sigmoids = tuple(_refit_sigmoid(loss_obs, acc, w, chance, sig) for w in counts)
    verdict = identify(law, design, opt.theta, params, runs, column=loss_col, thetas=thetas)
    if not len(counts):
        warnings.append("no bootstrap (n_boot = 0): no interval, so the prediction is not trusted")
    return _Steps(law, runs, opt.theta, params, sig, (*verdict.warnings, *warnings), thetas, sigmoids)


def _refit_sigmoid(loss_obs, acc, counts, chance, sig: Sigmoid) -> Sigmoid | None:
    rows = np.repeat(np.arange(len(counts)), counts.astype(int))
    if np.ptp(loss_obs[rows]) <= 0:
        return None
    # The full fit's Huber scale: a resample's own MAD would make its robustness vary.
    return fit_sigmoid(loss_obs[rows], acc[rows], chance=chance, scale=sig.scale, start=sig)


def _chain(steps: _Steps, spec, level) -> TaskPrediction:
    base = dict(compute=spec.get("compute"), ci_level=level)
    if steps.theta is None:
        ci = {"accuracy": None, "loss": None}
        return TaskPrediction(
            accuracy=None, loss=None, N=None, D=None, ci=ci, warnings=[*steps.warnings], **base
        )
    n_opt, d_opt, loss_hat = chained_targets(steps.law, steps.theta, steps.frame, spec)[0]
    warnings = list(steps.warnings)
    if not math.isfinite(loss_hat):
        warnings.append("the task-loss law has no compute-optimal size within 1000x of the runs' at this C")
    ci = {"accuracy": None, "loss": None}
    if not warnings and steps.thetas is not None:
        losses = chained_targets(steps.law, steps.thetas, steps.frame, spec)[:, 2]
        accs = [s(x) if s is not None else np.nan for s, x in zip(steps.sigmoids, losses)]
        ci = _intervals(np.column_stack([losses, accs]), level, warnings)
    return TaskPrediction(
        accuracy=_num(steps.sigmoid(loss_hat)) if math.isfinite(loss_hat) else None,
        loss=_num(loss_hat),
        N=_num(n_opt),
        D=_num(d_opt),
        ci=ci,
        sigmoid=steps.sigmoid.to_dict(),
        law={"name": steps.law.name, "params": steps.params},
        trusted=not warnings and ci["accuracy"] is not None,
        warnings=warnings,
        **base,
    )


def _intervals(samples: np.ndarray, level: float, warnings: list[str]) -> dict:
    ok = np.all(np.isfinite(samples), axis=1)
    failed = 1.0 - float(ok.mean()) if len(ok) else 1.0
    if failed > MAX_FAILED:
        warnings.append(
            f"{failed:.0%} of bootstrap resamples gave no chained accuracy (no optimum or no sigmoid): "
            "no interval"
        )
        return {"accuracy": None, "loss": None}
    tail = 100.0 * (1.0 - level) / 2.0
    lo, hi = np.percentile(samples[ok], [tail, 100.0 - tail], axis=0)
    return {"accuracy": [float(lo[1]), float(hi[1])], "loss": [float(lo[0]), float(hi[0])]}


def _num(value) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


TASK_ACCURACY = re.compile(r"^task\.(.+)\.accuracy$")  # what trials log: task.<name>.accuracy, .loss


def predict_tasks(frame: pd.DataFrame, target: dict | None = None, **kwargs) -> dict[str, TaskPrediction]:
    """The two-step prediction at `target` of every task the runs scored (task.<name>.accuracy beside
    task.<name>.loss); a task its runs cannot fit gets a prediction without numbers that says why."""
    out = {}
    for column in frame.columns:
        match = TASK_ACCURACY.match(column)
        loss_column = f"task.{match.group(1)}.loss" if match else ""
        if not match or loss_column not in frame.columns:
            continue
        rows = frame[np.isfinite(frame[column].astype(float)) & np.isfinite(frame[loss_column].astype(float))]
        try:
            out[match.group(1)] = fit_two_step(rows, column, target, loss_column=loss_column, **kwargs)
        except SweeperInputError as exc:
            out[match.group(1)] = TaskPrediction.none(str(exc))
    return out
