"""The plain-text summary `sweeper run` prints: runs per slice, the fitted law, where it is stored."""

from __future__ import annotations

import math

from sweeper.report.formatting import human


def format_runs(frame) -> list[str]:
    lines = [f"{'point':<36} {'N':>10} {'D':>12} {'C':>10} {'loss':>8} {'status':>9}"]
    for row in frame.sort_values(["budget", "n_params"]).itertuples():
        loss = f"{row.loss:.4f}" if isinstance(row.loss, float) and math.isfinite(row.loss) else "-"
        lines.append(
            f"{row.point_id:<36} {row.n_params:>10,.0f} {row.n_tokens:>12,.0f} "
            f"{human(row.flops, 3):>10} {loss:>8} "
            f"{row.status:>9}"
        )
    return lines


def format_fit(fit, why: str = "") -> list[str]:
    if fit is None:
        return [f"fit: none ({why})" if why else "fit: not enough finished runs to identify the law"]
    lines = [f"fit ({fit.law}, {fit.n_runs} runs, objective {fit.objective:.4g}):"]
    widening = fit.extras.get("ci_widening")
    if widening and fit.ci:
        lines.append(f"  (95% intervals widened {widening['factor']:g}x: {widening['why']})")
    for name, value in {**fit.params, **fit.derived}.items():
        if not fit.trusted(name):  # a number here would read as the answer
            lines.append(f"  {name:<10} {'not identified':>14}")
            continue
        shown = fit.ci_text(name)
        lines.append(f"  {name:<10} {value:>12.5g}" + (f"  {shown}" if shown else ""))
    return lines + fit.verdict_lines()


def ui_link(server: str, experiment_id: str) -> str:
    """The runs table of an experiment (workflowType: MLflow 3's model-training view, whatever the
    browser last used)."""
    return f"{server.rstrip('/')}/#/experiments/{experiment_id}/runs?workflowType=machine_learning"


def format_result(result) -> str:
    sources = sorted(set(result.runs.frame["source"]))
    lines = format_runs(result.runs.frame)
    lines.append("")
    lines += format_fit(result.fit, result.fit_error)
    if result.prediction is not None:
        lines += [""] + result.prediction.lines()
    elif result.prediction_error:
        lines += ["", f"prediction: none ({result.prediction_error})"]
    if result.task_predictions:
        lines += [""] + task_prediction_lines(result.task_predictions)
    lines.append("")
    lines.append(
        f"sweep {result.sweep_id}: {result.n_trials} trials ({', '.join(sources)}), "
        f"{human(result.total_flops, 3)} FLOPs; stop: {result.stop_reason}"
    )
    lines.append(f"MLflow: {result.tracking_uri} (parent run {result.parent_run_id})")
    if result.tracking_uri.startswith(("http://", "https://")):
        lines.append(f"MLflow UI: {ui_link(result.tracking_uri, result.experiment_id)}")
    return "\n".join(lines)


LAW_FORMS = {"chinchilla": "L = E + A/N^α + B/D^β"}
LINE_NAMES = ("E", "alpha", "beta", "a", "b")  # what a reader checks first (reference Table 2)
GREEK = {"alpha": "α", "beta": "β"}


def task_prediction_lines(tasks: dict) -> list[str]:
    """One line per downstream task: the two-step accuracy at the target, its interval, or why none."""
    lines = ["downstream tasks (two-step: task loss from N and D, then accuracy as a sigmoid of it):"]
    for name, p in sorted(tasks.items()):
        d = p.to_dict()
        why = "; ".join(d.get("warnings", []))
        if d.get("accuracy") is None:
            lines.append(f"  {name:<16} no prediction: {why}")
            continue
        if not d["trusted"]:  # as a fit table does: the value the fitter found is in the JSON, not an answer
            lines.append(f"  {name:<16} not trusted: {why}")
            continue
        ci = d["ci"]["accuracy"]
        where = (
            f"at C={human(d['compute'], 3)}"
            if d.get("compute")
            else f"at N={human(d['N'], 3)}, D={human(d['D'], 3)}"
        )
        lines.append(f"  {name:<16} accuracy {d['accuracy']:.3f} [{ci[0]:.3f}, {ci[1]:.3f}] {where}")
    return lines


def law_line(fit) -> str:
    """The fitted law in one line: its form, the headline values with their CIs, or why there is none."""
    from sweeper.report.formatting import human_ci

    if fit is None:
        return "no fit: not enough finished runs to identify the law"
    form = LAW_FORMS.get(fit.law, fit.law)
    values = {**fit.params, **fit.derived}
    identified = getattr(fit, "identified", True)
    if not identified:  # no number: these would read as an answer
        reasons = "; ".join(getattr(fit, "warnings", ()) or ())
        return f"{form}: not identified ({fit.n_runs} runs)" + (f": {reasons}" if reasons else "")
    names = [n for n in LINE_NAMES if n in values] or list(fit.params)[:5]
    shown = ", ".join(f"{GREEK.get(n, n)} = " + human_ci(values[n], fit.ci.get(n)) for n in names)
    return f"{form}: {shown} ({fit.n_runs} runs)"


def sweep_description(
    *,
    space: str,
    design: str,
    trainable: str,
    budget: float,
    kind: str,
    target: str,
    stop_reason: str | None = None,
    fit=None,
    n_trials: int | None = None,
    flops: float | None = None,
    prediction=None,
) -> str:
    """The parent run's description in the MLflow UI (markdown): what was swept, why it stopped, the law."""
    from sweeper.report.formatting import human

    lines = [
        f"**Sweep of `{space}`**: {design} isoFLOP design, {trainable} trials of "
        f"{kind}, budget {human(budget)} FLOPs, fitted to `{target}`."
    ]
    if stop_reason is None:
        lines.append("Running: trial runs appear below this run as they finish.")
        return "\n\n".join(lines)
    spent = f"{n_trials} trials, {human(flops)} FLOPs spent; " if n_trials is not None else ""
    lines.append(f"{spent}stopped: {stop_reason}.")
    lines.append(f"Fitted law: {law_line(fit)}")
    if prediction is not None:
        head, *rest = prediction.lines()
        lines.append(f"{head[0].upper()}{head[1:]}: " + "; ".join(line.strip() for line in rest))
    return "\n\n".join(lines)
