"""The least compute any design could spend on a ladder to reach a target: a lower bound.

sweep_efficiency measures what the FrontierSampler spends; this asks what the
best possible design would spend, to tell a weak sampler from a goal no design
can reach. Linearised, as the sampler's own criterion: with log-loss noise s,
a design w (w_i runs of candidate i) gives the law's parameters the covariance
s^2 (sum_i w_i j_i j_i^T)^-1 (j_i the Jacobian row of log L at candidate i) and a
watched quantity with gradient g the variance s^2 g^T (...)^-1 g. Even knowing
the true law, and even allowed fractions of a run, no design reaching the
targets below spends less than

    min  sum_i w_i FLOPs_i   s.t.  var(a), var(b) <= (target / 1.96)^2,
                                   var(log L at the held-out optimum) <= f x the grid's,
                                   0 <= w_i <= max_repeats,

a convex problem (g^T M(w)^-1 g is convex in w), solved with scipy's SLSQP, over the
adaptive design's own candidates. f = 1 is "no worse extrapolation than the grid"
(its whole plan), f = inf drops the extrapolation requirement. The prediction's
gradient is the Jacobian row at the true compute-optimal (N, D) of the held-out
budget (one slice ratio past the grid's; by the envelope theorem the optimum's own
shift does not enter). Each candidate runs at most once by default: the simulated
noise is seeded by the point, so a repeat teaches nothing. Ladders and laws:
benchmarks/ladders.py.

sweep_efficiency.py asks `bound_matching` instead: the least compute of a design at least as
precise, in this linearised sense, as the one the sampler stopped with. That design is itself
feasible, so it is a true lower bound on the sampler's compute. A bound at the bootstrap's target
(`bound`) is not one: a bootstrap over a dozen runs can be narrower than the linearisation, and
the sampler then spent 0.12-0.29x that "bound" (stop 25, text_chinchilla).

`--equal-compute` prints the other side: the best half-width ratio on a and b to the grid that any
design reaches with the grid's compute (`best_ratio_at_equal_compute`), the floor under
sweep_efficiency's equal-compute ratio.

    .venv/bin/python benchmarks/design_bound.py [--spaces tiny moe] [--target-ci 0.1] [--equal-compute]
"""

from __future__ import annotations

import argparse

import numpy as np
from ladders import SHAPES, SPACES, WATCH, Setup, setup, true_optimum
from scipy.optimize import minimize

from sweeper.fit import get_law
from sweeper.samplers.candidates import candidate_points
from sweeper.samplers.frontier import log_loss_jacobian, watched_gradients

Z = 1.96


def jacobian(law, params, points) -> np.ndarray:
    return log_loss_jacobian(
        law,
        params,
        np.array([p.n_params for p in points], float),
        np.array([p.n_tokens for p in points], float),
    )


def watched(law, params, held_out) -> np.ndarray:
    """Gradients (rows) of a, b and log L at the held-out budget's true compute-optimal (N, D)."""
    n_opt, d_opt = true_optimum(params, held_out)
    return np.vstack([watched_gradients(params, WATCH), log_loss_jacobian(law, params, n_opt, d_opt)])


def variances(j: np.ndarray, g: np.ndarray, w: np.ndarray | None = None) -> np.ndarray:
    """g^T (J^T diag(w) J)^-1 g for each row of g (noise variance 1)."""
    fisher = (j if w is None else j * w[:, None]).T @ j
    return np.einsum("wp,pq,wq->w", g, np.linalg.pinv(fisher), g)


def least_compute(j: np.ndarray, cost: np.ndarray, g: np.ndarray, limits: np.ndarray, max_repeats: float):
    """(minimal cost, weights) of the relaxed design problem; None if the solver did not converge."""
    scale = np.abs(j).max(axis=0)  # column scaling: the parameters span orders of magnitude
    j, g = j / scale, g / scale

    def slack(w):
        return 1.0 - variances(j, g, w) / limits

    def slack_jacobian(w):
        inv = np.linalg.pinv((j * w[:, None]).T @ j)
        return (g @ inv @ j.T) ** 2 / limits[:, None]  # d var / d w_i = -(g^T M^-1 j_i)^2

    result = minimize(
        lambda w: cost @ w,
        np.full(len(cost), min(max_repeats, 1.0)),
        jac=lambda w: cost,
        bounds=[(0.0, max_repeats)] * len(cost),
        method="SLSQP",
        options={"maxiter": 1000},
        constraints=[{"type": "ineq", "fun": slack, "jac": slack_jacobian}],
    )
    if not result.success or np.min(slack(result.x)) < -1e-4:
        return None
    return float(result.fun), result.x


def bound(st: Setup, target: float, factor: float = 1.0, max_repeats: float = 1.0) -> float | None:
    """The least FLOPs any design of the adaptive candidates could spend to bring a and b within
    `target` with the held-out prediction's variance at most `factor` x the whole grid's; None when
    the solver does not converge (or the candidates cannot reach the target at all)."""
    law, noise = get_law("chinchilla"), st.cfg.simulation.noise
    g = watched(law, st.params, st.held_out)
    grid_var = variances(jacobian(law, st.params, st.plan.trials), g)[-1]
    return least_for(
        st, np.array([(target / Z / noise) ** 2] * len(WATCH) + [factor * grid_var]), max_repeats
    )


def bound_matching(st: Setup, points) -> float | None:
    """The least FLOPs any design of the adaptive candidates could spend to be at least as precise
    as `points` (a design run once each) on a, b and the held-out prediction, all linearised at
    the true law. `points` is itself such a design, so a sampler spends at least this much: its
    compute over this is its multiple of the bound (1: no design does better)."""
    law = get_law("chinchilla")
    return least_for(st, variances(jacobian(law, st.params, points), watched(law, st.params, st.held_out)))


def least_for(st: Setup, limits: np.ndarray, max_repeats: float = 1.0) -> float | None:
    """least_compute over the adaptive candidates, with variance limits (noise units) on a, b and
    the held-out prediction, in FLOPs."""
    law = get_law("chinchilla")
    candidates = candidate_points(st.cfg.replace(design="adaptive"), st.plan)
    cost = np.array([p.flops for p in candidates]) / st.plan.total_flops
    solved = least_compute(
        jacobian(law, st.params, candidates), cost, watched(law, st.params, st.held_out), limits, max_repeats
    )
    return None if solved is None else solved[0] * st.plan.total_flops


def best_ratio_at_equal_compute(st: Setup, window: float = np.inf, steps: int = 12) -> float:
    """The smallest max-over-(a, b) half-width ratio to the whole grid's that any design of the adaptive
    candidates within `window`x of the true optimal size of their budget reaches with the grid's compute,
    each candidate at most once (linearised; bisection on the variance scale). The sampler's equal-compute
    ratio cannot be below it, up to the bootstrap's own noise."""
    law = get_law("chinchilla")
    g = watched(law, st.params, st.held_out)[: len(WATCH)]
    grid_var = variances(jacobian(law, st.params, st.plan.trials), g)
    keep = [
        p
        for p in candidate_points(st.cfg.replace(design="adaptive"), st.plan)
        if abs(np.log(p.n_params / true_optimum(st.params, [p])[0][0])) <= np.log(window)
    ]
    j, cost = jacobian(law, st.params, keep), np.array([p.flops for p in keep]) / st.plan.total_flops
    lo, hi = 0.0, 1.0  # t: the grid's variances x t are within reach of the grid's compute
    for _ in range(steps):
        t = 0.5 * (lo + hi)
        solved = least_compute(j, cost, g, t * grid_var, 1.0)
        lo, hi = (lo, t) if solved is not None and solved[0] <= 1.0 else (t, hi)
    return float(np.sqrt(hi))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spaces", nargs="+", default=list(SPACES))
    ap.add_argument("--noise", type=float, default=0.005)
    ap.add_argument(
        "--target-ci",
        type=float,
        default=None,
        help="half-width on a and b; default: the whole grid's own (linearised)",
    )
    ap.add_argument("--max-repeats", type=float, default=1.0, help="runs allowed per candidate")
    ap.add_argument(
        "--factors",
        type=float,
        nargs="+",
        default=[1.0, float("inf")],
        help="allowed prediction variance at the held-out budget, in units of the grid's",
    )
    ap.add_argument(
        "--equal-compute",
        action="store_true",
        help="instead: the best a, b half-width ratio to the grid at the grid's compute, with the "
        "sampler's window (4x) and without",
    )
    args = ap.parse_args(argv)
    if args.equal_compute:
        print(
            "best max(a, b) CI half-width ratio to the whole grid of any design of the candidates "
            "at the grid's "
            "compute (each candidate at most once, linearised at the true law)"
        )
        for space in args.spaces:
            for name, shape in SHAPES.items():
                st = setup(space, shape, n_bootstrap=0, noise=args.noise)
                print(
                    f"{space:<16}{name:<34} all candidates {best_ratio_at_equal_compute(st):.3f}, "
                    f"within 4x of the optimal size {best_ratio_at_equal_compute(st, 4.0):.3f}",
                    flush=True,
                )
        return
    print(
        "least compute of any design, as a fraction of the whole grid's, to bring a and b within "
        "the target with "
        "the held-out prediction variance <= f x the grid's (n/c: the solver did not converge)"
    )
    print(
        f"{'space':<16}{'law':<34}{'grid FLOPs':>11}{'target':>8}"
        + "".join(f"{f'f={f:g}':>8}" for f in args.factors)
    )
    law = get_law("chinchilla")
    for space in args.spaces:
        for name, shape in SHAPES.items():
            st = setup(space, shape, n_bootstrap=0, noise=args.noise)
            g = watched(law, st.params, st.held_out)
            own = (
                Z
                * args.noise
                * np.sqrt(variances(jacobian(law, st.params, st.plan.trials), g)[: len(WATCH)].max())
            )
            target = args.target_ci or float(own)
            cells = [bound(st, target, f, args.max_repeats) for f in args.factors]
            print(
                f"{space:<16}{name:<34}{st.plan.total_flops:>11.3g}{target:>8.3g}"
                + "".join(f"{'n/c':>8}" if c is None else f"{c / st.plan.total_flops:>8.3f}" for c in cells)
            )


if __name__ == "__main__":
    main()
