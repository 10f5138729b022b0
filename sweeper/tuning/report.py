"""The text `sweeper tune` prints: per-rung optima and near-optimal regions, the laws, the cost."""

from __future__ import annotations

from sweeper.tuning.laws import format_law


def format_tune_result(result) -> str:
    lines = [
        f"{'rung':<36} {'N':>9} {'C':>9} {'trials':>6} {'stopped':>7} {'best loss':>9}  "
        "best (near-optimal range)"
    ]
    for r in result.rungs:
        shown = "; ".join(
            f"{k}={v:.3g} ({r.near[k][0]:.3g}..{r.near[k][1]:.3g})"
            for k, v in r.best.items()
            if (k in result.tuned or k.replace(".", "_") in result.tuned) and k in r.near
        )
        lines.append(
            f"{r.point['point_id']:<36} {r.point['n_params']:>9,d} {r.point['budget']:>9.3g} {r.n_trials:>6} "
            f"{r.n_stopped:>7} {r.best_loss:>9.4f}  {shown}"
        )
    for fit in result.laws.values():
        lines.append(format_law(fit))
    for name, why in result.law_errors.items():
        lines.append(f"{name}: no law ({why})")
    ratio = (
        result.flops_spent / result.flops_without_stopping if result.flops_without_stopping else float("nan")
    )
    lines.append(
        f"spent {result.flops_spent:.3g} FLOPs, {ratio:.2f} of the {result.flops_without_stopping:.3g} "
        "the same trials would cost without early stopping"
    )
    lines.append(
        f"use it: training: {{recipe: fitted, recipe_run: {result.job_run_id}}}  "
        f"(MLflow {result.tracking_uri})"
    )
    return "\n".join(lines)
