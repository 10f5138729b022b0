"""Fit speed on ~500 runs: full 8,820-start fit, 100 bootstrap refits, and the
plain per-start scipy L-BFGS-B loop (a sample of starts, timed and scaled).

    .venv/bin/python benchmarks/fit_speed.py [--runs 500] [--loop-sample 200] [--full-loop]

Goals (issue): fit < 2 s, fit + 100 bootstraps < 30 s on 2 cores, >= 50x faster
than the loop at equal or lower objective.
"""

import os

# Before numpy loads: the work is many tiny products that BLAS threads only slow down.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from sweeper.fit import fit_law, get_law  # noqa: E402
from sweeper.fit.bootstrap import bootstrap_thetas  # noqa: E402
from sweeper.fit.multistart import SearchSettings, find_optimum, per_start_scipy  # noqa: E402
from sweeper.fit.synthetic import TABLE2_AVG, draw_losses, token_design  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=500)
    ap.add_argument("--bootstrap", type=int, default=100)
    ap.add_argument("--loop-sample", type=int, default=200)
    ap.add_argument("--full-loop", action="store_true", help="run every start (minutes)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    law = get_law("chinchilla")
    frame = draw_losses(token_design(args.runs, seed=args.seed), TABLE2_AVG, noise=0.005, seed=args.seed + 1)
    y = np.log(frame["loss"].to_numpy())
    grid = law.grid(None, "paper")
    print(f"runs {len(frame)}, starts {len(grid)}, sizes {frame['n_params'].nunique()}")

    t0 = time.perf_counter()
    opt = find_optimum(law, frame, y, grid, SearchSettings())
    t_fit = time.perf_counter() - t0
    t0 = time.perf_counter()
    bootstrap_thetas(law, frame, y, opt.local_optima, args.bootstrap, args.seed)
    t_boot = time.perf_counter() - t0
    t0 = time.perf_counter()
    res = fit_law(frame, n_bootstrap=args.bootstrap, seed=args.seed)
    t_api = time.perf_counter() - t0
    print(f"vectorised fit (8,820 starts):        {t_fit:8.3f} s   objective {opt.objective:.12e}")
    print(f"{args.bootstrap} bootstrap refits:                 {t_boot:8.3f} s")
    print(f"fit + {args.bootstrap} bootstraps:                  {t_fit + t_boot:8.3f} s")
    print(
        f"fit_law(n_bootstrap={args.bootstrap}) incl. derived: {t_api:8.3f} s   "
        f"alpha {res.params['alpha']:.4f} CI {np.round(res.ci['alpha'], 4).tolist()}"
    )

    rng = np.random.default_rng(args.seed)
    idx = (
        np.arange(len(grid))
        if args.full_loop
        else rng.choice(len(grid), min(args.loop_sample, len(grid)), replace=False)
    )
    t0 = time.perf_counter()
    _, loop_f = per_start_scipy(law, frame, y, grid[idx])
    t_loop = (time.perf_counter() - t0) * len(grid) / len(idx)
    best = float(np.nanmin(loop_f))
    label = "all" if args.full_loop else f"{len(idx)} sampled"
    print(
        f"per-start scipy loop ({label} starts, scaled to {len(grid)}): {t_loop:8.2f} s   "
        f"best objective {best:.12e}"
    )
    print(f"speed-up loop / vectorised fit: {t_loop / t_fit:8.1f}x")
    rel = (opt.objective - best) / best
    verdict = "lower" if rel < 0 else "equal (within 1e-9 relative)" if rel <= 1e-9 else "HIGHER"
    print(f"objective vectorised - loop: {opt.objective - best:+.3e} (relative {rel:+.2e}): {verdict}")


if __name__ == "__main__":
    main()
