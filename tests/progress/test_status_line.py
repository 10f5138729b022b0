"""The live status line: trials, compute against budget, watched CIs against the target, ETA."""

import logging
import math
import warnings

from sweeper.library_logs import LibraryLogs
from sweeper.report.progress import duration_text, eta_seconds, status_text


def test_status_line_shows_trials_compute_cis_against_target_and_eta():
    text = status_text(
        done=12,
        total=40,
        spent=6e13,
        budget=2e14,
        halfwidths={"a": 0.031, "b": math.inf},
        target_ci=0.02,
        eta=95.0,
    )
    assert text == "[###.......] 12/40 trials | 6e13/2e14 FLOPs | CI a ±0.031 b ±? (target ±0.02) | ETA 1m35s"


def test_eta_follows_trials_on_a_grid_and_compute_on_an_adaptive_sweep():
    assert eta_seconds(60.0, done=10, total=40, spent=1.0, budget=2.0) == 180.0
    assert eta_seconds(60.0, done=10, total=0, spent=5e13, budget=2e14) == 180.0
    assert math.isnan(eta_seconds(60.0, done=0, total=0, spent=0.0, budget=2e14))
    assert [duration_text(s) for s in (5, 125, 7300, math.nan)] == ["5s", "2m05s", "2h01m", "?"]


def test_library_logs_go_to_the_file_and_not_the_terminal(tmp_path, capsys):
    import ray  # noqa: F401  (its handler writes to stderr until the block)

    path = tmp_path / "libs.log"
    with LibraryLogs(path):
        logging.getLogger("ray.tune").warning("tune chatter")
        logging.getLogger("mlflow.store").warning("mlflow chatter")
        logging.getLogger("ray.tune.analysis.experiment_analysis").warning("Failed to fetch metrics")
        warnings.warn("a library warning")
    logging.getLogger("sweeper.test").warning("after")  # not ours to route
    captured = capsys.readouterr()
    assert "chatter" not in captured.err + captured.out and "library warning" not in captured.err
    text = path.read_text()
    assert "tune chatter" in text and "mlflow chatter" in text and "a library warning" in text
    assert "Failed to fetch metrics" not in text
    assert logging.getLogger("ray").handlers and logging.getLogger("ray").handlers[0].stream is not None


def test_eta_of_an_adaptive_sweep_ends_where_the_cis_reach_the_target():
    from types import SimpleNamespace

    from sweeper.report.progress import converge_compute

    # half-widths falling as C^-1/2: from 0.08 at 1e12 they reach 0.02 at 16x the compute
    refits = [
        SimpleNamespace(flops_spent=c, halfwidths={"a": 0.08 * (c / 1e12) ** -0.5})
        for c in (2.5e11, 5e11, 1e12)
    ]
    assert math.isclose(converge_compute(refits, 0.02), 1.6e13, rel_tol=1e-6)
    assert math.isnan(converge_compute(refits[:2], 0.02))
    # 10 s to spend 1e12: 150 s more to 1.6e13, well before the 2e14 budget
    assert math.isclose(
        eta_seconds(10.0, done=5, total=0, spent=1e12, budget=2e14, converge_at=1.6e13), 150.0
    )
