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
        help="loss target: average (default), caption, interleaved, text, bpb (bits per byte, "
        "comparable across tokenizers; bpb_text etc. per target), a column, or a value of the CSV's "
        "target column",
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
    p.add_argument(
        "--accuracy-column",
        default=None,
        metavar="COL",
        help="a downstream task's accuracy column: the table's loss is that task's loss, and the "
        "prediction adds the two-step accuracy (task loss from (N, D), then accuracy as a sigmoid of it)",
    )
    add_common_options(p)
    p.set_defaults(func=run_fit)


def _load(args) -> tuple:
    from sweeper.fit.csv_input import read_runs_csv

    if args.experiment and args.file:
        raise SweeperInputError("FILE", args.file, "give a CSV file or --experiment, not both")
    if args.experiment:
        from sweeper.config.schema import resolve_tracking_uri
        from sweeper.tracking.run_table import load_run_table

        uri = resolve_tracking_uri(args.tracking_uri)  # the store `sweeper run` wrote, as `report` reads it
        table = load_run_table(experiment=args.experiment, tracking_uri=uri)
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
    task = task_prediction(args, frame) if args.accuracy_column else None
    if args.format == "json":
        out = result.to_dict()
        if prediction is not None or task is not None:
            out["prediction"] = with_accuracy(prediction.to_dict() if prediction else {}, task)
        print(json.dumps(out, indent=2, default=float))
    else:
        print(format_table(result))
        if prediction is not None:
            print("\n".join(prediction.lines()))
        if task is not None:
            print("\n".join(task_lines(args.accuracy_column, task)))
    return 0


def task_prediction(args, frame):
    """The two-step accuracy prediction at the command's target (10x the largest slice without one)."""
    from sweeper.fit.two_step import fit_two_step

    column = args.accuracy_column
    if column not in frame.columns:
        raise SweeperInputError(
            "--accuracy-column",
            column,
            f"the table has columns {list(frame.columns)}; name its accuracy column",
        )
    if args.target_n is not None and args.target_d is not None:
        target = {"n": args.target_n, "d": args.target_d}
    else:
        target = {"compute": args.target_compute} if args.target_compute else None
    # from MLflow a task's loss sits beside its accuracy (task.<name>.loss); a CSV's loss column is it
    loss_column = column.removesuffix(".accuracy") + ".loss" if column.startswith("task.") else "loss"
    return fit_two_step(
        frame, column, target, loss_column=loss_column, seed=args.seed, n_boot=args.bootstrap or 200
    )


def with_accuracy(block: dict, task) -> dict:
    """The prediction block with the task's accuracy, its interval and the two steps behind it."""
    if task is None:
        return block
    out = {**block, "accuracy": task.accuracy, "task": task.to_dict()}
    out["ci"] = {**block.get("ci", {}), "accuracy": task.to_dict()["ci"]["accuracy"]}
    for key in ("compute", "loss"):  # without a prediction block of its own: the task's target and loss
        out.setdefault(key, task.to_dict()[key])
    out.setdefault("trusted", task.trusted)
    out["trusted"] = bool(out["trusted"]) and task.trusted
    out["warnings"] = list(block.get("warnings", [])) + list(task.warnings)
    return out


def task_lines(column: str, task) -> list[str]:
    d = task.to_dict()
    where = f"C={d['compute']:.3g}" if d.get("compute") else f"N={d['N']:.3g}, D={d['D']:.3g}"
    ci = d["ci"]["accuracy"]
    interval = f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else " (no interval)"
    acc = "n/a" if d["accuracy"] is None else f"{d['accuracy']:.3f}"
    return [f"{column} at {where}: {acc}{interval} (two-step: task loss, then a sigmoid)"] + [
        f"  warning: {w}" for w in d["warnings"]
    ]


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
