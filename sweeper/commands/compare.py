"""`sweeper compare RUN_ID...`: the fits of several sweeps (parent runs) side by side."""

from __future__ import annotations

import json

from sweeper.commands.common import add_common_options
from sweeper.errors import SweeperInputError

SHOWN = ("E", "A", "B", "alpha", "beta", "a", "b", "d", "dn")


def register(sub) -> None:
    parser = sub.add_parser(
        "compare",
        help="print the fits of several sweeps side by side",
        description="Each RUN_ID is a sweep's parent run (see `sweeper status` or the MLflow UI).",
    )
    parser.add_argument("run_ids", nargs="+", metavar="RUN_ID")
    add_common_options(parser)
    parser.set_defaults(func=run)


def load_fits(client, run_ids) -> list[tuple[str, str, object]]:
    """(run id, column label, FitResult) for each parent run; a clear error for one without a fit."""
    from mlflow.exceptions import MlflowException

    from sweeper.report.sweep_report import load_fit_json

    out = []
    for run_id in run_ids:
        try:
            run = client.get_run(run_id)
        except MlflowException:
            raise SweeperInputError(
                "RUN_ID", run_id, "no such run in this tracking store; pass a sweep's parent run id"
            ) from None
        fit = load_fit_json(client, run_id)
        if fit is None:
            raise SweeperInputError(
                "RUN_ID", run_id, "this run has no fit.json: pass the parent run of a finished sweep"
            )
        label = (
            run.data.tags.get("sweeper.space", "") + ":" + run.data.tags.get("sweeper.sweep_id", run_id[:8])
        )
        out.append((run_id, label, fit))
    return out


def _cell(fit, name: str) -> str:
    from sweeper.report.sweep_report import format_ci_cell

    if name not in fit.params and name not in fit.derived:
        return "-"
    return format_ci_cell(fit.value(name), fit.ci.get(name), fit.trusted(name))


def format_side_by_side(fits: list[tuple[str, str, object]]) -> str:
    labels = [label for _, label, _ in fits]
    results = [f for _, _, f in fits]
    rows = [
        ("law", [f.law for f in results]),
        ("target", [f.target for f in results]),
        ("runs", [str(f.n_runs) for f in results]),
        ("identified", ["yes" if f.identified else "NO" for f in results]),
    ]
    names = [n for n in SHOWN if any(n in f.params or n in f.derived for f in results)]
    rows += [(n, [_cell(f, n) for f in results]) for n in names]
    width = max(28, *(len(x) for x in labels))
    lines = [f"{'':<8}" + "".join(f"{x:>{width + 2}}" for x in labels)]
    lines += [f"{name:<8}" + "".join(f"{v:>{width + 2}}" for v in values) for name, values in rows]
    return "\n".join(lines)


def downstream(client, run_id: str, uri: str) -> tuple[dict, object]:
    """A sweep's task predictions at its target, and its image-text vs text-only trade-off by slice."""
    from sweeper.report.sweep_report import load_task_predictions
    from sweeper.report.tasks import tradeoff_table
    from sweeper.tracking.run_table import RunTable

    run = client.get_run(run_id)
    experiment = client.get_experiment(run.info.experiment_id).name
    table = RunTable.from_mlflow(
        experiment=experiment, tracking_uri=uri, sweep_id=run.data.tags.get("sweeper.sweep_id")
    )
    return load_task_predictions(client, run_id), tradeoff_table(table.frame)


def format_downstream(label: str, tasks: dict, tradeoff) -> list[str]:
    from sweeper.report.summary import task_prediction_lines
    from sweeper.report.sweep_report import humanized

    lines = [f"\n{label}"]
    if tasks:
        lines += task_prediction_lines(tasks)
    if len(tradeoff):
        lines += [
            "image-text vs text-only tasks at each slice's compute-optimal run:",
            humanized(tradeoff).to_string(index=False),
        ]
    return lines if len(lines) > 1 else []


def run(args) -> int:
    from sweeper.config.schema import resolve_tracking_uri
    from sweeper.tracking.mlflow_runs import client_for

    uri = resolve_tracking_uri(args.tracking_uri)
    client = client_for(uri)
    fits = load_fits(client, args.run_ids)
    extra = {rid: downstream(client, rid, uri) for rid, _, _ in fits}
    if args.format == "json":
        out = [
            {
                "run_id": rid,
                "label": label,
                **fit.to_dict(),
                "task_predictions": {n: p.to_dict() for n, p in extra[rid][0].items()},
                "task_tradeoff": extra[rid][1].to_dict(orient="records"),
            }
            for rid, label, fit in fits
        ]
        print(json.dumps(out, indent=2, default=float))
    else:
        print(format_side_by_side(fits))
        for rid, label, _ in fits:
            lines = format_downstream(label, *extra[rid])
            if lines:
                print("\n".join(lines))
    return 0
