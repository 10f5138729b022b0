"""The plain-text summary `sweeper run` prints: runs per slice, the fitted law, where it is stored."""

from __future__ import annotations

import math


def format_runs(frame) -> list[str]:
    lines = [f"{'point':<36} {'N':>10} {'D':>12} {'C':>10} {'loss':>8} {'status':>9}"]
    for row in frame.sort_values(["budget", "n_params"]).itertuples():
        loss = f"{row.loss:.4f}" if isinstance(row.loss, float) and math.isfinite(row.loss) else "-"
        lines.append(f"{row.point_id:<36} {row.n_params:>10,.0f} {row.n_tokens:>12,.0f} {row.flops:>10.3g} {loss:>8} {row.status:>9}")
    return lines


def format_fit(fit) -> list[str]:
    if fit is None:
        return ["fit: not enough finished runs to identify the law"]
    lines = [f"fit ({fit.law}, {fit.n_runs} runs, objective {fit.objective:.4g}):"]
    for name, value in {**fit.params, **fit.derived}.items():
        shown = fit.ci_text(name)
        lines.append(f"  {name:<10} {value:>12.5g}" + (f"  {shown}" if shown else ""))
    return lines + fit.verdict_lines()


def format_result(result) -> str:
    sources = sorted(set(result.runs.frame["source"]))
    lines = format_runs(result.runs.frame)
    lines.append("")
    lines += format_fit(result.fit)
    lines.append("")
    lines.append(f"sweep {result.sweep_id}: {result.n_trials} trials ({', '.join(sources)}), "
                 f"{result.total_flops:.3g} FLOPs; stop: {result.stop_reason}")
    lines.append(f"MLflow: {result.tracking_uri} (parent run {result.parent_run_id})")
    return "\n".join(lines)
