"""Coverage of the 95% intervals a sweep ends with, on laws and law forms no constant was tuned on.

For each design (the uniform isoFLOP grid, and the adaptive design stopped on its CIs), many simulated
sweeps of the tiny dense ladder run against each law of benchmarks/truths.py: exact Chinchilla laws
(coverage.py's old three and a fresh one) and three laws of other forms (an N·D coupling with its own
exponents, repeated data after Muennighoff et al., an N exponent that curves with size). At the stop it
counts how often the truth lies inside the intervals of

- a and b, from the Chinchilla fit the sweep reports (as reported: widened by
  sweeper.sweep.ledger.STOPPING_CI_WIDENING for a sweep that stopped on them; and the bootstrap's own);
- N_opt(C*), L_opt(C*) and the local exponents a, b at C*, from the prediction (sweeper.fit.prediction)
  at C* = 100x the largest slice.

For the other forms the truth of a and b is the true law's local exponent at C*. It prints the median
|error| / half-width (a calibrated interval gives ~0.34), how often a prediction is untrusted and how
often the fit is unidentified (false alarms on exact forms), and for other forms how often the truth is
inside or the prediction says it is not trusted.

The grid design's sweep runs every planned trial, so its runs are the plan with the simulated trainable's
losses (sweeper.trial.simulated.simulated_loss, the same draws the driver makes), fitted once. The adaptive
one runs through the product's driver (sweeper.sweep.forecast.simulate_sweep).

    .venv/bin/python benchmarks/coverage.py --sweeps-per-design 210 [--designs grid,adaptive] [--workers 2]
        [--out sweeps.jsonl]      (each sweep's row as it ends; --report sweeps.jsonl prints a partial run)
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from truths import EXACT, OTHER_FORMS, placed, true_prediction  # noqa: E402

from sweeper.config.schema import load_config  # noqa: E402
from sweeper.fit import fit_law  # noqa: E402
from sweeper.fit.derived import closed_form  # noqa: E402
from sweeper.fit.prediction import predict  # noqa: E402
from sweeper.plan.trials import make_plan, model_specs  # noqa: E402
from sweeper.sweep.forecast import simulate_sweep  # noqa: E402
from sweeper.trial.simulated import simulated_loss  # noqa: E402

LAWS = (*EXACT, *OTHER_FORMS)
# fit.a, fit.b: the Chinchilla fit's a and b as the sweep reports them; a, b: the prediction's local exponents
# at C* (d log N_opt / d log C), which carry the law forms' disagreement.
QUANTITIES = ("fit.a", "fit.b", "a", "b", "N_opt", "loss")
EXTRAPOLATION = 100.0


def config(args, design: str):
    return load_config(
        "tiny",
        trainable="simulated",
        design=design,
        kind="dense_text",
        budget=args.budget,
        batch_size=16,
        target_ci=args.target_ci,
        noise=args.noise,
        n_bootstrap=args.n_bootstrap,
        **{
            "budgets.min_tokens_per_param": 2.0,
            "budgets.max_tokens_per_param": 2000.0,
            "budgets.min_steps": 20,
        },
    )


def placed_law(cfg, name: str):
    plan = make_plan(cfg)
    sizes = [s.n_params for s in model_specs(cfg)]
    n_mid = float(np.exp(np.mean(np.log(sizes))))
    c_mid = plan.slices[len(plan.slices) // 2]
    law, params = placed(name, n_mid, c_mid / (6.0 * n_mid))
    sim = {"law": law, "params": params, "noise": cfg.simulation.noise}
    return cfg.replace(simulation=cfg.simulation.replace(law=law, params=params)), plan, sim


def grid_runs(cfg, plan, sim: dict, seed: int):
    import pandas as pd

    rows = []
    for t in plan.trials:
        point = t.to_dict()
        rows.append(
            {
                "n_params": t.n_params,
                "n_tokens": t.n_tokens,
                "flops": t.flops,
                "budget": t.budget,
                "loss": simulated_loss(sim, point, seed),
            }
        )
    frame = pd.DataFrame(rows)
    return frame, fit_law(frame, grid="coarse", n_bootstrap=cfg.fit.n_bootstrap, seed=seed)


def one_sweep(job):
    args, design, name, seed = job
    started = time.perf_counter()
    cfg, plan, sim = placed_law(config(args, design), name)
    if design == "grid":
        frame, fit = grid_runs(cfg, plan, sim, seed)
    else:
        sweep = simulate_sweep(cfg, plan, seed=seed)
        frame, fit = sweep.ledger.frame(), sweep.fit
    compute = EXTRAPOLATION * max(plan.slices)
    truth = true_prediction(sim["law"], sim["params"], frame, compute)
    if name in EXACT:  # a and b of an exact law are its own constants
        truth.update({k: closed_form(sim["params"])[k] for k in ("a", "b")})
    factor = (fit.extras.get("ci_widening") or {}).get("factor", 1.0) if fit is not None else 1.0
    raw = fit.widened(1.0 / factor, "undone") if fit is not None else None
    prediction = (
        predict(
            frame,
            target_compute=compute,
            n_bootstrap=args.n_bootstrap,
            seed=seed,
            identified=fit.identified,
            identification_warnings=fit.warnings,
            resampling=args.resampling,
        )
        if fit is not None
        else None
    )
    cells = {}
    for q in QUANTITIES:
        if q.startswith("fit."):
            key = q[4:]
            value, ci, ci_raw = (
                (fit.derived.get(key), fit.ci.get(key), raw.ci.get(key)) if fit else (None,) * 3
            )
            cells[q] = score(value, ci, truth[key], False) + (inside(ci_raw, truth[key]),)
            continue
        value = None
        if prediction is not None:
            shown = {"N_opt": prediction.n_params, "loss": prediction.loss}
            value = shown.get(q, prediction.exponents.get(q))
        ci = prediction.ci.get(q) if prediction else None
        cells[q] = score(value, ci, truth[q], q in ("N_opt", "loss")) + (None,)
    return {
        "design": design,
        "law": name,
        "cells": cells,
        "trusted": bool(prediction and prediction.trusted),
        "identified": bool(fit and fit.identified),
        "trials": len(frame),
        "seconds": time.perf_counter() - started,
        "widening": factor,
    }


def inside(ci, truth) -> bool | None:
    return None if ci is None else bool(ci[0] <= truth <= ci[1])


def score(value, ci, truth, log: bool):
    """(truth inside, |error| / half-width), None where there is no interval."""
    if ci is None or value is None:
        return None, None
    f = np.log if log else (lambda v: v)
    half = 0.5 * (f(ci[1]) - f(ci[0]))
    return inside(ci, truth), float(abs(f(value) - f(truth)) / half) if half > 0 else None


def median_ratio(rows, q: str) -> float:
    values = [r["cells"][q][1] for r in rows if r["cells"][q][1] is not None]
    return float(np.median(values)) if values else float("nan")


def rate(values) -> str:
    values = [v for v in values if v is not None]
    return f"{np.mean(values):.0%}" if values else "-"


def report(results, design: str) -> None:
    rows = [r for r in results if r["design"] == design]
    trials, seconds = np.median([r["trials"] for r in rows]), np.median([r["seconds"] for r in rows])
    print(
        f"\n{design} design: {len(rows)} sweeps, median {trials:.0f} trials, median {seconds:.1f} s each "
        "(sweep and prediction)"
    )
    head = "".join(f"{q:>8}" for q in QUANTITIES) + "  |" + "".join(f"{q:>8}" for q in QUANTITIES)
    print(f"{'':<16}{'coverage of the 95% intervals':<48}  |{'median |error| / half-width':<48}")
    print(f"{'law':<12}{'n':>4}{head}{'fit raw':>9}{'untrust':>8}{'unident':>8}{'in|flag':>8}")
    groups = [(n, [n]) for n in LAWS] + [("exact", list(EXACT)), ("other", list(OTHER_FORMS))]
    for label, names in groups:
        sub = [r for r in rows if r["law"] in names]
        if not sub:
            continue
        cov = "".join(f"{rate(r['cells'][q][0] for r in sub):>8}" for q in QUANTITIES)
        ratios = "".join(f"{median_ratio(sub, q):>8.2f}" for q in QUANTITIES)
        raw = rate(r["cells"][q][2] for r in sub for q in ("fit.a", "fit.b"))
        # For a law of another form, the prediction is useful when it holds the truth or says not to trust it.
        held = rate(
            all(r["cells"][q][0] for q in ("a", "b", "N_opt", "loss")) or not r["trusted"] for r in sub
        )
        print(
            f"{label:<12}{len(sub):>4}{cov}  |{ratios}{raw:>9}{rate(not r['trusted'] for r in sub):>8}"
            f"{rate(not r['identified'] for r in sub):>8}{held:>8}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweeps-per-design", type=int, default=210)
    parser.add_argument("--designs", default="grid,adaptive")
    parser.add_argument("--target-ci", type=float, default=0.05)
    parser.add_argument("--budget", type=float, default=2e14)
    parser.add_argument("--noise", type=float, default=0.01)
    parser.add_argument("--n-bootstrap", type=int, default=30)
    parser.add_argument(
        "--resampling",
        choices=("case", "residual"),
        default="case",
        help="the prediction's bootstrap: resample runs (case) or residuals at the same runs",
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--laws", nargs="+", default=list(LAWS), help="a subset of benchmarks/truths.py's laws"
    )
    parser.add_argument("--out", help="append each sweep's row to this JSON-lines file as it ends")
    parser.add_argument("--report", help="print the tables of the rows in this JSON-lines file, run nothing")
    args = parser.parse_args()
    if args.report:
        with open(args.report) as rows:
            results = [json.loads(line) for line in rows]
        print(f"{len(results)} sweeps read from {args.report}")
        for design in dict.fromkeys(r["design"] for r in results):
            report(results, design)
        return
    per_law = -(-args.sweeps_per_design // len(args.laws))
    jobs = [
        (args, design, name, seed)
        for design in args.designs.split(",")
        for seed in range(per_law)
        for name in args.laws
    ]
    started = time.perf_counter()
    results = []
    with multiprocessing.get_context("spawn").Pool(args.workers) as pool:
        for row in pool.imap_unordered(one_sweep, jobs, chunksize=1):
            results.append(row)
            if args.out:
                with open(args.out, "a") as out:
                    out.write(json.dumps(row) + "\n")
    print(
        f"{len(results)} simulated sweeps (tiny dense_text ladder, budget {args.budget:g}, noise "
        f"{args.noise}, target CI half-width {args.target_ci}, {args.n_bootstrap} bootstrap resamples, "
        f"prediction at {EXTRAPOLATION:g}x the largest slice, {args.resampling} resampling) in "
        f"{time.perf_counter() - started:.0f} s"
    )
    print(
        "fit.a, fit.b: the Chinchilla fit's a and b as reported; a, b, N_opt, loss: the prediction at C*; "
        "fit raw: coverage of fit.a, fit.b before the stopping widening; untrust: prediction.trusted "
        "false; unident: fit not identified; in|flag: the prediction's a, b, N_opt and loss all inside, "
        "or it is untrusted"
    )
    for design in args.designs.split(","):
        report(results, design)


if __name__ == "__main__":
    main()
