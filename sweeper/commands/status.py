"""`sweeper status [--experiment NAME]`: trials done / running / failed, compute against budget,
current CIs and the compute still needed to converge, read from MLflow."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pandas as pd

from sweeper.commands.common import add_common_options
from sweeper.errors import SweeperInputError


def register(sub) -> None:
    parser = sub.add_parser(
        "status", help="progress of a sweep: trials, compute spent / budget, current CIs, compute to converge"
    )
    parser.add_argument(
        "--experiment",
        default=None,
        help="MLflow experiment (default: sweeper-tiny, or every sweeper experiment with --all)",
    )
    parser.add_argument("--sweep-id", default=None, help="the sweep to show (default: the latest)")
    add_common_options(parser)
    parser.set_defaults(func=run)


def estimate_compute_to_converge(history: pd.DataFrame, target_ci: float, *, recent: int = 6) -> float:
    """Extra FLOPs until every watched half-width reaches target_ci; 0 if already there, nan if unknown.

    Half-widths are extrapolated as a power of compute fitted over the last
    refits; when that slope is not clearly negative, the 1/sqrt(runs) rule of
    independent runs (slope -1/2 in compute at a fixed spend per run) is used.
    """
    columns = [c for c in history.columns if c.startswith("ci_halfwidth.")]
    if not len(history) or not columns or not target_ci > 0:
        return math.nan
    now = float(history["flops_spent"].iloc[-1])
    needed = now
    for col in columns:
        part = history[["flops_spent", col]].replace([np.inf, -np.inf], np.nan).dropna().tail(recent)
        part = part[(part[col] > 0) & (part["flops_spent"] > 0)]
        if part.empty:
            return math.nan
        width = float(part[col].iloc[-1])
        if width <= target_ci:
            continue
        slope = -0.5
        if len(part) >= 3:
            fitted = np.polyfit(np.log(part["flops_spent"]), np.log(part[col]), 1)[0]
            slope = fitted if fitted < -0.1 else slope
        needed = max(needed, now * (width / target_ci) ** (-1.0 / slope))
    return needed - now


def sweep_status(client, experiment_id: str, parent) -> dict:
    from sweeper.report.sweep_report import refit_history_from_mlflow
    from sweeper.tracking.mlflow_runs import FINISHED

    params, tags = parent.data.params, parent.data.tags
    sweep_id = tags.get("sweeper.sweep_id", "")
    trials = client.search_runs(
        [experiment_id],
        f"tags.`sweeper.role` = 'trial' and tags.`sweeper.sweep_id` = '{sweep_id}'",
        max_results=50000,
    )
    statuses = pd.Series([t.data.tags.get("sweeper.status", "") for t in trials], dtype=str)
    spent = float(
        sum(
            t.data.metrics.get("flops_spent", t.data.metrics.get("flops", 0.0))
            for t in trials
            if t.data.tags.get("sweeper.status") in FINISHED
        )
    )
    history = refit_history_from_mlflow(client, parent.info.run_id)
    target_ci = float(params.get("fit.target_ci", "nan"))
    watch = json.loads(params.get("fit.watch", "[]"))
    metrics = parent.data.metrics
    current = {
        name: {
            "value": metrics.get(f"refit.{name}", math.nan),
            "ci_halfwidth": metrics.get(f"refit.ci_halfwidth.{name}", math.nan),
        }
        for name in watch
    }
    planned = _planned_count(client, parent.info.run_id) if tags.get("sweeper.design") == "grid" else None
    done = int(statuses.isin(FINISHED).sum())
    return {
        "experiment_id": experiment_id,
        "sweep_id": sweep_id,
        "parent_run_id": parent.info.run_id,
        "run_status": parent.info.status,
        "space": tags.get("sweeper.space", ""),
        "design": tags.get("sweeper.design", ""),
        "source": tags.get("source", ""),
        "planned": planned,
        "done": done,
        "ok": int((statuses == "ok").sum()),
        "diverged": int((statuses == "diverged").sum()),
        "running": int((statuses == "running").sum()),
        "failed": int((statuses == "failed").sum()),
        "pending": None if planned is None else max(planned - len(trials), 0),
        "flops_spent": spent,
        "budget": float(params.get("budget", "nan")),
        "target_ci": target_ci,
        "current": current,
        "n_refits": len(history),
        "compute_to_converge": estimate_compute_to_converge(history, target_ci),
        "stop_reason": tags.get("sweeper.stop_reason", ""),
    }


def _planned_count(client, run_id: str) -> int | None:
    from sweeper.tracking.mlflow_runs import load_json_artifact

    plan = load_json_artifact(client, run_id, "plan.json")
    return None if plan is None else len(plan["trials"])


def format_status(s: dict) -> str:
    lines = [
        f"sweep {s['sweep_id']} ({s['space']}, {s['design']} design, {s['source']}): "
        f"MLflow run {s['parent_run_id']} {s['run_status']}"
    ]
    planned = f" of {s['planned']} planned" if s["planned"] is not None else ""
    pending = f", {s['pending']} not started" if s["pending"] else ""
    lines.append(
        f"trials: {s['done']} done{planned} ({s['ok']} ok, {s['diverged']} diverged), "
        f"{s['running']} running, {s['failed']} failed{pending}"
    )
    share = 100.0 * s["flops_spent"] / s["budget"] if s["budget"] > 0 else math.nan
    lines.append(f"compute: {s['flops_spent']:.4g} of {s['budget']:.4g} FLOPs ({share:.1f}%)")
    if s["n_refits"]:
        shown = ", ".join(
            f"{k} = {v['value']:.4f} ± {v['ci_halfwidth']:.4f}" for k, v in s["current"].items()
        )
        lines.append(f"current fit (refit {s['n_refits']}): {shown}; target ± {s['target_ci']:g}")
        extra = s["compute_to_converge"]
        if extra == 0:
            lines.append("converged: every watched CI half-width is within the target")
        elif math.isfinite(extra):
            lines.append(
                f"estimated compute to converge: {extra:.3g} more FLOPs "
                f"({(s['flops_spent'] + extra) / s['budget']:.2g}x the budget in all)"
            )
    else:
        lines.append("no online refit yet (needs enough finished runs to identify the law)")
    if s["stop_reason"]:
        lines.append(f"stopped: {s['stop_reason']}")
    return "\n".join(lines)


def run(args) -> int:
    from sweeper.report.sweep_report import open_experiment
    from sweeper.tracking.mlflow_runs import find_sweep_run

    experiment = args.experiment or os.environ.get("SWEEPER_EXPERIMENT") or "sweeper-tiny"
    client, experiment_id, _ = open_experiment(args.tracking_uri, experiment)
    parent = find_sweep_run(client, experiment_id, args.sweep_id)
    if parent is None:
        raise SweeperInputError(
            "--sweep-id" if args.sweep_id else "--experiment",
            args.sweep_id or experiment,
            "no sweep found in it",
        )
    status = sweep_status(client, experiment_id, parent)
    print(json.dumps(status, indent=2, default=float) if args.format == "json" else format_status(status))
    return 0
