"""The MLflow outbox: writes survive an unreachable server on disk, and replays create no twins."""

import os

from mlflow.tracking import MlflowClient

from sweeper.tracking.mlflow_runs import TrialRecorder, client_for, ensure_experiment, start_sweep_run


def recorder(uri: str, tmp_path, experiment_id: str, parent: str) -> TrialRecorder:
    return TrialRecorder(
        tracking_uri=uri,
        experiment_id=experiment_id,
        parent_run_id=parent,
        sweep_id="s1",
        design="grid",
        outbox_dir=tmp_path / "outbox",
    )


POINT = {
    "point_id": "dense_text/tiny-2/C=1e+11",
    "kind": "dense_text",
    "size": "tiny-2",
    "n_params": 1,
    "n_params_total": 2,
    "n_tokens": 3,
    "budget": 1e11,
    "steps": 4,
    "seq_len": 128,
}


def test_writes_wait_on_disk_while_mlflow_is_unreachable_then_flush(tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    client = client_for(uri)
    experiment_id = ensure_experiment(client, "outbox", uri)
    parent = start_sweep_run(client, experiment_id, sweep_id="s1", config={"space": "t"}, tags={})
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    # A closed loopback port: every write fails, nothing may be lost.
    down = recorder("http://127.0.0.1:9", tmp_path, experiment_id, parent)
    down.outbox.put("create", POINT["point_id"], config={"point": POINT, "seed": 0})
    down.outbox.put("log", POINT["point_id"], metrics=[["loss", 2.5, 0, 7]], tags=[["sweeper.status", "ok"]])
    down.outbox.put("end", POINT["point_id"], status="FINISHED")
    assert len(down.outbox.pending) == 3 and os.path.getsize(down.outbox.path) > 0
    # Back up (a new driver, e.g. --resume): the file is read and replayed in order.
    up = recorder(uri, tmp_path, experiment_id, parent)
    assert up.outbox.drain()
    runs = MlflowClient(uri).search_runs([experiment_id], "tags.`sweeper.role` = 'trial'")
    assert len(runs) == 1
    assert runs[0].data.metrics["loss"] == 2.5 and runs[0].info.status == "FINISHED"
    assert not up.outbox.path.read_text().strip()


def test_replayed_create_reuses_the_run(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    client = client_for(uri)
    experiment_id = ensure_experiment(client, "twins", uri)
    parent = start_sweep_run(client, experiment_id, sweep_id="s1", config={"space": "t"}, tags={})
    rec = recorder(uri, tmp_path, experiment_id, parent)
    first = rec._create_child({"point": POINT, "seed": 0})
    second = rec._create_child({"point": POINT, "seed": 0})  # the create a lost reply made the outbox retry
    assert first == second
    assert len(MlflowClient(uri).search_runs([experiment_id], "tags.`sweeper.role` = 'trial'")) == 1


def test_a_run_left_without_params_by_a_killed_driver_gets_them_on_resume(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    client = client_for(uri)
    experiment_id = ensure_experiment(client, "half-created", uri)
    parent = start_sweep_run(client, experiment_id, sweep_id="s1", config={"space": "t"}, tags={})
    # The driver died right after create_run: the run has its tags but no params.
    half = client.create_run(
        experiment_id,
        tags={
            "sweeper.role": "trial",
            "sweeper.sweep_id": "s1",
            "sweeper.point_id": POINT["point_id"],
            "sweeper.status": "running",
        },
    )
    resumed = TrialRecorder(
        tracking_uri=uri,
        experiment_id=experiment_id,
        parent_run_id=parent,
        sweep_id="s1",
        design="grid",
        outbox_dir=tmp_path / "outbox",
        existing={POINT["point_id"]: (half.info.run_id, "running")},
    )
    resumed.outbox.put("create", POINT["point_id"], config={"point": POINT, "seed": 0})
    params = client.get_run(half.info.run_id).data.params
    assert params["n_params"] == "1" and params["n_tokens"] == "3"
    assert len(client.search_runs([experiment_id], "tags.`sweeper.role` = 'trial'")) == 1
