"""The MLflow server goes down mid-sweep and comes back: every result reaches it, none is lost."""

import threading
import time

import pytest
from mlflow.tracking import MlflowClient

from sweeper import Sweeper
from sweeper.trial.faults import Harness

pytestmark = pytest.mark.integration


def finished_children(url: str) -> int:
    client = MlflowClient(url)
    experiment = client.get_experiment_by_name("outage")
    if experiment is None:
        return 0
    return len(client.search_runs([experiment.experiment_id], "tags.`sweeper.status` = 'ok'"))


def test_results_written_after_the_server_returns(ray_local, mlflow_server, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sweeper = Sweeper(
        "tiny",
        kind="dense_text",
        trainable="simulated",
        design="grid",
        budget=2e14,
        slices=[4.7e12, 9.4e12, 1.9e13],
        tracking_uri=mlflow_server.url,
        experiment="outage",
        n_bootstrap=0,
        harness=Harness(delay_s=0.7),
        **{"ray.max_concurrent_trials": 1},
    )
    plan = sweeper.plan()
    events = []

    def outage():
        deadline = time.time() + 120
        while finished_children(mlflow_server.url) < 3 and time.time() < deadline:
            time.sleep(0.2)
        mlflow_server.stop()
        events.append("down")
        time.sleep(6)  # several trials finish while the server is gone
        mlflow_server.start()
        events.append("up")

    thread = threading.Thread(target=outage)
    thread.start()
    result = sweeper.run(progress=lambda line: None)
    thread.join()
    assert events == ["down", "up"]
    client = MlflowClient(mlflow_server.url)
    runs = client.search_runs([result.experiment_id], f"tags.`mlflow.parentRunId` = '{result.parent_run_id}'")
    assert sorted(r.data.tags["sweeper.point_id"] for r in runs) == sorted(t.point_id for t in plan.trials)
    assert all(r.data.tags["sweeper.status"] == "ok" and "loss" in r.data.metrics for r in runs)
    assert result.fit is not None and result.fit.n_runs == len(plan.trials)
    assert not (tmp_path / ".sweeper" / "outbox" / f"{result.sweep_id}.jsonl").read_text().strip()


def _adaptive(url: str, experiment: str) -> Sweeper:
    return Sweeper(
        "tiny",
        kind="dense_text",
        trainable="simulated",
        design="adaptive",
        budget=2e14,
        sim_law="E=1.9,A=400,B=2000,alpha=0.34,beta=0.37",
        noise=0.005,
        target_ci=0.06,
        patience=1,
        n_bootstrap=10,
        batch_size=16,
        tracking_uri=url,
        experiment=experiment,
        **{
            "budgets.min_tokens_per_param": 2.0,
            "budgets.max_tokens_per_param": 2000.0,
            "budgets.min_steps": 20,
            "tracking.outage_timeout_s": 60,
        },
    )


def test_with_mlflow_down_the_sampler_buys_exactly_what_the_stop_decision_allows(
    mlflow_server, tmp_path, monkeypatch
):
    """The stop decision reads the ledger, not MLflow: a sweep run wholly during an outage proposes
    the same trials and stops at the same point as one with MLflow up."""
    monkeypatch.chdir(tmp_path)
    reference = _adaptive(mlflow_server.url, "outage-reference").run(progress=lambda line: None)
    events = []

    def progress(line: str) -> None:
        if line.startswith("sweep ") and not events:  # the parent run exists; the trials are next
            mlflow_server.stop()
            events.append("down")
        elif line.startswith("MLflow unreachable") and events == ["down"]:
            mlflow_server.start()  # the final flush is waiting for it
            events.append("up")

    result = _adaptive(mlflow_server.url, "outage-adaptive").run(progress=progress)
    assert events == ["down", "up"]
    assert reference.converged and result.converged, (reference.stop_reason, result.stop_reason)
    assert result.stop_reason == reference.stop_reason
    assert sorted(result.runs.frame["point_id"]) == sorted(reference.runs.frame["point_id"])
    assert (result.runs.frame["status"] == "ok").all()
