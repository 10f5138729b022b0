"""The sweep report: fits per kind and target, plots, an HTML page and a markdown summary.

Everything here reads what MLflow holds (the RunTable of child runs, the
parent's fit.json and its refit.* metric histories), so a report can be made
for any finished or running sweep, by anyone with access to the tracking store.

    report = build_report(table, fit=fit, history=history, meta={...})
    report.write("report/")                      # report.html, report.md, plots/*.png
    log_report_artifacts(client, parent_run_id, table, fit, history)  # the same, on the parent run
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from sweeper.errors import SweeperInputError
from sweeper.fit.csv_input import TARGET_COLUMNS
from sweeper.fit.profile import PINS
from sweeper.report.formatting import human, human_ci, humanize_text
from sweeper.report.glossary import glossary_html, glossary_markdown
from sweeper.report.tasks import predictions_table, task_figure, task_names, tradeoff_table
from sweeper.tracking.run_table import RunTable

TABLE_COLUMNS = ("E", "alpha", "beta", "a", "b", "c", "d")  # reference Table 2
GREEK = {"alpha": "α", "beta": "β"}
TRADEOFF_NOTE = (
    "Each slice's compute-optimal run (lowest validation loss): the mean accuracy of its image-text tasks "
    "and of its text-only tasks, and their ratio; does the gap close as the models grow?"
)
FIGURE_TITLES = {
    "isoflop": "isoFLOP curves with fitted parabolas and their minima",
    "optimal_allocation": "N_opt(C) and D_opt(C): each slice's optimum with its 95% interval, "
    "Approaches 2 and 3 "
    "with bootstrap bands, extrapolated to the target compute where one is set",
    "envelope": "loss envelope L(C)",
    "law_contours": "fitted law's contours with the runs",
    "ci_convergence": "CI half-width against compute",
    "residuals": "residuals of the parametric fit",
    "tasks": "downstream tasks: step 1 (task loss against C), step 2 (accuracy against task loss, the "
    "fitted sigmoid) and the chained prediction at the target (star, with its 95% interval)",
}


@dataclass
class KindTargetFits:
    """Approaches 3 (parametric), 2 (isoFLOP) and 1 (envelope) for one model kind and loss target."""

    kind: str
    target: str
    parametric: object = None
    isoflop: object = None
    envelope: object = None
    errors: dict[str, str] = field(default_factory=dict)

    def value(self, name: str):
        """(value, CI or None, identified) of a Table 2 column: c from the envelope, the rest from
        Approach 3."""
        fit = self.envelope if name == "c" else self.parametric
        if fit is None or (name not in fit.params and name not in fit.derived):
            return None, None, True
        return fit.value(name), fit.ci.get(name), fit.trusted(name)


def _quietly(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # polyfit conditioning warnings on tiny slices
        return fn(*args, **kwargs)


def targets_in(frame: pd.DataFrame) -> list[str]:
    """Loss targets with a finite value for every run: 'average' first, then per modality."""
    order = ["average", "caption", "interleaved", "text"]
    return [
        t
        for t in order
        if TARGET_COLUMNS[t] in frame and np.isfinite(frame[TARGET_COLUMNS[t]].astype(float)).all()
    ]


def fit_kind_target(
    frame: pd.DataFrame,
    kind: str,
    target: str,
    *,
    law: str = "chinchilla",
    n_bootstrap: int = 0,
    seed: int = 0,
    parametric=None,
) -> KindTargetFits:
    """All three approaches on one slice of the table; a method that cannot fit says why."""
    from sweeper.fit import envelope_fit, fit_law, isoflop_fit

    out = KindTargetFits(kind=kind, target=target, parametric=parametric)
    jobs = {
        "isoflop": lambda: isoflop_fit(frame, target=target, n_bootstrap=max(n_bootstrap, 50), seed=seed),
        "envelope": lambda: envelope_fit(frame, target=target, n_bootstrap=max(n_bootstrap, 50), seed=seed),
    }
    if parametric is None:
        jobs["parametric"] = lambda: fit_law(
            frame, law=law, target=target, n_bootstrap=n_bootstrap, seed=seed
        )
    for name, job in jobs.items():
        try:
            setattr(out, name, _quietly(job))
        except (SweeperInputError, ValueError, np.linalg.LinAlgError) as exc:
            out.errors[name] = str(exc)
    return out


def compute_fits(
    table: RunTable, *, fit=None, law: str = "chinchilla", n_bootstrap: int = 0, seed: int = 0
) -> list[KindTargetFits]:
    """Fits per (kind, target) over the ok runs; `fit` (the sweep's own) is reused where it applies."""
    ok = table.ok().frame
    out = []
    for kind, frame in ok.groupby("model_kind", sort=True):
        for target in targets_in(frame):
            reuse = None
            if (
                fit is not None
                and ok["model_kind"].nunique() == 1
                and TARGET_COLUMNS.get(fit.target, fit.target) == TARGET_COLUMNS[target]
            ):
                reuse = fit
            out.append(
                fit_kind_target(
                    frame, str(kind), target, law=law, n_bootstrap=n_bootstrap, seed=seed, parametric=reuse
                )
            )
    return out


def refit_history_frame(refits) -> pd.DataFrame:
    """ledger.SweepLedger.refits (in memory) as the frame the convergence plot takes."""
    rows = [
        {
            "step": i + 1,
            "flops_spent": r.flops_spent,
            "n_runs": r.n_runs,
            **{f"ci_halfwidth.{k}": v for k, v in r.halfwidths.items()},
        }
        for i, r in enumerate(refits)
    ]
    return pd.DataFrame(
        rows,
        columns=["step", "flops_spent", "n_runs"]
        + sorted({k for r in rows for k in r} - {"step", "flops_spent", "n_runs"}),
    )


def refit_history_from_mlflow(client, parent_run_id: str) -> pd.DataFrame:
    """The parent's refit.* metric histories, one row per refit step (as the MLflow UI charts them)."""
    run = client.get_run(parent_run_id)
    keys = ["refit.flops_spent", "refit.n_runs"] + sorted(
        k for k in run.data.metrics if k.startswith("refit.ci_halfwidth.")
    )
    if "refit.flops_spent" not in run.data.metrics:
        return pd.DataFrame(columns=["step", "flops_spent", "n_runs"])
    columns = {}
    for key in keys:
        history = sorted(client.get_metric_history(parent_run_id, key), key=lambda m: (m.step, m.timestamp))
        columns[key.removeprefix("refit.")] = pd.Series({m.step: m.value for m in history}, dtype=float)
    frame = pd.DataFrame(columns).rename_axis("step").reset_index()
    return frame.sort_values("flops_spent").reset_index(drop=True)


def make_figures(
    frame: pd.DataFrame,
    fits: KindTargetFits,
    history: pd.DataFrame | None = None,
    *,
    target_ci: float | None = None,
    seed: int = 0,
    target_compute: float | None = None,
) -> dict:
    """name -> matplotlib Figure for one kind and target; figures whose fit failed are left out."""
    from sweeper.report import plots

    column = TARGET_COLUMNS[fits.target]
    figures = {"isoflop": _quietly(plots.plot_isoflop, frame, column=column)}
    if fits.parametric is not None or fits.isoflop is not None:
        figures["optimal_allocation"] = _quietly(
            plots.plot_optimal_allocation,
            frame,
            parametric=fits.parametric,
            isoflop=fits.isoflop,
            column=column,
            seed=seed,
            target_compute=target_compute,
        )
    if fits.envelope is not None:
        figures["envelope"] = plots.plot_envelope(frame, fits.envelope, column=column)
    if fits.parametric is not None:
        figures["law_contours"] = plots.plot_law_contours(frame, fits.parametric, column=column)
    if history is not None and len(history):
        figures["ci_convergence"] = plots.plot_ci_convergence(history, target_ci=target_ci)
    if fits.parametric is not None:
        figures["residuals"] = plots.plot_residuals(frame, fits.parametric, column=column)
    return figures


def png_bytes(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    return buffer.getvalue()


def format_ci_cell(value, ci, identified: bool = True) -> str:
    """`value [lo, hi]` (4 significant digits, 2e14 not 2e+14), '-' where there is no finite value,
    and 'not identified' instead of an interval for a fit that cannot pin its parameters down."""
    if value is None or not math.isfinite(value):
        return "-"
    return human_ci(value, ci) if identified else "not identified"


def fits_table(fits: list[KindTargetFits]) -> pd.DataFrame:
    """Reference Table 2: one row per kind and target, value [95% CI] per column."""
    rows = []
    for f in fits:
        row = {"kind": f.kind, "target": f.target, "runs": f.parametric.n_runs if f.parametric else 0}
        row.update({GREEK.get(n, n): format_ci_cell(*f.value(n)) for n in TABLE_COLUMNS})
        rows.append(row)
    return pd.DataFrame(rows, columns=["kind", "target", "runs"] + [GREEK.get(n, n) for n in TABLE_COLUMNS])


def approaches_table(fits: list[KindTargetFits]) -> pd.DataFrame:
    """a and b from Approach 3 and Approach 2 side by side, flagged where the intervals do not overlap."""
    from sweeper.fit import compare_approaches

    rows = []
    for f in fits:
        if f.parametric is None or f.isoflop is None:
            continue
        for name, c in compare_approaches(f.parametric, f.isoflop).items():
            rows.append(
                {
                    "kind": f.kind,
                    "target": f.target,
                    "exponent": name,
                    "approach 3": format_ci_cell(c["approach3"], c["ci3"], f.parametric.trusted(name)),
                    "approach 2": format_ci_cell(c["approach2"], c["ci2"], f.isoflop.trusted(name)),
                    "agree": {None: "-", True: "no", False: "yes"}[c["disagree"]],
                }
            )
    return pd.DataFrame(rows, columns=["kind", "target", "exponent", "approach 3", "approach 2", "agree"])


@dataclass
class Report:
    title: str
    meta: dict
    fits: list[KindTargetFits]
    figures: dict  # name -> Figure (for the first kind, average target)
    runs: pd.DataFrame
    runs_all: pd.DataFrame = field(default_factory=pd.DataFrame)  # every column, task metrics included
    prediction: object = None  # sweeper.fit.prediction.Prediction of the sweep, when it made one
    tasks: dict = field(default_factory=dict)  # task name -> fit.two_step.TaskPrediction at the target
    _png: dict = field(default_factory=dict, repr=False)

    def png(self, name: str) -> bytes:
        """The figure as PNG, rendered once: a second render of a constrained layout can shift by a pixel."""
        if name not in self._png:
            self._png[name] = png_bytes(self.figures[name])
        return self._png[name]

    @property
    def table(self) -> pd.DataFrame:
        return fits_table(self.fits)

    def markdown(self, image_dir: str = "plots") -> str:
        lines = (
            [f"# {self.title}", ""]
            + [f"- **{k}**: {humanize_text(str(v))}" for k, v in self.meta.items()]
            + [""]
        )
        if self.prediction is not None:
            lines += [
                "## Prediction",
                "",
                "```",
                *self.prediction.lines(),
                "```",
                "",
                _markdown_table(prediction_forms_table(self.prediction)),
                "",
            ]
        lines += ["## Fits per kind and target (95% bootstrap CI)", "", _markdown_table(self.table), ""]
        approaches = approaches_table(self.fits)
        if len(approaches):
            lines += [
                "## Approach 3 (parametric) vs Approach 2 (isoFLOP parabolas)",
                "",
                _markdown_table(approaches),
                "",
            ]
        lines += self._tasks_markdown()
        for name, reason in ((f"{f.kind}/{f.target}/{m}", e) for f in self.fits for m, e in f.errors.items()):
            lines.append(f"- could not fit {name}: {reason}")
        lines += ["", "## Plots", ""] + [
            f"![{FIGURE_TITLES.get(n, n)}]({image_dir}/{n}.png)" for n in self.figures
        ]
        lines += [""] + glossary_markdown()
        return "\n".join(lines) + "\n"

    def html(self) -> str:
        meta = "".join(
            f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(humanize_text(str(v)))}</td></tr>"
            for k, v in self.meta.items()
        )
        images = "".join(
            f'<figure><img alt="{n}" src="data:image/png;base64,{base64.b64encode(self.png(n)).decode()}">'
            f"<figcaption>{html.escape(FIGURE_TITLES.get(n, n))}</figcaption></figure>"
            for n in self.figures
        )
        approaches = approaches_table(self.fits)
        parts = [f"<h1>{html.escape(self.title)}</h1>", f"<table class=meta>{meta}</table>"]
        if self.prediction is not None:
            parts += [
                "<h2>Prediction</h2><p>What to train at the target and the loss to expect; the "
                "interval carries the noise, the law forms' disagreement (each weighed by its fit "
                "and a backtest on the top slices) and what that backtest missed.</p>",
                f"<pre>{html.escape(chr(10).join(self.prediction.lines()))}</pre>",
                prediction_forms_table(self.prediction).to_html(index=False, border=0, classes="fits"),
            ]
        parts += [
            "<h2>Fits per kind and target</h2><p>value [95% bootstrap CI]; c from the loss envelope, "
            "the rest from the parametric fit (Approach 3).</p>",
            f"<div class=wide>{self.table.to_html(index=False, border=0, classes='fits')}</div>",
        ]
        if len(approaches):
            parts += [
                "<h2>Approach 3 vs Approach 2</h2><p>Approach 2 is biased where the isoFLOP curves are "
                "asymmetric in log N; 'agree: no' marks intervals that do not overlap ('-': one approach "
                "has no interval to compare).</p>",
                approaches.to_html(index=False, border=0, classes="fits"),
            ]
        parts += self._tasks_html()
        errors = [
            f"<li>{html.escape(f'{f.kind}/{f.target}/{m}: {e}')}</li>"
            for f in self.fits
            for m, e in f.errors.items()
        ]
        if errors:
            parts.append(f"<h2>Fits that could not be made</h2><ul>{''.join(errors)}</ul>")
        parts += [
            "<h2>Plots</h2>",
            images,
            glossary_html(),
            f"<details><summary>{len(self.runs)} runs</summary>",
            humanized(self.runs).to_html(index=False, border=0),
            "</details>",
        ]
        return HTML_PAGE.format(title=html.escape(self.title), body="\n".join(parts))

    def _tasks_markdown(self) -> list[str]:
        lines, tradeoff = [], tradeoff_table(self.runs_all)
        if self.tasks:
            lines += [
                "## Downstream tasks at the target (two-step)",
                "",
                _markdown_table(humanized(predictions_table(self.tasks))),
                "",
            ]
        if len(tradeoff):
            lines += [
                "## Image-text vs text-only tasks across sizes",
                "",
                TRADEOFF_NOTE,
                "",
                _markdown_table(humanized(tradeoff)),
                "",
            ]
        return lines

    def _tasks_html(self) -> list[str]:
        parts, tradeoff = [], tradeoff_table(self.runs_all)
        if self.tasks:
            parts += [
                "<h2>Downstream tasks at the target</h2><p>Two steps: each task's loss from N and D, then "
                "its accuracy as a sigmoid of that loss; the interval is a joint bootstrap over runs.</p>",
                humanized(predictions_table(self.tasks)).to_html(index=False, border=0, classes="fits"),
            ]
        if len(tradeoff):
            parts += [
                f"<h2>Image-text vs text-only tasks across sizes</h2><p>{TRADEOFF_NOTE}</p>",
                humanized(tradeoff).to_html(index=False, border=0, classes="fits"),
            ]
        return parts

    def write(self, out_dir) -> dict[str, Path]:
        out = Path(out_dir)
        (out / "plots").mkdir(parents=True, exist_ok=True)
        paths = {"html": out / "report.html", "markdown": out / "report.md", "fits": out / "fits.json"}
        for name in self.figures:
            paths[name] = out / "plots" / f"{name}.png"
            paths[name].write_bytes(self.png(name))
        paths["html"].write_text(self.html())
        paths["markdown"].write_text(self.markdown())
        fits = [
            {
                "kind": f.kind,
                "target": f.target,
                **{
                    m: getattr(f, m).to_dict()
                    for m in ("parametric", "isoflop", "envelope")
                    if getattr(f, m) is not None
                },
            }
            for f in self.fits
        ]
        paths["fits"].write_text(json.dumps(fits, indent=2, default=float))
        return paths


def prediction_forms_table(prediction) -> pd.DataFrame:
    """Each law form's weight, its own prediction and its backtest miss on the held-out top slices; under
    a profiled form, each pin of its extra term with the part of the form's weight it carries."""
    rows = []
    for name, form in prediction.forms.items():
        miss = form.get("backtest_error") or {}
        rows.append(
            {
                "law form": name,
                "weight": f"{form['weight']:.2f}",
                "N_opt": human(form["N_opt"]) if form.get("N_opt") else "-",
                "loss": f"{form['loss']:.4g}" if form.get("loss") else "-",
                "backtest miss": f"{100 * miss['mean_log_error']:+.2f}%" if miss else "-",
            }
        )
        for pin in form.get("profile", ()):
            key = PINS[name][0]
            rows.append(
                {
                    "law form": f"  {key} pinned at {human(pin[key])}",
                    "weight": f"{form['weight'] * pin['share']:.2f}",
                    "N_opt": human(pin["N_opt"]) if pin.get("N_opt") else "-",
                    "loss": f"{pin['loss']:.4g}" if pin.get("loss") else "-",
                    "backtest miss": "-",
                }
            )
    return pd.DataFrame(rows, columns=["law form", "weight", "N_opt", "loss", "backtest miss"])


def humanized(frame: pd.DataFrame) -> pd.DataFrame:
    """Every numeric column as text for people (2e14, 0.3412), for the HTML and markdown tables."""
    out = frame.copy()
    for column in out.columns:
        if pd.api.types.is_numeric_dtype(out[column]) and not pd.api.types.is_bool_dtype(out[column]):
            out[column] = out[column].map(human)
    return out


def _markdown_table(frame: pd.DataFrame) -> str:
    head = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "---|" * len(frame.columns)
    return "\n".join(
        [head, rule] + ["| " + " | ".join(map(str, row)) + " |" for row in frame.itertuples(index=False)]
    )


HTML_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1500px; padding: 0 1em;
  color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }}
th, td {{ padding: 0.25em 0.7em; border-bottom: 1px solid #ddd; text-align: right; }}
table.fits {{ font-size: 0.8em; white-space: nowrap; }} div.wide {{ overflow-x: auto; }}
table.glossary td, table.glossary th {{ text-align: left; }}
td.formula {{ font-family: ui-monospace, monospace; white-space: nowrap; }}
table.meta th, table.meta td {{ text-align: left; }}
figure {{ display: inline-block; margin: 0.5em; }} img {{ max-width: 100%; }}
figcaption {{ font-size: 0.85em; color: #555; text-align: center; }}
</style></head><body>
{body}
</body></html>
"""

RUN_COLUMNS = [
    "point_id",
    "model_kind",
    "n_params",
    "n_tokens",
    "budget",
    "flops",
    "loss",
    "loss_caption",
    "loss_interleaved",
    "loss_text",
    "status",
    "source",
]


def build_report(
    table: RunTable,
    *,
    fit=None,
    history: pd.DataFrame | None = None,
    title: str = "sweeper report",
    meta: dict | None = None,
    law: str = "chinchilla",
    n_bootstrap: int = 0,
    seed: int = 0,
    target_ci: float | None = None,
    target_compute: float | None = None,
    prediction=None,
    task_predictions: dict | None = None,
) -> Report:
    """Fits and figures for a run table; figures are drawn for the first kind's average loss."""
    fits = compute_fits(table, fit=fit, law=law, n_bootstrap=n_bootstrap, seed=seed)
    ok = table.ok().frame
    frame = table.frame
    meta = dict(meta or {})
    sources = sorted(set(frame["source"]) - {""})
    counts = frame["status"].value_counts()
    meta.setdefault(
        "runs", f"{len(frame)} (" + ", ".join(f"{n} {status}" for status, n in counts.items()) + ")"
    )
    meta.setdefault("compute spent", f"{human(table.total_flops)} FLOPs")
    meta.setdefault(
        "source",
        ", ".join(sources)
        + (" (losses from a known law plus noise, not training)" if "simulated" in sources else ""),
    )
    figures = {}
    if fits:
        main = fits[0]
        figures = make_figures(
            ok[ok["model_kind"] == main.kind],
            main,
            history,
            target_ci=target_ci,
            seed=seed,
            target_compute=target_compute,
        )
    tasks = dict(task_predictions or {})
    if tasks and task_names(ok):
        figures["tasks"] = task_figure(ok, tasks)
    runs = frame[[c for c in RUN_COLUMNS if c in frame]].sort_values(["model_kind", "budget", "n_params"])
    return Report(
        title=title,
        meta=meta,
        fits=fits,
        figures=figures,
        runs=runs,
        runs_all=frame,
        prediction=prediction,
        tasks=tasks,
    )


def log_report_artifacts(
    client,
    parent_run_id: str,
    table: RunTable,
    fit,
    refit_history_frame: pd.DataFrame | None = None,
    *,
    target_ci: float | None = None,
    n_bootstrap: int | None = None,
    seed: int = 0,
    target_compute: float | None = None,
    prediction=None,
    task_predictions: dict | None = None,
) -> list[str]:
    """Log the report to a sweep's parent run: plots/*.png, report.html, report.md, fits.json.

    `fit` is the sweep's final FitResult (or None); `refit_history_frame` the
    online refits (refit_history_frame(history.refits)); None reads them from
    the parent's refit.* metrics. Returns the artifact paths logged.
    """
    if refit_history_frame is None:
        refit_history_frame = refit_history_from_mlflow(client, parent_run_id)
    if len(table.ok()) == 0:
        return []
    law = fit.law if fit is not None and fit.method == "parametric" else "chinchilla"
    boots = n_bootstrap if n_bootstrap is not None else (fit.n_bootstrap if fit is not None else 0)
    run = client.get_run(parent_run_id)
    report = build_report(
        table,
        fit=fit,
        history=refit_history_frame,
        law=law,
        n_bootstrap=boots,
        seed=seed,
        target_ci=target_ci,
        target_compute=target_compute,
        prediction=prediction,
        task_predictions=task_predictions,
        title=f"sweep {run.data.tags.get('sweeper.sweep_id', parent_run_id)}",
        meta=sweep_meta(run),
    )
    with tempfile.TemporaryDirectory(prefix="sweeper-report-") as tmp:
        paths = report.write(tmp)
        logged = []
        for path in paths.values():
            rel = path.relative_to(tmp)
            client.log_artifact(parent_run_id, str(path), str(rel.parent) if str(rel.parent) != "." else None)
            logged.append(str(rel))
    return logged


def sweep_meta(run) -> dict:
    """What the report header shows about a sweep, from its parent run."""
    tags, params = run.data.tags, run.data.params
    meta = {
        "sweep": tags.get("sweeper.sweep_id", ""),
        "parent run": run.info.run_id,
        "space": tags.get("sweeper.space", ""),
        "design": tags.get("sweeper.design", ""),
        "budget": human(params["budget"]) + " FLOPs" if "budget" in params else "",
        "stop reason": tags.get("sweeper.stop_reason", "(still running)"),
    }
    return {k: v for k, v in meta.items() if v}


def load_fit_json(client, run_id: str):
    """The FitResult a parent run logged as fit.json, or None."""
    from sweeper.fit import FitResult
    from sweeper.tracking.mlflow_runs import load_json_artifact

    data = load_json_artifact(client, run_id, "fit.json")
    return None if data is None else FitResult.from_dict(data)


def load_prediction_json(client, run_id: str):
    """The Prediction a parent run logged as prediction.json, or None."""
    from sweeper.fit.prediction import Prediction
    from sweeper.tracking.mlflow_runs import load_json_artifact

    data = load_json_artifact(client, run_id, "prediction.json")
    return None if data is None else Prediction.from_dict(data)


def load_task_predictions(client, run_id: str) -> dict:
    """The task predictions a parent run logged as task_predictions.json ({} without)."""
    from sweeper.fit.two_step import TaskPrediction
    from sweeper.tracking.mlflow_runs import load_json_artifact

    data = load_json_artifact(client, run_id, "task_predictions.json") or {}
    return {name: TaskPrediction.from_dict(d) for name, d in data.items()}


def open_experiment(tracking_uri: str | None, experiment: str):
    """(client, experiment_id) for an existing experiment; a clear error if there is none."""
    from sweeper.config.redaction import redact_uri
    from sweeper.config.schema import resolve_tracking_uri
    from sweeper.tracking.mlflow_runs import client_for

    uri = resolve_tracking_uri(tracking_uri)
    client = client_for(uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        names = [e.name for e in client.search_experiments(max_results=50)]
        raise SweeperInputError(
            "--experiment", experiment, f"no such experiment in {redact_uri(uri)}; it has {names}"
        )
    return client, found.experiment_id, uri


def report_for_experiment(
    experiment: str,
    *,
    tracking_uri: str | None = None,
    sweep_id: str | None = None,
    all_sweeps: bool = False,
    n_bootstrap: int | None = None,
    seed: int = 0,
) -> Report:
    """The report of a sweep (the latest, or `sweep_id`) or, with all_sweeps, of every trial in the
    experiment."""
    from sweeper.config.redaction import redact_uri
    from sweeper.tracking.mlflow_runs import find_sweep_run

    client, experiment_id, uri = open_experiment(tracking_uri, experiment)
    parent = find_sweep_run(client, experiment_id, sweep_id)
    if parent is None and not all_sweeps:
        raise SweeperInputError(
            "--sweep-id" if sweep_id else "--experiment",
            sweep_id or experiment,
            "no sweep found; run one first",
        )
    sid = None if all_sweeps else parent.data.tags["sweeper.sweep_id"]
    table = RunTable.from_mlflow(experiment=experiment, tracking_uri=uri, sweep_id=sid)
    if len(table.ok()) == 0:
        raise SweeperInputError(
            "--experiment", experiment, "it has no successful trial runs to report on yet"
        )
    fit = history = prediction = None
    tasks = {}
    meta = {"experiment": experiment, "tracking": redact_uri(uri)}
    target_ci, boots, target_compute = None, 0, None
    if parent is not None and not all_sweeps:
        fit, history = (
            load_fit_json(client, parent.info.run_id),
            refit_history_from_mlflow(client, parent.info.run_id),
        )
        prediction = load_prediction_json(client, parent.info.run_id)
        tasks = load_task_predictions(client, parent.info.run_id)
        meta.update(sweep_meta(parent))
        target_ci = float(parent.data.params.get("fit.target_ci", "nan"))
        boots = int(parent.data.params.get("fit.n_bootstrap", "0"))
        target_compute = _float_or_none(parent.data.params.get("fit.target_compute"))
    title = f"{experiment}: " + (f"sweep {sid}" if sid else "all sweeps")
    boots = boots if n_bootstrap is None else n_bootstrap
    return build_report(
        table,
        fit=fit,
        history=history,
        title=title,
        meta=meta,
        n_bootstrap=boots,
        seed=seed,
        target_ci=target_ci if target_ci and math.isfinite(target_ci) else None,
        target_compute=target_compute,
        law=fit.law if fit is not None else "chinchilla",
        prediction=prediction,
        task_predictions=tasks,
    )


def _float_or_none(text) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) and value > 0 else None
