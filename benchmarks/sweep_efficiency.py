"""Compute to reach CI half-width <= target on a and b: adaptive design vs uniform isoFLOP grid.

Runs in-process, without Ray or MLflow, so that many seeds finish in minutes:
the FrontierSampler is driven through an Optuna study exactly as PointSearcher
drives it (ask with the `point` distribution, `parallel` trials in flight, tell
in finishing order), and losses come from sweeper.simulated.simulated_loss (the
registered law times lognormal noise seeded by (seed, point)), so the two
designs see the same noise at the same point. The Ray / MLflow path is covered
by tests/integration/test_adaptive_sweep.py.

Setup: the tiny dense_text ladder (6 sizes, 54k-804k parameters), isoFLOP slices
3x apart from the cheapest budget holding 3 sizes; the largest budget
(`--slices`+1-th) is held out for the extrapolation error and used by neither.

- grid: the isoFLOP grid run in order (slices ascending, sizes ascending within
  a slice); its cost is the FLOPs spent up to the first trial after which the
  bootstrap CIs of a and b are <= target. This is the smallest in-order grid
  reaching the target, i.e. generous to the grid.
- adaptive: FrontierSampler proposals from the candidate set (budgets
  3**(1/`--steps-per-slice`) apart up to the grid's largest slice), with its
  defaults (`--extrapolate`, `--prediction-weight` change them); cost is the
  FLOPs of every trial finished or in flight when its CIs first reach the target.

Both are checked after every finished trial with the same procedure: a coarse
fit, a Fisher-information (delta method) half-width as a cheap screen, and when
that screen is within `screen` x of the target, the bootstrap fit (same
n_bootstrap, grid and seed for both designs) that decides; as in the live
ConvergenceStopper, `patience` checks in a row must pass. `--watch-prediction`
adds log L_opt at the held-out budget to the watched quantities (live:
`--target-compute C` and log_L_opt in fit.watch): a and b converge on cheap
points whose fit can still extrapolate badly. Extrapolation error of the
converged fit against the noise-free law at the held-out budget: the mean
absolute % error over every ladder size (the whole isoFLOP curve), and the
absolute % error at the true compute-optimal (N, D) (what a user reads off).

benchmarks/design_bound.py gives the least compute any design could spend on this
setup (linearised, true law known), with and without the extrapolation requirement.

    .venv/bin/python benchmarks/sweep_efficiency.py --seeds 10 [--watch-prediction]
"""

from __future__ import annotations

import argparse
import functools
import multiprocessing
import time

import numpy as np
import optuna
import pandas as pd
from optuna.distributions import CategoricalDistribution
from optuna.trial import TrialState

from sweeper.config import load_config
from sweeper.fit import SearchSettings, fit_law, get_law
from sweeper.fit.derived import closed_form, optimum_at
from sweeper.fit.synthetic import TABLE2_AVG
from sweeper.plan import Plan, geometric_slices, model_specs, slice_trials
from sweeper.samplers.candidates import STEPS_PER_SLICE, candidate_points, initial_design
from sweeper.samplers.frontier import POINT, FrontierSampler, fisher_halfwidths
from sweeper.simulated import law_loss, simulated_loss

LAWS = {
    "default (E=1.9,A=400,B=2000,alpha=0.34,beta=0.37)":
        {"E": 1.9, "A": 400.0, "B": 2000.0, "alpha": 0.34, "beta": 0.37},
    "early-fusion Table 2 AVG (alpha=0.301,beta=0.335)": dict(TABLE2_AVG),
}
WATCH = ("a", "b")


def setup(n_slices: int):
    # Pinned here so the benchmark does not move when the tiny search space is retuned.
    cfg = load_config("tiny", trainable="simulated", design="adaptive", kind="dense_text", batch_size=16,
                      **{"budgets.min_tokens_per_param": 2.0, "budgets.max_tokens_per_param": 2000.0,
                         "budgets.min_steps": 20})
    specs = model_specs(cfg)
    first = next(c for c in np.geomspace(1e10, 1e13, 400) if len(slice_trials(specs, c, cfg)) >= 3)
    all_slices = geometric_slices(float(first) * 3.0 ** n_slices, n_slices + 1, 3.0)
    slices, held_out = all_slices[:-1], all_slices[-1]
    trials = tuple(t for c in slices for t in slice_trials(specs, c, cfg))
    plan = Plan(slices=slices, trials=trials, budget=float("inf"), max_concurrent_trials=2)
    return cfg, plan, slice_trials(specs, held_out, cfg)


class Checker:
    """The convergence check both designs go through after every finished trial."""

    def __init__(self, law: str, target: float, n_bootstrap: int, seed: int, screen: float, patience: int,
                 target_compute: float, watch: tuple[str, ...] = WATCH):
        self.law, self.target, self.n_bootstrap, self.seed, self.screen = law, target, n_bootstrap, seed, screen
        # Every fit carries log_L_opt at target_compute; it decides only when watched (as fit.watch live).
        self.target_compute, self.watch = target_compute, watch
        self.patience, self.streak = patience, 0

    def __call__(self, points, losses):
        """The converged fit once `patience` checks in a row pass (as ConvergenceStopper), else None."""
        fit = self._check(points, losses)
        self.streak = self.streak + 1 if fit is not None else 0
        return fit if self.streak >= self.patience else None

    def _check(self, points, losses):
        if len(points) < 8:
            return None
        frame = pd.DataFrame({"n_params": [p.n_params for p in points], "n_tokens": [p.n_tokens for p in points],
                              "loss": losses})
        quick = fit_law(frame, law=self.law, grid="coarse", settings=SearchSettings(keep=6, n_polish=2))
        approx = fisher_halfwidths(get_law(self.law), quick.params, frame["n_params"].to_numpy(float),
                                   frame["n_tokens"].to_numpy(float), np.log(frame["loss"].to_numpy()), WATCH)
        if max(approx.values()) > self.screen * self.target:
            return None
        fit = fit_law(frame, law=self.law, grid="coarse", n_bootstrap=self.n_bootstrap, seed=self.seed,
                      target_compute=self.target_compute)
        return fit if all(fit.ci_halfwidth(w) <= self.target for w in self.watch) else None


def run_grid(plan: Plan, sim: dict, seed: int, check: Checker):
    """(FLOPs up to the converging trial, FLOPs of the whole slices up to it, fit, trials)."""
    done, losses, spent = [], [], 0.0
    for t in sorted(plan.trials, key=lambda t: (t.budget, t.n_params)):
        done.append(t)
        losses.append(simulated_loss(sim, t.to_dict(), seed))
        spent += t.flops
        fit = check(done, losses)
        if fit is not None:
            whole = sum(p.flops for p in plan.trials if p.budget <= t.budget)
            return spent, whole, fit, len(done)
    return float("nan"), float("nan"), None, len(done)


def run_adaptive(cfg, plan: Plan, sim: dict, seed: int, check: Checker, parallel: int, timings: list,
                 steps_per_slice: int, **sampler_kwargs):
    candidates = candidate_points(cfg, plan, steps_per_slice=steps_per_slice)
    by_id = {p.point_id: p for p in candidates}
    initial = initial_design(plan, candidates, spacing=steps_per_slice)
    sampler = FrontierSampler(candidates=candidates, initial=initial, law=sim["law"], watch=check.watch, seed=seed,
                              **sampler_kwargs)
    study = optuna.create_study(direction="minimize", sampler=sampler)
    dist = CategoricalDistribution([p.point_id for p in candidates])
    in_flight, done, losses, spent = [], [], [], 0.0
    while True:
        while len(in_flight) < parallel and len(study.trials) < len(candidates):
            start = time.perf_counter()
            trial = study.ask({POINT: dist})
            timings.append(time.perf_counter() - start)
            point = by_id[trial.params[POINT]]
            if any(t.params.get(POINT) == point.point_id for t in study.trials[:-1]):
                study.tell(trial, state=TrialState.FAIL)
                break
            in_flight.append((trial, point))
            spent += point.flops
        if not in_flight:
            return float("nan"), None, len(done)
        trial, point = in_flight.pop(0)
        loss = simulated_loss(sim, point.to_dict(), seed)
        study.tell(trial, loss)
        done.append(point)
        losses.append(loss)
        fit = check(done, losses)
        if fit is not None:
            return spent, fit, len(done)


def true_optimum(params: dict, held_out) -> tuple[np.ndarray, np.ndarray]:
    """([N_opt], [D_opt]) of the noise-free law at the held-out budget."""
    k = float(np.median([t.flops / (t.n_params * t.n_tokens) for t in held_out]))
    return optimum_at(closed_form(params, k), [held_out[0].budget])


def extrapolation_error(fit, sim: dict, held_out) -> tuple[float, float, float]:
    """(mean |%| error over every ladder size of the held-out budget, |%| error at its true
    compute-optimal (N, D), the fit's own CI half-width of log L_opt there): the first is the
    whole isoFLOP curve, the second what a user of the law reads off it."""
    if fit is None:
        return float("nan"), float("nan"), float("nan")
    n = np.array([t.n_params for t in held_out], float)
    d = np.array([t.n_tokens for t in held_out], float)
    truth = np.array([law_loss(sim["law"], sim["params"], *nd) for nd in zip(n, d)])
    curve = float(100.0 * np.mean(np.abs(fit.predict(n, d) - truth) / truth))
    n_opt, d_opt = true_optimum(sim["params"], held_out)
    true_opt = law_loss(sim["law"], sim["params"], n_opt[0], d_opt[0])
    at_opt = float(100.0 * abs(fit.predict(n_opt, d_opt)[0] - true_opt) / true_opt)
    return curve, at_opt, fit.ci_halfwidth("log_L_opt")


def checker(args, seed: int, held_out) -> Checker:
    return Checker("chinchilla", args.target_ci, args.n_bootstrap, seed, args.screen, args.patience,
                   held_out[0].budget, WATCH + ("log_L_opt",) if args.watch_prediction else WATCH)


def one_seed(args, cfg, plan, held_out, job):
    name, seed = job
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sim = {"law": "chinchilla", "params": LAWS[name], "noise": args.noise}
    timings: list[float] = []
    g_flops, g_whole, g_fit, g_n = run_grid(plan, sim, seed, checker(args, seed, held_out))
    check = checker(args, seed, held_out)
    # As make_searcher: a sampler aims at the stopper's target once the prediction is watched.
    a_flops, a_fit, a_n = run_adaptive(cfg, plan, sim, seed, check, args.parallel, timings, args.steps_per_slice,
                                       extrapolate=args.extrapolate, prediction_weight=args.prediction_weight,
                                       target_ci=args.target_ci if "log_L_opt" in check.watch else None)
    row = (seed, g_flops, g_n, *extrapolation_error(g_fit, sim, held_out),
           a_flops, a_n, *extrapolation_error(a_fit, sim, held_out), g_whole)
    return row, timings


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--noise", type=float, default=0.005)
    ap.add_argument("--target-ci", type=float, default=0.02)
    ap.add_argument("--n-bootstrap", type=int, default=30)
    ap.add_argument("--slices", type=int, default=7, help="grid slices available; one more is held out")
    ap.add_argument("--parallel", type=int, default=2, help="adaptive trials in flight")
    ap.add_argument("--watch-prediction", action="store_true",
                    help="also watch log L_opt at the held-out budget (live: --target-compute, fit.watch log_L_opt)")
    ap.add_argument("--steps-per-slice", type=int, default=STEPS_PER_SLICE, help="candidate budgets per slice ratio")
    ap.add_argument("--screen", type=float, default=1.5)
    ap.add_argument("--patience", type=int, default=2, help="checks in a row within target, as the stopper")
    ap.add_argument("--jobs", type=int, default=2, help="worker processes over (law, seed)")
    ap.add_argument("--extrapolate", type=float, default=3.0, help="FrontierSampler: watched prediction's budget factor")
    ap.add_argument("--prediction-weight", type=float, default=3.0, help="FrontierSampler: the prediction's weight")
    args = ap.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    cfg, plan, held_out = setup(args.slices)
    print(f"tiny dense_text ladder; grid slices {', '.join(f'{c:.3g}' for c in plan.slices)} "
          f"({len(plan.trials)} trials, {plan.total_flops:.3g} FLOPs); held out C={held_out[0].budget:.3g}; "
          f"noise {args.noise}; target CI half-width {args.target_ci} on a, b"
          f"{', log L_opt' if args.watch_prediction else ''}; n_bootstrap {args.n_bootstrap}; "
          f"{args.parallel} adaptive trials in flight")
    all_ratios, whole_ratios, timings = [], [], []
    jobs = [(name, seed) for name in LAWS for seed in range(args.seeds)]
    with multiprocessing.get_context("fork").Pool(args.jobs) as pool:
        results = pool.map(functools.partial(one_seed, args, cfg, plan, held_out), jobs)
    for name in LAWS:
        rows = []
        for (law_name, seed), (row, seed_timings) in zip(jobs, results):
            if law_name != name:
                continue
            rows.append(row)
            timings.extend(seed_timings)
            r = row
            print(f"  seed {seed}: grid {r[1]:.3g} FLOPs / {r[2]} trials (err {r[3]:.3f}%, at optimum "
                  f"{r[4]:.3f}%, CI {100 * r[5]:.2f}%), adaptive {r[6]:.3g} / {r[7]} (err {r[8]:.3f}%, at optimum "
                  f"{r[9]:.3f}%, CI {100 * r[10]:.2f}%), ratio {r[6] / r[1]:.3f} (vs whole grid slices {r[6] / r[11]:.3f})")
        df = pd.DataFrame(rows, columns=["seed", "grid_flops", "grid_n", "grid_err", "grid_opt_err", "grid_pred_ci",
                                         "ad_flops", "ad_n", "ad_err", "ad_opt_err", "ad_pred_ci", "grid_whole"])
        ratio = df["ad_flops"] / df["grid_flops"]
        all_ratios.extend(ratio.tolist())
        whole_ratios.extend((df["ad_flops"] / df["grid_whole"]).tolist())
        print(f"{name}: median adaptive/grid compute {np.nanmedian(ratio):.3f} "
              f"(vs whole slices {np.nanmedian(df['ad_flops'] / df['grid_whole']):.3f}; "
              f"range {np.nanmin(ratio):.3f}-{np.nanmax(ratio):.3f}; grid converged {df['grid_flops'].notna().sum()}"
              f"/{len(df)}, adaptive {df['ad_flops'].notna().sum()}/{len(df)}); held-out error at C="
              f"{held_out[0].budget:.3g} (medians), whole curve: grid {np.nanmedian(df['grid_err']):.3f}%, "
              f"adaptive {np.nanmedian(df['ad_err']):.3f}%; at the optimum: grid {np.nanmedian(df['grid_opt_err']):.3f}%, "
              f"adaptive {np.nanmedian(df['ad_opt_err']):.3f}%")
    print(f"ALL: median compute ratio adaptive/grid {np.nanmedian(all_ratios):.3f} over {len(all_ratios)} runs "
          f"(against whole grid slices: {np.nanmedian(whole_ratios):.3f}); "
          f"sampler proposal time median {1e3 * np.median(timings):.0f} ms, max {1e3 * np.max(timings):.0f} ms")


if __name__ == "__main__":
    main()
