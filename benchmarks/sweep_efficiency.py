"""Adaptive design vs uniform isoFLOP grid on the ladders users run: equal compute and equal precision.

Both designs run through the product's own driver (sweeper.forecast.simulate_sweep: the
searcher, FrontierSampler, session, ledger and stop rule of `sweeper run`, in process), with
losses from the simulated law plus lognormal noise seeded by (seed, point), so both designs see
the same noise at the same point. Ladders and laws: benchmarks/ladders.py (the tiny ladder and
every bundled paper space, each at its own budget; three law shapes no test uses).

Per ladder, law and seed:
1. the grid: the space's plan in order (slices ascending, sizes ascending), to its end;
2. the adaptive design with the grid's compute as its budget, to the end;
3. the adaptive design with target T (below), stopped on it as `sweeper run` stops.

Equal compute: the ratio of the adaptive design's 95% CI half-width on a and b to the grid's (same
seed), and how often the truth lies inside the adaptive CI.
Equal precision: the target T is what the grid reaches (the 80th percentile over seeds of its final
max(a, b) half-width), so that it reaches T in most seeds. Each design's cost is the compute when
its stop rule first held at T, as a fraction of the grid's; the held-out error is that
stopping fit's |%| error of the loss at the true compute-optimal (N, D) one slice ratio past the
grid's largest slice; and the multiple of benchmarks/design_bound.py's least compute (any design
of the adaptive candidates reaching T, linearised, with extrapolation no worse than the grid's).
Intervals are as reported: widened by sweeper.ledger.STOPPING_CI_WIDENING in both designs.

    .venv/bin/python benchmarks/sweep_efficiency.py [--seeds 10] [--spaces tiny text_chinchilla]
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import os
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from design_bound import bound  # noqa: E402
from ladders import SHAPES, SPACES, WATCH, setup, true_optimum, truth  # noqa: E402

from sweeper.forecast import simulate_sweep  # noqa: E402
from sweeper.ledger import STOPPING_CI_WIDENING  # noqa: E402
from sweeper.simulated import law_loss  # noqa: E402

TIGHT = 1e-9  # a target no screen passes: refits stay linearised until the final bootstrap


def held_out_error(fit, st) -> float:
    n_opt, d_opt = true_optimum(st.params, st.held_out)
    true = law_loss("chinchilla", st.params, n_opt[0], d_opt[0])
    return float(100.0 * abs(fit.predict(n_opt, d_opt)[0] - true) / true)


def stopping_cost(sweep, st) -> dict:
    """The compute a sweep stopped on its target spent, and its fit's held-out error (nan: never reached)."""
    if not sweep.stop_reason.startswith("converged"):
        return {"to_target": math.nan, "error": math.nan}
    return {"to_target": sweep.ledger.spent, "error": held_out_error(sweep.fit, st)}


def run_grid(job):
    """The grid's plan to its end: half-widths there (one bootstrap, at the end), or with a target
    the compute and the fit where its stop rule first held."""
    space, shape, seed, args, target = job
    st = setup(space, SHAPES[shape], n_bootstrap=args.n_bootstrap, noise=args.noise)
    cfg = st.cfg.replace(fit=st.cfg.fit.replace(target_ci=target or TIGHT, watch=WATCH))
    sweep = simulate_sweep(cfg, st.plan, seed=seed, stop_on_convergence=bool(target))
    if not target:
        return {"hw": sweep.halfwidths_at_end}
    return stopping_cost(sweep, st)


def run_adaptive(job):
    space, shape, seed, args, target = job
    st = setup(space, SHAPES[shape], n_bootstrap=args.n_bootstrap, noise=args.noise)
    cfg = st.cfg.replace(design="adaptive", budget=st.plan.total_flops)
    # Equal compute: to the end, with a target no screen passes (cheap refits), bootstrapped once at the end.
    spent = simulate_sweep(cfg.replace(fit=cfg.fit.replace(target_ci=TIGHT, watch=WATCH)), st.plan, seed=seed,
                           stop_on_convergence=False)
    true = truth(st.params)
    inside = {q: bool(spent.fit is not None and q in spent.fit.ci and spent.fit.ci[q][0] <= true[q] <= spent.fit.ci[q][1])
              for q in WATCH}
    # Equal precision: as `sweeper run` with target T, stopped on it.
    stopped = simulate_sweep(cfg.replace(fit=cfg.fit.replace(target_ci=target, watch=WATCH)), st.plan, seed=seed)
    return {"hw": spent.halfwidths_at_end, "inside": inside, "trials": len(spent.ledger.runs),
            **stopping_cost(stopped, st)}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spaces", nargs="+", default=list(SPACES))
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--noise", type=float, default=0.005)
    ap.add_argument("--n-bootstrap", type=int, default=30)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args(argv)
    started = time.perf_counter()
    keys = [(space, shape) for space in args.spaces for shape in SHAPES]
    seeds = range(args.seeds)
    with multiprocessing.get_context("fork").Pool(args.workers) as pool:
        def each(fn, extra):  # {(space, shape): [result per seed]}
            out = pool.map(fn, [(*k, seed, args, extra(k)) for k in keys for seed in seeds], chunksize=1)
            return {k: out[i * args.seeds:(i + 1) * args.seeds] for i, k in enumerate(keys)}

        grids = each(run_grid, lambda k: None)
        targets = {k: float(np.percentile([max(g["hw"].values()) for g in grids[k]], 80)) for k in keys}
        stopped = each(run_grid, targets.get)
        adaptive = each(run_adaptive, targets.get)
    print(f"{len(keys) * args.seeds} seeds x (grid, adaptive) in {time.perf_counter() - started:.0f} s; noise "
          f"{args.noise}, {args.n_bootstrap} bootstrap resamples; intervals as reported (widened for stopping)")
    print(f"{'space':<16}{'law':<33}{'grid':>10}{'trials':>13}{'hw ratio a':>11}{'b':>6}{'truth in':>9}"
          f"{'target':>8}{'reached':>9}{'compute':>8}{'held-out % err':>16}{'x bound':>8}")
    ratios, inside, fractions, multiples, errors = [], [], [], [], []
    for space, shape in keys:
        st = setup(space, SHAPES[shape], n_bootstrap=0, noise=args.noise)
        g_runs, a_runs, target = grids[space, shape], adaptive[space, shape], targets[space, shape]
        r = {q: [a["hw"][q] / g["hw"][q] for g, a in zip(g_runs, a_runs)] for q in WATCH}
        ins = [a["inside"][q] for a in a_runs for q in WATCH]
        g_cost = [g["to_target"] for g in stopped[space, shape]]
        g_err = [g["error"] for g in stopped[space, shape]]
        frac = [a["to_target"] / c for a, c in zip(a_runs, g_cost)]
        least = bound(st, target / STOPPING_CI_WIDENING)  # the bootstrap's own width, before widening
        multiple = [a["to_target"] / least if least else math.nan for a in a_runs]
        a_err = [a["error"] for a in a_runs]
        ratios += r["a"] + r["b"]
        inside += ins
        fractions += frac
        multiples += multiple
        errors.append((np.nanmedian(g_err), np.nanmedian(a_err)))
        reached = f"{sum(math.isfinite(c) for c in g_cost)}/{sum(math.isfinite(a['to_target']) for a in a_runs)}"
        print(f"{space:<16}{shape:<33}{st.plan.total_flops:>10.3g}{len(st.plan.trials):>5} /{np.median([a['trials'] for a in a_runs]):>5.0f}"
              f"{np.median(r['a']):>11.3f}{np.median(r['b']):>6.3f}{np.mean(ins):>9.0%}{target:>8.3f}{reached:>9}"
              f"{np.nanmedian(frac):>8.3f}{np.nanmedian(g_err):>8.3f}/{np.nanmedian(a_err):<7.3f}"
              f"{np.nanmedian(multiple):>8.2f}")
    print(f"ALL: equal compute, median half-width ratio adaptive/grid on a and b {np.median(ratios):.3f}, truth inside "
          f"the adaptive CI {np.mean(inside):.1%} of {len(inside)}; equal precision, median compute fraction "
          f"{np.nanmedian(fractions):.3f}, median multiple of the design bound {np.nanmedian(multiples):.2f}, held-out "
          f"error no worse than the grid's in {sum(a <= g for g, a in errors)}/{len(errors)} (ladder, law) medians")


if __name__ == "__main__":
    main()
