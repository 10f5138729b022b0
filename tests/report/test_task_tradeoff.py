"""Downstream tasks for people: the image-text vs text-only trade-off at each slice's optimum, the
per-task prediction lines of the run summary, and the tasks figure."""

import numpy as np
import pandas as pd

from sweeper.fit.two_step import TaskPrediction, predict_tasks
from sweeper.report.summary import task_prediction_lines
from sweeper.report.tasks import task_figure, task_names, tradeoff_table


def runs() -> pd.DataFrame:
    """Two slices of three sizes; the middle size is each slice's optimum (lowest loss)."""
    rows = []
    for budget, base in ((1e10, 2.0), (1e11, 1.6)):
        for size, n, extra in (("s", 1e4, 0.3), ("m", 3e4, 0.0), ("l", 1e5, 0.2)):
            loss = base + extra
            rows.append(
                {
                    "model_kind": "early_fusion",
                    "budget": budget,
                    "size": size,
                    "n_params": n,
                    "n_tokens": budget / (6 * n),
                    "flops": budget,
                    "loss": loss,
                    "status": "ok",
                    "task.next_word.accuracy": 1.0 - loss / 4,
                    "task.next_word.loss": loss,
                    "task.caption_match.accuracy": 0.9 - loss / 3,
                    "task.caption_match.loss": loss + 0.1,
                }
            )
    return pd.DataFrame(rows)


def test_the_tradeoff_takes_each_slices_optimum_and_divides_image_text_by_text():
    table = tradeoff_table(runs())
    assert list(table["size"]) == ["m", "m"]
    first = table.iloc[0]
    assert first["text accuracy"] == 1.0 - 2.0 / 4
    assert first["image-text accuracy"] == 0.9 - 2.0 / 3
    assert first["image-text / text"] == first["image-text accuracy"] / first["text accuracy"]
    # the gap closes here as the models grow: the ratio rises from the small slice to the large
    assert table["image-text / text"].iloc[1] > table["image-text / text"].iloc[0]
    text_only = runs().drop(columns=["task.caption_match.accuracy", "task.caption_match.loss"])
    assert tradeoff_table(text_only).empty  # nothing to compare without both kinds of task


def test_summary_lines_say_each_tasks_accuracy_or_why_there_is_none():
    good = TaskPrediction(
        accuracy=0.61,
        loss=1.2,
        N=1e6,
        D=2e7,
        compute=1.2e14,
        trusted=True,
        ci={"accuracy": [0.55, 0.66], "loss": [1.1, 1.3]},
    )
    shaky = TaskPrediction(
        accuracy=0.978,
        loss=0.18,
        N=1e6,
        D=2e7,
        compute=1.2e14,
        trusted=False,
        ci={"accuracy": None, "loss": None},
        warnings=["18% of bootstrap refits land in a degenerate basin"],
    )
    tasks = {"next_word": good, "caption_match": TaskPrediction.none("3 rows"), "image_match": shaky}
    lines = task_prediction_lines(tasks)
    assert any("next_word" in line and "0.610 [0.550, 0.660]" in line for line in lines)
    assert any("caption_match" in line and "no prediction: 3 rows" in line for line in lines)
    # an untrusted value is not printed as an answer: only why it is not trusted
    assert any("image_match" in line and "not trusted: 18%" in line for line in lines)
    assert not any("0.978" in line for line in lines)


def test_predict_tasks_fits_every_scored_task_and_the_figure_draws_them():
    frame = runs()
    predictions = predict_tasks(frame, None, n_boot=20)
    assert sorted(predictions) == task_names(frame) == ["caption_match", "next_word"]
    assert all(p.to_dict()["warnings"] for p in predictions.values())  # 6 runs identify no law: said
    fig = task_figure(frame, predictions)
    drawn = [c for ax in fig.axes for c in ax.collections if c.get_gid() == "runs"]
    assert len(drawn) == 4 and all(len(c.get_offsets()) == len(frame) for c in drawn)
    assert np.isfinite(frame["task.next_word.accuracy"]).all()
