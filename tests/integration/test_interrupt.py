"""Ctrl+C during a trained sweep: the driver stops within seconds, the parent run says it was interrupted
(KILLED, not complete), and --resume continues each stopped trial from its last checkpoint."""

import os
import signal
import subprocess
import sys
import time

import pytest
import yaml
from mlflow.tracking import MlflowClient

pytestmark = pytest.mark.integration

SPACE = {
    "model": {"kind": "early_fusion", "ladder": "tiny", "sizes": ["tiny-1", "tiny-2", "tiny-3"]},
    "budget": 2e11,
    "design": "grid",
    "budgets": {"slices": [5e10], "min_tokens_per_param": 0.5, "min_steps": 20},
    "training": {"batch_size": 8, "eval_every": 25, "eval_batches": 1, "checkpoint_every": 25},
    "fit": {"n_bootstrap": 5},
    "ray": {"max_concurrent_trials": 2, "cpus_per_trial": 1},
}


def trial_runs(client, experiment_id):
    return client.search_runs([experiment_id], "tags.`sweeper.role` = 'trial'", max_results=100)


def sweeper_run(tmp_path, address: str, *extra: str) -> subprocess.Popen:
    command = [
        sys.executable,
        "-m",
        "sweeper.cli",
        "run",
        str(tmp_path / "space.yaml"),
        "--tracking-uri",
        f"sqlite:///{tmp_path}/mlflow.db",
        "--experiment",
        "interrupt",
        "--ray-address",
        address,
        *extra,
    ]
    return subprocess.Popen(
        command,
        cwd=tmp_path,
        env={**os.environ, "RAY_AIR_NEW_OUTPUT": "0"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_an_interrupted_sweep_says_so_and_resumes_its_trials_from_their_checkpoints(ray_local, tmp_path):
    (tmp_path / "space.yaml").write_text(yaml.safe_dump(SPACE))
    address = ray_local.get_runtime_context().gcs_address
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    proc = sweeper_run(tmp_path, address)
    deadline, checkpointed = time.time() + 300, []
    while time.time() < deadline and proc.poll() is None and not checkpointed:
        found = client.get_experiment_by_name("interrupt")
        if found is not None:
            checkpointed = [
                r
                for r in trial_runs(client, found.experiment_id)
                if "sweeper.checkpoint" in r.data.tags and r.data.tags["sweeper.status"] == "running"
            ]
        time.sleep(0.3)
    assert checkpointed, f"no trial checkpointed before the sweep ended: {proc.poll()}"
    proc.send_signal(signal.SIGINT)
    sent = time.time()
    out, _ = proc.communicate(timeout=120)
    assert time.time() - sent < 30, "the driver took too long to stop"
    assert proc.returncode == 130, out
    assert "stop: interrupted: SIGINT after" in out and "--resume" in out, out
    assert "Traceback" not in out and "Stop signal received" not in out, out

    experiment_id = client.get_experiment_by_name("interrupt").experiment_id
    parent = client.search_runs([experiment_id], "tags.`sweeper.role` = 'sweep'")[0]
    assert parent.info.status == "KILLED"
    assert parent.data.tags["sweeper.stop_reason"].startswith("interrupted: SIGINT after")
    stopped = {
        r.data.tags["sweeper.point_id"]: int(r.data.tags["sweeper.checkpoint_step"])
        for r in trial_runs(client, experiment_id)
        if r.data.tags["sweeper.status"] == "stopped" and "sweeper.checkpoint" in r.data.tags
    }
    assert stopped and all(step > 0 for step in stopped.values()), stopped

    resumed = sweeper_run(tmp_path, address, "--resume")
    out, _ = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, out
    runs = {r.data.tags["sweeper.point_id"]: r for r in trial_runs(client, experiment_id)}
    assert len(runs) == 3 and all(r.data.tags["sweeper.status"] == "ok" for r in runs.values())
    for point, step in stopped.items():  # continued from the checkpoint, not from step 0
        assert runs[point].data.metrics["resumed_from_step"] == step, point
    assert client.get_run(parent.info.run_id).info.status == "FINISHED"
