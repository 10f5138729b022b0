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


def _sweeper(args: list[str], cwd: Path, timeout: float) -> subprocess.CompletedProcess:
    env = {**os.environ, "RAY_ADDRESS": "local", "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "sweeper.cli", *args], cwd=cwd, env=env, text=True,
                          capture_output=True, timeout=timeout)


def test_a_gpu_space_with_real_training_on_a_cpu_machine_exits_2_naming_the_key(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    run = _sweeper(["run", "text_chinchilla", "--trainable", "torch", "--budget", "1e21",
                    "--tracking-uri", uri], tmp_path, timeout=240)
    assert run.returncode == 2, run.stderr[-2000:]
    assert "ray.gpus_per_trial: got 1.0" in run.stderr
    assert "--set ray.gpus_per_trial=0" in run.stderr
    assert "Traceback" not in run.stderr
    # refused before the MLflow parent run: nothing to clean up, nothing for --resume to find
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("sweeper-text_chinchilla")
    assert experiment is None or not client.search_runs([experiment.experiment_id])


def test_too_many_cpus_per_trial_exits_2_with_the_largest_node(tmp_path):
    run = _sweeper(["run", "tiny", "--budget", "2e12", "--set", "ray.cpus_per_trial=4096",
                    "--tracking-uri", f"sqlite:///{tmp_path}/mlflow.db"], tmp_path, timeout=240)
    assert run.returncode == 2, run.stderr[-2000:]
    assert "ray.cpus_per_trial: got 4096.0" in run.stderr and "the most CPUs on one node" in run.stderr


def test_a_simulated_sweep_of_a_gpu_space_finishes_on_cpus(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    run = _sweeper(["run", "tiny", "--trainable", "simulated", "--budget", "2e12", "--n-bootstrap", "10",
                    "--set", "ray.gpus_per_trial=4", "--set", "ray.cpus_per_trial=64",
                    "--tracking-uri", uri, "--quiet"], tmp_path, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("sweeper-tiny")
    runs = client.search_runs([experiment.experiment_id], "tags.source = 'simulated'")
    assert len(runs) > 3  # the parent and its simulated trials
