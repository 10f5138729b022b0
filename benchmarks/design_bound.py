"""The least compute any design could spend on sweep_efficiency's setup: a lower bound.

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

a convex problem (g^T M(w)^-1 g is convex in w), solved with scipy's SLSQP.
The grid is the in-order prefix of its first k trials, for every k from where
its own linearised half-widths of a and b first reach the target to the whole
grid: sweep_efficiency's bootstrap check stops it later than the linearisation
(after 21-31 trials), and both its cost and its extrapolation grow with k.
f = 1 is "no worse extrapolation", f = inf drops the extrapolation requirement.
`--slices` moves the held-out budget (one slice past the grid's plan): the
further out the prediction, the more the exponents dominate it and the cheaper
"no worse extrapolation" gets.
The prediction's gradient is the Jacobian row at the true compute-optimal
(N, D) of the held-out budget (by the envelope theorem the optimum's own shift
does not enter). Each candidate runs at most once by default: the simulated
noise is seeded by the point, so a repeat teaches nothing.

    .venv/bin/python benchmarks/design_bound.py [--factors 1 1.5 2 4 inf] [--max-repeats 1]
"""

from __future__ import annotations

import argparse

import numpy as np
from scipy.optimize import minimize
from sweep_efficiency import LAWS, WATCH, setup, true_optimum

from sweeper.fit import get_law
from sweeper.samplers.candidates import STEPS_PER_SLICE, candidate_points
from sweeper.samplers.frontier import log_loss_jacobian, watched_gradients

Z = 1.96


def jacobian(law, params, points) -> np.ndarray:
    return log_loss_jacobian(law, params, np.array([p.n_params for p in points], float),
                             np.array([p.n_tokens for p in points], float))


def watched(law, params, held_out) -> np.ndarray:
    """Gradients (rows) of a, b and log L at the held-out budget's true compute-optimal (N, D)."""
    n_opt, d_opt = true_optimum(params, held_out)
    return np.vstack([watched_gradients(params, WATCH), log_loss_jacobian(law, params, n_opt, d_opt)])


def variances(j: np.ndarray, g: np.ndarray, w: np.ndarray | None = None) -> np.ndarray:
    """g^T (J^T diag(w) J)^-1 g for each row of g (noise variance 1)."""
    fisher = (j if w is None else j * w[:, None]).T @ j
    return np.einsum("wp,pq,wq->w", g, np.linalg.pinv(fisher), g)


def first_converged(j_grid: np.ndarray, g: np.ndarray, target_var: float) -> int:
    """The length of the shortest in-order grid prefix with a and b within target (linearised)."""
    for k in range(len(g[0]) + 1, len(j_grid) + 1):
        if np.all(variances(j_grid[:k], g)[:len(WATCH)] <= target_var):
            return k
    raise SystemExit("the whole grid does not reach the target: raise --slices or --target-ci")


def least_compute(j: np.ndarray, cost: np.ndarray, g: np.ndarray, limits: np.ndarray, max_repeats: float):
    """(minimal cost, weights) of the relaxed design problem; None if the solver did not converge."""
    scale = np.abs(j).max(axis=0)  # column scaling: the parameters span orders of magnitude
    j, g = j / scale, g / scale

    def slack(w):
        return 1.0 - variances(j, g, w) / limits

    def slack_jacobian(w):
        inv = np.linalg.pinv((j * w[:, None]).T @ j)
        return (g @ inv @ j.T) ** 2 / limits[:, None]  # d var / d w_i = -(g^T M^-1 j_i)^2

    result = minimize(lambda w: cost @ w, np.full(len(cost), min(max_repeats, 1.0)), jac=lambda w: cost,
                      bounds=[(0.0, max_repeats)] * len(cost), method="SLSQP", options={"maxiter": 1000},
                      constraints=[{"type": "ineq", "fun": slack, "jac": slack_jacobian}])
    if not result.success or np.min(slack(result.x)) < -1e-4:
        return None
    return float(result.fun), result.x


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--noise", type=float, default=0.005)
    ap.add_argument("--target-ci", type=float, default=0.02)
    ap.add_argument("--slices", type=int, default=7, help="grid slices available; one more is held out")
    ap.add_argument("--steps-per-slice", type=int, default=STEPS_PER_SLICE, help="candidate budgets per slice ratio")
    ap.add_argument("--max-repeats", type=float, default=1.0, help="runs allowed per candidate")
    ap.add_argument("--factors", type=float, nargs="+", default=[1.0, 1.5, 2.0, 4.0, float("inf")],
                    help="allowed prediction variance at the held-out budget, in units of the grid's (n/c: the "
                    "solver did not converge)")
    args = ap.parse_args(argv)
    cfg, plan, held_out = setup(args.slices)
    candidates = candidate_points(cfg, plan, steps_per_slice=args.steps_per_slice)
    grid = sorted(plan.trials, key=lambda t: (t.budget, t.n_params))
    target_var = (args.target_ci / Z / args.noise) ** 2
    law = get_law("chinchilla")
    print(f"{len(candidates)} candidates (budgets {args.steps_per_slice} per slice ratio, up to the grid's largest "
          f"slice), at most {args.max_repeats:g} runs each; grid of {len(grid)} trials; held out "
          f"C={held_out[0].budget:.3g}; noise {args.noise}; target CI half-width {args.target_ci} on a, b")
    print("per law: the grid stopped after k trials (its FLOPs, its held-out log L half-width), and the least "
          "compute of any design, as a fraction of the grid's, with the prediction variance <= f x the grid's")
    for name, params in LAWS.items():
        g = watched(law, params, held_out)
        j_grid, flops = jacobian(law, params, grid), np.array([t.flops for t in grid])
        j = jacobian(law, params, candidates)
        print(f"{name}\n  {'k':>3} {'grid FLOPs':>10} {'half-width':>10} " + " ".join(f"{f'f={f:g}':>7}" for f in args.factors))
        for k in range(first_converged(j_grid, g, target_var), len(grid) + 1):
            g_flops, g_var = float(flops[:k].sum()), variances(j_grid[:k], g)[-1]
            cells = []
            for factor in args.factors:
                limits = np.array([target_var] * len(WATCH) + [factor * g_var])
                solved = least_compute(j, np.array([p.flops for p in candidates]) / g_flops, g, limits, args.max_repeats)
                cells.append("   n/c" if solved is None else f"{solved[0]:.3f}")
            print(f"  {k:>3} {g_flops:>10.3g} {Z * args.noise * np.sqrt(g_var):>10.4f} " + " ".join(f"{c:>7}" for c in cells))

if __name__ == "__main__":
    main()
