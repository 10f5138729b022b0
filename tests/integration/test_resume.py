"""Resume: a `sweeper run` killed part-way and resumed ends with each planned point exactly once in MLflow."""

import os
import signal
import subprocess
import sys
import time

import pytest
from mlflow.tracking import MlflowClient

pytestmark = pytest.mark.integration

SLICES = [4.7e12, 1.9e13]
ARGS = dict(trainable="simulated", budget=2e14, slices=SLICES, n_bootstrap=10)


def _trial_runs(client, experiment_id):
    return client.search_runs([experiment_id], "tags.`sweeper.role` = 'trial'", max_results=1000)


def _kill_after(proc, client, experiment: str, k: int, timeout: float = 120.0) -> int:
    """SIGKILL the driver once k trials are recorded as finished; how many were."""
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        found = client.get_experiment_by_name(experiment)
        if found is not None:
            done = [
                r
                for r in _trial_runs(client, found.experiment_id)
                if r.data.tags.get("sweeper.status") == "ok"
            ]
            if len(done) >= k:
                proc.send_signal(signal.SIGKILL)  # no cleanup, no finish_sweep: a crashed driver
                proc.wait()
                return len(done)
        time.sleep(0.3)
    proc.kill()
    proc.wait()
    pytest.fail(f"the sweep did not reach {k} finished trials (exit {proc.returncode})")


def test_killed_sweep_resumes_without_rerunning_finished_trials(ray_local, tmp_path, monkeypatch):
    from sweeper import Sweeper

    monkeypatch.chdir(tmp_path)
    uri, experiment = f"sqlite:///{tmp_path}/mlflow.db", "resume-test"
    plan = Sweeper("tiny", tracking_uri=uri, experiment=experiment, **ARGS).plan()
    address = ray_local.get_runtime_context().gcs_address  # the driver joins the test's Ray, not a new one
    command = [
        sys.executable,
        "-m",
        "sweeper.cli",
        "run",
        "tiny",
        "--trainable",
        "simulated",
        "--budget",
        "2e14",
        "--set",
        "budgets.slices=[4.7e+12, 1.9e+13]",
        "--n-bootstrap",
        "10",
        "--tracking-uri",
        uri,
        "--experiment",
        experiment,
        "--ray-address",
        address,
        "--quiet",
    ]
    env = {**os.environ, "RAY_AIR_NEW_OUTPUT": "0"}
    proc = subprocess.Popen(
        command, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=open(tmp_path / "run.log", "wb")
    )
    client = MlflowClient(uri)
    done_at_kill = _kill_after(proc, client, experiment, k=4)
    assert done_at_kill < len(plan.trials), "the sweep finished before it could be interrupted"

    experiment_id = client.get_experiment_by_name(experiment).experiment_id
    before = {r.data.tags["sweeper.point_id"]: r for r in _trial_runs(client, experiment_id)}
    finished_before = {p: r.info.run_id for p, r in before.items() if r.data.tags["sweeper.status"] == "ok"}
    parent = client.search_runs([experiment_id], "tags.`sweeper.role` = 'sweep'")
    assert len(parent) == 1 and parent[0].info.status == "RUNNING"

    result = Sweeper("tiny", tracking_uri=uri, experiment=experiment, resume=True, **ARGS).run(
        progress=lambda line: None
    )

    assert result.parent_run_id == parent[0].info.run_id
    after = _trial_runs(client, experiment_id)
    points = [r.data.tags["sweeper.point_id"] for r in after]
    assert sorted(points) == sorted(t.point_id for t in plan.trials)  # each planned point exactly once
    assert all(r.data.tags["sweeper.status"] == "ok" for r in after)
    by_point = {r.data.tags["sweeper.point_id"]: r for r in after}
    for point, run_id in finished_before.items():  # finished trials were not re-run
        assert by_point[point].info.run_id == run_id
        assert len(client.get_metric_history(run_id, "loss")) == 1
    assert len(client.search_runs([experiment_id], "tags.`sweeper.role` = 'sweep'")) == 1
    assert client.get_run(result.parent_run_id).info.status == "FINISHED"
    assert len(result.runs) == len(plan.trials)
    fit_error = client.get_run(result.parent_run_id).data.tags.get("sweeper.fit_error")
    assert result.fit is not None, fit_error
