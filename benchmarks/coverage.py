"""Coverage of the 95% CIs at the moment an adaptive sweep stops, on laws no test uses.

Stopping once a CI is narrow is optional stopping: it selects the draws whose
intervals happen to be narrow, so the intervals reported at the stop can cover
the truth less often than their nominal 95%. This runs many simulated adaptive
sweeps through the product's own driver (sweeper.forecast.simulate_sweep: the
searcher, FrontierSampler, session, ledger and stop rule of `sweeper run`, in
process, without MLflow) and counts how often the truth lies inside the CI of a,
b, alpha and beta that the stopping refit reported: as reported (widened by
sweeper.ledger.STOPPING_CI_WIDENING, which this benchmark measured) and unwidened.

    .venv/bin/python benchmarks/coverage.py --sweeps-per-law 70 [--target-ci 0.05] [--workers 2]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from ladders import truth  # noqa: E402

from sweeper.config import load_config  # noqa: E402
from sweeper.forecast import simulate_sweep  # noqa: E402

# Chosen for this benchmark only: no test, fixture or default uses these values.
LAWS = {
    "L1 (E=2.2,A=650,B=1100,alpha=0.28,beta=0.42)": {"E": 2.2, "A": 650.0, "B": 1100.0, "alpha": 0.28, "beta": 0.42},
    "L2 (E=1.6,A=220,B=2900,alpha=0.40,beta=0.31)": {"E": 1.6, "A": 220.0, "B": 2900.0, "alpha": 0.40, "beta": 0.31},
    "L3 (E=2.0,A=1200,B=1600,alpha=0.46,beta=0.36)": {"E": 2.0, "A": 1200.0, "B": 1600.0, "alpha": 0.46,
                                                     "beta": 0.36},
}
QUANTITIES = ("a", "b", "alpha", "beta")


def config(args, params: dict):
    return load_config("tiny", trainable="simulated", design="adaptive", kind="dense_text", budget=args.budget,
                       batch_size=16, target_ci=args.target_ci, noise=args.noise, n_bootstrap=args.n_bootstrap,
                       sim_law=",".join(f"{k}={v}" for k, v in params.items()),
                       **{"budgets.min_tokens_per_param": 2.0, "budgets.max_tokens_per_param": 2000.0,
                          "budgets.min_steps": 20})


def one_sweep(job):
    args, name, seed = job
    params = LAWS[name]
    sweep = simulate_sweep(config(args, params), seed=seed)
    fit, true = sweep.fit, truth(params)
    factor = (fit.extras.get("ci_widening") or {}).get("factor", 1.0) if fit is not None else 1.0
    raw = fit.widened(1.0 / factor, "undone") if fit is not None else None  # the bootstrap's own intervals

    def inside(f):
        return {q: None if f is None or q not in f.ci else bool(f.ci[q][0] <= true[q] <= f.ci[q][1])
                for q in QUANTITIES}

    return name, sweep.stop_reason.startswith("converged"), inside(fit), len(sweep.ledger.runs), inside(raw), factor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweeps-per-law", type=int, default=70)
    parser.add_argument("--target-ci", type=float, default=0.05)
    parser.add_argument("--budget", type=float, default=2e14)
    parser.add_argument("--noise", type=float, default=0.01)
    parser.add_argument("--n-bootstrap", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    jobs = [(args, name, seed) for name in LAWS for seed in range(args.sweeps_per_law)]
    started = time.perf_counter()
    with multiprocessing.get_context("spawn").Pool(args.workers) as pool:
        results = pool.map(one_sweep, jobs, chunksize=1)
    print(f"{len(results)} simulated adaptive sweeps (tiny dense_text ladder, target CI half-width "
          f"{args.target_ci}, noise {args.noise}, {args.n_bootstrap} bootstrap resamples) in "
          f"{time.perf_counter() - started:.0f} s")
    factors = sorted({r[5] for r in results})
    for title, column in ((f"as reported (widened {'/'.join(f'{f:g}' for f in factors)}x for stopping on them, "
                           "sweeper.ledger.STOPPING_CI_WIDENING)", 2), ("the bootstrap's own, unwidened", 4)):
        print(f"coverage of the stopping refit's 95% CIs, {title}:")
        print(f"{'law':<48}{'converged':>10}{'trials':>8}" + "".join(f"{q:>9}" for q in QUANTITIES))
        for name in [*LAWS, None]:
            rows = [r for r in results if name in (None, r[0])]
            cells = []
            for q in QUANTITIES:
                hits = [r[column][q] for r in rows if r[column][q] is not None]
                cells.append(f"{np.mean(hits):9.1%}" if hits else f"{'-':>9}")
            print(f"{name or 'all laws':<48}{sum(r[1] for r in rows):>6}/{len(rows):<3}"
                  f"{np.median([r[3] for r in rows]):>8.0f}" + "".join(cells))

if __name__ == "__main__":
    main()
