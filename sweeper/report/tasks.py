"""Downstream tasks for people: the image-text vs text-only trade-off across sizes, each task's two-step
prediction, and a figure of both steps and their chain per task.

The trade-off is the multimodal study's question: at the compute-optimal model of each slice (its lowest
validation loss), how do image-text and text-only task accuracies compare, and does the gap close as
the models grow?
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sweeper.data.tasks import modality_of
from sweeper.fit.two_step import TASK_ACCURACY, Sigmoid
from sweeper.report.plots import new_figure


def task_names(frame: pd.DataFrame) -> list[str]:
    """The tasks the runs scored (task.<name>.accuracy columns with a value)."""
    names = []
    for column in frame.columns:
        match = TASK_ACCURACY.match(column)
        if match and frame[column].notna().any():
            names.append(match.group(1))
    return sorted(names)


def _mean_accuracy(row: pd.Series, names: list[str]) -> float:
    values = [float(row[f"task.{n}.accuracy"]) for n in names]
    values = [v for v in values if np.isfinite(v)]
    return float(np.mean(values)) if values else np.nan


def tradeoff_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Per slice, its compute-optimal run: size, N, mean image-text and text-only accuracy, their ratio.
    Empty when the runs scored no task of one of the two kinds."""
    names = task_names(frame)
    image_text = [n for n in names if modality_of(n) == "image-text"]
    text = [n for n in names if modality_of(n) == "text"]
    ok = frame[(frame["status"] == "ok") & np.isfinite(frame["loss"].astype(float))]
    if not image_text or not text or ok.empty:
        return pd.DataFrame()
    rows = []
    for (kind, budget), runs in ok.groupby(["model_kind", "budget"]):
        best = runs.loc[runs["loss"].astype(float).idxmin()]
        it, tx = _mean_accuracy(best, image_text), _mean_accuracy(best, text)
        rows.append(
            {
                "kind": kind,
                "slice C": float(budget),
                "size": best["size"],
                "N": float(best["n_params"]),
                "image-text accuracy": it,
                "text accuracy": tx,
                "image-text / text": it / tx if tx > 0 else np.nan,
            }
        )
    return pd.DataFrame(rows).sort_values(["kind", "slice C"]).reset_index(drop=True)


def predictions_table(predictions: dict) -> pd.DataFrame:
    """Each task's two-step prediction at the sweep's target: accuracy [interval] and the task loss."""
    rows = []
    for name, p in sorted(predictions.items()):
        d = p.to_dict()
        ci = d["ci"].get("accuracy")
        rows.append(
            {
                "task": name,
                "modality": modality_of(name),
                "accuracy": d.get("accuracy") if d.get("trusted") else None,  # untrusted: no answer
                "95% interval": f"[{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "none",
                "task loss": d.get("loss"),
                "trusted": d.get("trusted", False),
                "why not": "; ".join(d.get("warnings", [])),
            }
        )
    return pd.DataFrame(rows)


def task_figure(frame: pd.DataFrame, predictions: dict):
    """One row per task: step 1 (task loss against compute, and the prediction at the target), step 2
    (accuracy against task loss, the fitted sigmoid), and the chained prediction on both."""
    names = [n for n in task_names(frame) if n in predictions]
    ok = frame[frame["status"] == "ok"]
    fig = new_figure(9.0, 2.8 * max(len(names), 1))
    axes = fig.subplots(max(len(names), 1), 2, squeeze=False)
    for (left, right), name in zip(axes, names):
        d = predictions[name].to_dict()
        loss, acc = ok[f"task.{name}.loss"].astype(float), ok[f"task.{name}.accuracy"].astype(float)
        left.scatter(ok["flops"], loss, s=12, gid="runs")
        left.set(xscale="log", xlabel="C (FLOPs)", ylabel=f"{name} loss", title=f"{name}: step 1")
        right.scatter(loss, acc, s=12, gid="runs")
        right.set(xlabel=f"{name} loss (nats/token)", ylabel="accuracy", title="step 2 and the chain")
        if d.get("sigmoid"):
            grid = np.linspace(min(loss.min(), d["loss"] or loss.min()), loss.max(), 200)
            right.plot(grid, Sigmoid(**d["sigmoid"])(grid), color="k", lw=1, gid="sigmoid")
        if d.get("accuracy") is not None and d.get("loss") is not None:
            c = d.get("compute") or 6.0 * d["N"] * d["D"]
            ci = d["ci"].get("accuracy")
            yerr = None if not ci else [[d["accuracy"] - ci[0]], [ci[1] - d["accuracy"]]]
            left.scatter([c], [d["loss"]], marker="*", s=90, color="C3", gid="prediction")
            right.errorbar(
                [d["loss"]], [d["accuracy"]], yerr=yerr, fmt="*", ms=10, color="C3", gid="prediction"
            )
    return fig
