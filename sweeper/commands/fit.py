"""`sweeper fit FILE.csv | --experiment NAME`: fit a scaling law to existing runs."""

from __future__ import annotations

import json

import numpy as np

from sweeper.commands.common import add_common_options
from sweeper.errors import SweeperInputError


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "fit",
        help="fit a scaling law to a table of runs (CSV or an MLflow experiment)",
        description="Fit L(N, D) by summed-Huber L-BFGS over a grid of starts (reference "
        "Approach 3), with bootstrap confidence intervals.",
    )
    p.add_argument(
        "file",
        nargs="?",
        help="CSV with columns N, D, loss (also n_params/params, n_tokens/tokens; optional flops, target)",
    )
    p.add_argument("--experiment", help="read successful runs of this MLflow experiment instead")
    p.add_argument("--law", default="chinchilla", help="registered law (default: chinchilla)")
    p.add_argument(
        "--target",
        default=None,
        help="loss target: average (default), caption, "
        "interleaved, text, or a value of the CSV's target column",
    )
    p.add_argument(
        "--bootstrap",
        type=int,
        default=0,
        metavar="K",
        help="bootstrap resamples over runs for confidence intervals (e.g. 100)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--grid",
        choices=("paper", "coarse"),
        default="paper",
        help="starts: the paper's 8,820 or a 243-point grid for quick refits",
    )
    p.add_argument(
        "--target-compute",
        type=float,
        default=None,
        metavar="C",
        help="predict the compute-optimal N_opt, D_opt and loss at C FLOPs, with intervals that "
        "carry the law forms' disagreement and a backtest (the `prediction` block)",
    )
    p.add_argument(
        "--target-n",
        type=float,
        default=None,
        metavar="N",
        help="with --target-d: predict the loss of a model of N parameters trained on D tokens",
    )
    p.add_argument("--target-d", type=float, default=None, metavar="D")
    add_common_options(p)
    p.set_defaults(func=run_fit)


def _load(args) -> tuple:
    from sweeper.fit.csv_input import read_runs_csv

    if args.experiment and args.file:
        raise SweeperInputError("FILE", args.file, "give a CSV file or --experiment, not both")
    if args.experiment:
        from sweeper.tracking.run_table import load_run_table

        table = load_run_table(experiment=args.experiment, tracking_uri=args.tracking_uri)
        return table.ok().frame, args.target or "average"  # failed, diverged and stopped runs stay out
    if not args.file:
        raise SweeperInputError("FILE", None, "pass a CSV file of runs or --experiment NAME")
    frame = read_runs_csv(args.file)
    if "target" not in frame:
        return frame, args.target or "average"
    # Long format: one row per (run, target); keep the requested target's rows.
    values = sorted(frame["target"].dropna().astype(str).unique())
    wanted = args.target or (
        "average"
        if "average" in values
        else "avg"
        if "avg" in values
        else values[0]
        if len(values) == 1
        else None
    )
    if wanted not in values:
        raise SweeperInputError(
            "--target", args.target, f"the CSV has targets {values}; pick one with --target"
        )
    return frame[frame["target"].astype(str) == wanted], "average"


def run_fit(args) -> int:
    from sweeper.fit import fit_law

    if args.bootstrap < 0:
        raise SweeperInputError("--bootstrap", args.bootstrap, "use 0 or a positive count")
    for flag in ("target_compute", "target_n", "target_d"):
        value = getattr(args, flag)
        if value is not None and not value > 0:
            raise SweeperInputError("--" + flag.replace("_", "-"), value, "give a positive number, e.g. 1e23")
    frame, target = _load(args)
    result = fit_law(
        frame,
        law=args.law,
        target=target,
        grid=args.grid,
        n_bootstrap=args.bootstrap,
        seed=args.seed,
        target_compute=args.target_compute,
    )
    prediction = None
    if args.target_compute is not None or args.target_n is not None or args.target_d is not None:
        from sweeper.fit.prediction import predict

        prediction = predict(
            frame,
            target_compute=args.target_compute,
            target_n=args.target_n,
            target_d=args.target_d,
            target=target,
            n_bootstrap=args.bootstrap or 100,
            seed=args.seed,
            identified=result.identified,
            identification_warnings=result.warnings,
        )
    if args.format == "json":
        out = result.to_dict()
        if prediction is not None:
            out["prediction"] = prediction.to_dict()
        print(json.dumps(out, indent=2, default=float))
    else:
        print(format_table(result))
        if prediction is not None:
            print("\n".join(prediction.lines()))
    return 0


def format_table(result) -> str:
    lines = [
        f"law {result.law}  target {result.target}  runs {result.n_runs}  objective {result.objective:.6g}"
    ]
    level = f"{100 * result.ci_level:g}% CI" if result.n_bootstrap else ""
    lines.append(f"{'name':<16}{'value':>14}{'std':>12}   {level}")
    rows = list(result.params.items()) + [
        (k, v) for k, v in result.derived.items() if not k.endswith("_regression")
    ]
    for name, value in rows:
        if not result.trusted(name):  # the optimiser's value is in --format json, not shown as an answer
            lines.append(f"{name:<16}{'not identified':>14}")
            continue
        std = result.std.get(name)
        std_s = f"{std:12.4g}" if std is not None and np.isfinite(std) else " " * 12
        lines.append(f"{name:<16}{value:14.6g}{std_s}   {result.ci_text(name)}")
    return "\n".join(lines + result.verdict_lines())
