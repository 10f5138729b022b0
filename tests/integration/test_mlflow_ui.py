"""The MLflow UI on a finished sweep, as a user's browser shows it (headless Chromium).

A real `mlflow server` on loopback, a small simulated sweep logged to it, then the
experiment's page: it opens on the runs table (not the GenAI view), and expanding
the sweep's parent run lists its trial runs under it, with N, D, C and loss columns.
"""

import os

import pytest
from mlflow.tracking import MlflowClient

from sweeper.report.screenshots import find_chromium, mlflow_runs_view

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        find_chromium() is None,
        reason="headless Chromium is not installed (scripts/setup installs it: apt-get install chromium)",
    ),
]


@pytest.fixture(scope="module")
def ui_sweep(ray_local, mlflow_server):
    from sweeper import Sweeper

    here = os.getcwd()
    os.chdir(mlflow_server.root)
    try:
        result = Sweeper(
            "tiny",
            trainable="simulated",
            budget=2e14,
            slices=[4.7e12, 1.9e13],
            tracking_uri=mlflow_server.url,
            experiment="ui-test",
            n_bootstrap=10,
        ).run(progress=lambda _: None)
    finally:
        os.chdir(here)
    return mlflow_server.url, result


def test_experiment_is_marked_for_model_training_and_the_parent_describes_the_sweep(ui_sweep):
    url, result = ui_sweep
    client = MlflowClient(url)
    experiment = client.get_experiment(result.experiment_id)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    note = client.get_run(result.parent_run_id).data.tags["mlflow.note.content"]
    assert "Sweep of `tiny`" in note and "budget 2e14 FLOPs" in note
    assert "stopped: plan complete" in note and "Fitted law: L = E + A/N^α + B/D^β" in note
    assert f"{result.fit.derived['a']:.4f}"[:5] in note
    child = client.search_runs([result.experiment_id], "tags.`sweeper.role` = 'trial'", max_results=1)[0]
    assert {"N", "D", "C", "loss"} <= set(child.data.metrics) and child.data.tags["status"] == "ok"
    assert child.data.metrics["N"] == float(child.data.params["n_params"])


def test_runs_view_lists_the_trials_under_the_parent(ui_sweep, tmp_path):
    url, result = ui_sweep
    client = MlflowClient(url)
    parent = client.get_run(result.parent_run_id).info.run_name
    trials = [
        r.info.run_name for r in client.search_runs([result.experiment_id], "tags.`sweeper.role` = 'trial'")
    ]
    shot = tmp_path / "runs.png"
    seen = mlflow_runs_view(url, result.experiment_id, parent, trials, shot)
    assert seen["parent"], "the sweep's parent run is not on the experiment's runs page"
    assert sorted(seen["children"]) == sorted(trials), "trial runs missing under the expanded parent"
    assert seen["console"] == [], seen["console"]
    assert shot.stat().st_size > 20_000
