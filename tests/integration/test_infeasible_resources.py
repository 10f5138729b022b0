"""Through the CLI: a request the cluster can never grant exits 2 before anything runs, and a
simulated sweep of a GPU search space plans on a CPU-only machine instead of waiting for a GPU.

Each command starts its own local Ray (RAY_ADDRESS=local: never another session's Ray).
The subprocess timeouts only catch a hang; nothing asserts on speed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def _sweeper(
    args: list[str], cwd: Path, timeout: float, env: dict | None = None
) -> subprocess.CompletedProcess:
    env = {**os.environ, "RAY_ADDRESS": "local", "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "sweeper.cli", *args],
        cwd=cwd,
        env=env,
        text=True,
        capture_output=True,
        timeout=timeout,
    )


def test_a_gpu_space_with_real_training_on_a_cpu_machine_exits_2_naming_the_key(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    run = _sweeper(
        ["run", "text_chinchilla", "--trainable", "torch", "--budget", "1e21", "--tracking-uri", uri],
        tmp_path,
        timeout=240,
    )
    assert run.returncode == 2, run.stderr[-2000:]
    assert "ray.gpus_per_trial: got 1.0" in run.stderr
    assert "--set ray.gpus_per_trial=0" in run.stderr
    assert "Traceback" not in run.stderr
    # refused before the MLflow parent run: nothing to clean up, nothing for --resume to find
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("sweeper-text_chinchilla")
    assert experiment is None or not client.search_runs([experiment.experiment_id])


def test_too_many_cpus_per_trial_exits_2_with_the_largest_node(tmp_path):
    run = _sweeper(
        [
            "run",
            "tiny",
            "--budget",
            "2e12",
            "--set",
            "ray.cpus_per_trial=4096",
            "--tracking-uri",
            f"sqlite:///{tmp_path}/mlflow.db",
        ],
        tmp_path,
        timeout=240,
    )
    assert run.returncode == 2, run.stderr[-2000:]
    assert "ray.cpus_per_trial: got 4096.0" in run.stderr and "the most CPUs on one node" in run.stderr


def test_a_simulated_sweep_of_a_gpu_space_finishes_on_cpus(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    run = _sweeper(
        [
            "run",
            "tiny",
            "--trainable",
            "simulated",
            "--budget",
            "2e12",
            "--n-bootstrap",
            "10",
            "--set",
            "ray.gpus_per_trial=4",
            "--set",
            "ray.cpus_per_trial=64",
            "--tracking-uri",
            uri,
            "--quiet",
        ],
        tmp_path,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("sweeper-tiny")
    runs = client.search_runs([experiment.experiment_id], "tags.source = 'simulated'")
    assert len(runs) > 3  # the parent and its simulated trials


def test_a_trial_that_reserved_a_gpu_torch_cannot_see_is_recorded_failed_not_trained_on_cpu(tmp_path):
    # Ray is told the node has a GPU (RAY_OVERRIDE_RESOURCES): it assigns it, and the CPU build of torch
    # cannot see it. Before, such a trial trained on the CPU and nobody noticed.
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    env = {"RAY_OVERRIDE_RESOURCES": '{"GPU": 1}'}
    run = _sweeper(
        [
            "run",
            "tiny",
            "--kind",
            "early_fusion",
            "--budget",
            "2e12",
            "--design",
            "grid",
            "--set",
            "budgets.slices=[6e10]",
            "--set",
            "budgets.min_tokens_per_param=0.1",
            "--set",
            "budgets.min_steps=10",
            "--set",
            "model.sizes=[tiny-1,tiny-2,tiny-3]",
            "--set",
            "ray.gpus_per_trial=1",
            "--set",
            "ray.max_failures=0",
            "--n-bootstrap",
            "10",
            "--tracking-uri",
            uri,
        ],
        tmp_path,
        timeout=600,
        env=env,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("sweeper-tiny")
    trials = client.search_runs([experiment.experiment_id], "tags.`sweeper.point_id` != ''")
    assert len(trials) == 3
    for trial in trials:
        assert trial.data.tags["sweeper.status"] == "failed"
        assert "reserved 1 GPU(s)" in trial.data.tags["sweeper.error"]
        assert "flops" not in trial.data.metrics  # nothing trained anywhere
