"""FrontierSampler: places the next (N, D) point where it most shrinks the exponents' CIs per FLOP.

Criterion (c-optimal design on the Fisher information of the fitted law). With
log-loss residuals of constant variance s^2, the fitted parameters have
covariance s^2 (J^T J)^-1, J the Jacobian of log L over the points run so far.
A watched quantity w (a = beta/(alpha+beta), b, alpha, beta) has variance
s^2 g^T (J^T J)^-1 g. Adding a point x with Jacobian row j lowers it by
s^2 (g^T S j)^2 / (1 + j^T S j), S = (J^T J)^-1 (Sherman-Morrison). The sampler
proposes the candidate with the largest relative variance reduction, summed over
watched quantities, divided by the point's FLOPs. The predicted log loss at the
frontier of `extrapolate` x the largest candidate budget (where the law will be
used) is watched too, at `prediction_weight` x the exponents: exponents fitted on
cheap points alone can look converged (a bootstrap over a dozen runs is narrow)
yet extrapolate badly, mostly through E, and this term buys the few dearer
points that pin the law down at scale. When the stopper waits for that
prediction too (`limit` given: the stop rule's targets), a candidate instead scores its progress
towards the stopper's target, summed over the quantities still above it
(information_gain's `target_var`): the sweep stops when the last one gets there,
so information on a quantity already within target buys nothing.

Why this and not disagreement across bootstrap fits: it needs one fit instead
of dozens per proposal, is exact for the local linearisation the bootstrap CIs
also rely on, and needs no value for points still in flight, so parallel
proposals spread out (see below).

Proposals are restricted to sizes within `window`x of the predicted
compute-optimal size N_opt(C) of their budget (points far from the frontier
say little about it and are where a wrong law hurts most); with probability
`explore` a random candidate in that window is proposed instead (drawn with
weight 1/cost, so exploring does not mostly buy the dearest points), so a
misspecified law still gets challenged. Trials in flight count as observed in
J^T J (their information does not depend on their loss), so P parallel
proposals do not pile onto one point. Each candidate is proposed at most once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import optuna
import pandas as pd
from optuna.distributions import BaseDistribution, CategoricalDistribution
from optuna.samplers import BaseSampler, RandomSampler
from optuna.trial import FrozenTrial, TrialState

from sweeper.plan.trials import PlannedTrial

POINT = "point"
REMAINING_FLOPS = "remaining_flops"  # study user attribute: the searcher's budget left
RIDGE = 1e-9


def _fast_search():
    from sweeper.fit import SearchSettings

    return SearchSettings(keep=6, n_polish=2)


EXPONENTS = ("a", "b", "alpha", "beta")  # what watched_values gives; log_L_opt is the prediction term


def watched_values(params: dict[str, float]) -> dict[str, float]:
    alpha, beta = params["alpha"], params["beta"]
    return {"a": beta / (alpha + beta), "b": alpha / (alpha + beta), "alpha": alpha, "beta": beta}


def _derivative(f, params: dict[str, float], name: str, h: float):
    """d f / d theta_name, theta_name = params[name] on the scale max(|value|, 1).

    Relative steps for the large coefficients (A, B span orders of magnitude),
    absolute ones near 0. Not in log space: a term the fit switched off (E = 0,
    say) would get a zero derivative there, i.e. look perfectly known, when it is
    the least known parameter of all. A non-negative parameter within a step of 0
    takes a one-sided step, as the law is undefined below 0.
    """
    value = params[name]
    step = h * max(abs(value), 1.0)
    with np.errstate(all="ignore"):  # a degenerate fit gives inf or nan here; every caller checks
        up = f({**params, name: value + step})
        if 0.0 <= value < step:
            return (up - f(params)) / h
        return (up - f({**params, name: value - step})) / (2 * h)


def log_loss_jacobian(
    law, params: dict[str, float], n: np.ndarray, d: np.ndarray, h: float = 1e-5
) -> np.ndarray:
    """d log L / d theta at each (N, D) (theta as in `_derivative`)."""
    log_loss = lambda p: np.log(law.predict(p, n, d))  # noqa: E731
    return np.stack([_derivative(log_loss, params, name, h) for name in params], axis=1)


def watched_gradients(params: dict[str, float], watch: Sequence[str], h: float = 1e-6) -> np.ndarray:
    return np.array(
        [
            [_derivative(lambda p, w=w: watched_values(p).get(w, 0.0), params, name, h) for name in params]
            for w in watch
        ]
    )


def watched_and_prediction_gradients(law, params, watch: Sequence[str], predict_at: np.ndarray | None):
    """Gradient rows of the watched exponents, then of the log loss at each `predict_at` (N, D) row."""
    rows = [watched_gradients(params, watch)] if watch else []
    if predict_at is not None and len(predict_at):
        rows.append(log_loss_jacobian(law, params, predict_at[:, 0], predict_at[:, 1]))
    return np.vstack(rows)


def information_gain(
    law,
    params,
    observed: np.ndarray,
    candidates: np.ndarray,
    watch: Sequence[str],
    predict_at: np.ndarray | None = None,
    prediction_weight: float = 1.0,
    target_var: float | np.ndarray | None = None,
) -> np.ndarray:
    """Relative variance reduction of the watched quantities for each candidate (N, D) row.

    `predict_at` rows (N, D) add the predicted log loss there as further watched
    quantities (together `prediction_weight` times the weight of all the watched
    ones); its gradient in theta is the Jacobian row at that point.

    With `target_var` (the target variance over the noise variance), the gain is
    instead the progress towards the target: sum over quantities of
    log(max(var, t) / max(var - reduction, t)). A quantity already within target
    counts nothing, so proposals go to what still keeps the sweep from stopping.
    """
    parts = variance_reductions(law, params, observed, candidates, watch, predict_at)
    if parts is None:
        return np.full(len(candidates), np.nan)  # a degenerate fit: the caller explores instead
    if target_var is not None:
        return capped_progress(*parts, target_var)
    return relative_gain(*parts, len(watch), prediction_weight)


def variance_reductions(
    law,
    params,
    observed: np.ndarray,
    candidates: np.ndarray,
    watch: Sequence[str],
    predict_at: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray] | None:
    """(variance of each watched quantity, then of the log loss at each `predict_at` row;
    how much each candidate row would lower each), in units of the noise variance.
    None for a degenerate fit."""
    j_obs = log_loss_jacobian(law, params, observed[:, 0], observed[:, 1])
    j_new = log_loss_jacobian(law, params, candidates[:, 0], candidates[:, 1])
    if not (np.all(np.isfinite(j_obs)) and np.all(np.isfinite(j_new))):
        return None
    fisher = j_obs.T @ j_obs
    try:
        inv = np.linalg.pinv(fisher + RIDGE * np.trace(fisher) * np.eye(len(fisher)))
    except np.linalg.LinAlgError:
        return None
    g = watched_and_prediction_gradients(law, params, watch, predict_at)  # (W, P)
    var = np.einsum("wp,pq,wq->w", g, inv, g)
    u = j_new @ inv  # (C, P)
    lever = np.einsum("cp,cp->c", u, j_new)
    return var, (u @ g.T) ** 2 / (1.0 + lever)[:, None]  # (W,), (C, W)


def capped_progress(var: np.ndarray, reduction: np.ndarray, target_var) -> np.ndarray:
    """Per candidate: sum over quantities of log(max(var, t) / max(var - reduction, t)); t is one
    target variance for all or one per quantity."""
    return np.log(np.maximum(var, target_var) / np.maximum(var - reduction, target_var)).sum(axis=1)


def relative_gain(
    var: np.ndarray, reduction: np.ndarray, n_watch: int, prediction_weight: float
) -> np.ndarray:
    """Per candidate: relative variance reductions, the quantities past the first `n_watch`
    (the predictions) weighing `prediction_weight` x the watched ones together."""
    relative = reduction / np.maximum(var, 1e-300)
    weights = np.ones(len(var))
    if n_watch < len(var):
        weights[n_watch:] = prediction_weight * n_watch / (len(var) - n_watch)
    return relative @ weights


def residual_variance(law, params, n: np.ndarray, d: np.ndarray, log_loss: np.ndarray) -> float:
    """The noise variance of log loss the fit's residuals show (nan if the fit predicts none)."""
    resid = log_loss - np.log(law.predict(params, n, d))
    if not np.all(np.isfinite(resid)):
        return float("nan")
    return float(resid @ resid) / max(len(resid) - len(params), 1)


def fisher_halfwidths(
    law,
    params,
    n: np.ndarray,
    d: np.ndarray,
    log_loss: np.ndarray,
    watch: Sequence[str],
    z: float = 1.96,
    predict_at: np.ndarray | None = None,
) -> dict[str, float]:
    """Delta-method CI half-widths of the watched exponents, noise estimated from the residuals;
    with `predict_at` (one (N, D) row: the predicted optimum at the target compute), also of
    log_L_opt, the log loss predicted there (the optimum's own shift does not enter, by the
    envelope theorem).

    The cheap linearised counterpart of the bootstrap interval: used to screen
    when a bootstrap is worth running, never as the stopping rule itself.
    """
    names = list(watch) + ([] if predict_at is None else ["log_L_opt"])
    j = log_loss_jacobian(law, params, n, d)
    s2 = residual_variance(law, params, n, d, log_loss)
    if not (np.all(np.isfinite(j)) and np.isfinite(s2)):
        return {w: float("inf") for w in names}  # a degenerate fit identifies nothing
    try:
        inv = np.linalg.pinv(j.T @ j)
    except np.linalg.LinAlgError:
        return {w: float("inf") for w in names}
    g = watched_and_prediction_gradients(law, params, watch, predict_at)
    var = s2 * np.einsum("wp,pq,wq->w", g, inv, g)
    return {w: float(z * np.sqrt(max(v, 0.0))) for w, v in zip(names, var)}


class FrontierSampler(BaseSampler):
    """Optuna sampler for the `point` parameter of an isoFLOP sweep; others go to `fallback`."""

    def __init__(
        self,
        *,
        candidates: Sequence[PlannedTrial],
        initial: Sequence[str] = (),
        law: str = "chinchilla",
        watch: Sequence[str] = ("a", "b"),
        window: float = 4.0,
        explore: float = 0.1,
        extrapolate: float = 3.0,
        prediction_weight: float = 3.0,
        seed: int | None = None,
        fallback: BaseSampler | None = None,
        cooldown_frac: float | None = None,
        limit: Callable[[str], float] | None = None,
        latest_fit=None,
    ):
        self.candidates = {p.point_id: p for p in candidates}
        # With cooldown branching (cooldown_frac set) a point costs its cooldown plus the
        # stable steps of its size that no trained or in-flight point has covered.
        self.cooldown_frac = cooldown_frac
        self.initial = tuple(initial)
        # A watched log_L_opt is served by the prediction term (`extrapolate`), not as an exponent.
        self.watch = tuple(w for w in watch if w in EXPONENTS)
        self.law, self.window, self.explore = law, float(window), float(explore)
        # The predicted loss at the frontier of `extrapolate` x the largest candidate budget is
        # watched too (0: not), weighing `prediction_weight` x the exponents together.
        self.extrapolate, self.prediction_weight, self.seed = (
            float(extrapolate),
            float(prediction_weight),
            seed,
        )
        # With the stop rule's per-quantity target (`StopRule.limit`: the exponents' and log_L_opt's),
        # proposals score progress towards it (see information_gain).
        self.limit = limit
        self.fallback = fallback or RandomSampler(seed=seed)
        self.last_reason = ""
        self._fit_cache: tuple[frozenset, object] | None = None  # P asks between two tells share one fit
        # In a sweep, the ledger's latest refit (sweeper.sweep.ledger): the sampler then fits nothing itself.
        self.latest_fit = latest_fit

    def reseed_rng(self) -> None:
        self.fallback.reseed_rng()

    def infer_relative_search_space(self, study, trial) -> dict[str, BaseDistribution]:
        return {}

    def sample_relative(self, study, trial, search_space) -> dict:
        return {}

    def sample_independent(
        self, study: optuna.Study, trial: FrozenTrial, param_name: str, param_distribution: BaseDistribution
    ):
        if param_name != POINT or not isinstance(param_distribution, CategoricalDistribution):
            return self.fallback.sample_independent(study, trial, param_name, param_distribution)
        done, pending, failed = self._history(study, trial)
        remaining = study.user_attrs.get(REMAINING_FLOPS, float("inf"))
        taken = [self.candidates[p] for p in [*done, *pending, *failed] if p in self.candidates]
        tried = {*done, *pending, *failed}
        free = [
            pid
            for pid in param_distribution.choices
            if pid in self.candidates and pid not in tried and self._cost(pid, taken) <= remaining
        ]
        if not free:  # nothing affordable left: the searcher ends the sweep on this
            self.last_reason = "exhausted"
            return param_distribution.choices[0]
        return self._choose(free, done, pending, np.random.default_rng([self.seed or 0, trial.number]), taken)

    def _history(self, study, trial) -> tuple[dict[str, float], list[str], list[str]]:
        """(losses of the finished points, points in flight, points that failed). A failed, diverged or
        crashed point taught nothing, so it is not observed information; it is not proposed again either."""
        done: dict[str, float] = {}
        pending: list[str] = []
        failed: list[str] = []
        for t in study.get_trials(deepcopy=False):
            pid = t.params.get(POINT)
            if pid is None or t.number == trial.number:
                continue
            if t.state == TrialState.COMPLETE and t.value is not None:
                done[pid] = float(t.value)
            elif t.state in (TrialState.RUNNING, TrialState.WAITING):
                pending.append(pid)
            elif t.state == TrialState.FAIL:
                failed.append(pid)
        return done, pending, failed

    def _cost(self, pid: str, taken) -> float:
        from sweeper.train.branch_costs import point_cost

        return point_cost(self.candidates[pid], taken, self.cooldown_frac)

    def _choose(self, free: list[str], done: dict[str, float], pending: list[str], rng, taken=()) -> str:
        for pid in self.initial:
            if pid in free:
                self.last_reason = "initial design"
                return pid
        fit = self._fit(done)
        if fit is None:
            self.last_reason = "cheapest (law not identified yet)"
            return min(free, key=lambda pid: self._cost(pid, taken))
        near = self._near_frontier(free, fit)
        cost = np.array([self._cost(pid, taken) for pid in near])
        if rng.random() < self.explore:
            self.last_reason = "exploration"
            return self._explore(near, cost, rng)
        observed = self._nd(list(done) + pending)
        parts = variance_reductions(
            self._law(),
            fit.params,
            observed,
            self._nd(near),
            self.watch,
            self._extrapolation_target(fit) if self.extrapolate > 0 else None,
        )
        score = self._gain(parts, len(near), self._target_var(fit, done)) / cost
        if not np.any(np.isfinite(score)):
            self.last_reason = "exploration (degenerate fit)"
            return self._explore(near, cost, rng)
        self.last_reason = "information per FLOP"
        return near[int(np.nanargmax(np.where(np.isfinite(score), score, -np.inf)))]

    def _gain(self, parts, n: int, target_var: np.ndarray | None) -> np.ndarray:
        """information_gain's criterion from one variance_reductions; nan for a degenerate fit."""
        if parts is None:
            return np.full(n, np.nan)
        if target_var is not None:
            gain = capped_progress(*parts, target_var)
            if np.nanmax(gain, initial=0.0) > 0:
                return gain
            # Within target by the linearisation, not yet by the bootstrap: shrink what is left.
        return relative_gain(*parts, len(self.watch), self.prediction_weight)

    def _target_var(self, fit, done: dict[str, float]) -> np.ndarray | None:
        """Per watched quantity, then for the prediction: (target / 1.96)^2 over the noise variance
        the fit's residuals show; None: no target."""
        if self.limit is None:
            return None
        nd = self._nd(list(done))
        s2 = residual_variance(self._law(), fit.params, nd[:, 0], nd[:, 1], np.log(list(done.values())))
        targets = [self.limit(w) for w in self.watch]
        if self.extrapolate > 0:  # the prediction's row
            targets.append(self.limit("log_L_opt"))
        return (np.array(targets) / 1.96) ** 2 / max(s2, 1e-12)

    @staticmethod
    def _explore(near: list[str], cost: np.ndarray, rng) -> str:
        """A random candidate, drawn with probability proportional to 1/cost: any budget can be
        challenged, but a uniform draw would mostly buy the dearest points (most candidates sit on
        the large budgets, each costing as much as dozens of cheap ones)."""
        weights = 1.0 / cost
        return near[int(rng.choice(len(near), p=weights / weights.sum()))]

    def _extrapolation_target(self, fit) -> np.ndarray:
        """(N, D) of the predicted optimal ladder size at `extrapolate` x the largest candidate
        budget: where the fitted law will be used, beyond any point the sweep affords."""
        top = max(p.budget for p in self.candidates.values()) * self.extrapolate
        per_token = {p.n_params: p.flops / p.n_tokens for p in self.candidates.values()}
        nd = np.array([[n, top / f] for n, f in sorted(per_token.items())], dtype=float)
        return nd[[int(np.argmin(self._law().predict(fit.params, nd[:, 0], nd[:, 1])))]]

    def _law(self):
        from sweeper.fit import get_law

        return get_law(self.law)

    def _nd(self, ids: Sequence[str]) -> np.ndarray:
        return np.array(
            [[self.candidates[p].n_params, self.candidates[p].n_tokens] for p in ids], dtype=float
        )

    def _fit(self, done: dict[str, float]):
        from sweeper.errors import SweeperInputError
        from sweeper.fit import fit_law

        if len(done) < 5:
            return None
        if self.latest_fit is not None:
            return self.latest_fit()
        key = frozenset(done.items())
        if self._fit_cache is not None and self._fit_cache[0] == key:
            return self._fit_cache[1]
        nd = self._nd(list(done))
        frame = pd.DataFrame({"n_params": nd[:, 0], "n_tokens": nd[:, 1], "loss": list(done.values())})
        try:
            # Fewer converged starts than a reported fit: the proposal only needs the
            # local linearisation, and must cost well under a second.
            fit = fit_law(frame, law=self.law, grid="coarse", settings=_fast_search())
        except SweeperInputError:
            fit = None
        self._fit_cache = (key, fit)
        return fit

    def _near_frontier(self, free: list[str], fit) -> list[str]:
        """Free candidates within `window`x of the predicted optimal size of their budget."""
        points = list(self.candidates.values())
        nd = self._nd([p.point_id for p in points])
        loss = self._law().predict(fit.params, nd[:, 0], nd[:, 1])  # one call: predict builds a frame
        best: dict[float, tuple[float, float]] = {}
        for p, value in zip(points, loss):
            if p.budget not in best or value < best[p.budget][0]:
                best[p.budget] = (value, np.log(p.n_params))
        near = [
            p
            for p in free
            if abs(np.log(self.candidates[p].n_params) - best[self.candidates[p].budget][1])
            <= np.log(self.window)
        ]
        return near or free
