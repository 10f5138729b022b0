"""`ray job submit` end to end against a Ray head this test starts on loopback.

The head gets its own ports, its own --temp-dir and its own token (Ray 2.60
has token auth on: RAY_AUTH_MODE=token and RAY_AUTH_TOKEN are set the same way
for `ray start` and `ray job submit`). It runs in its own session, so teardown
signals only that process group; `ray stop` would kill every Ray on the machine.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

pytestmark = pytest.mark.integration

RAY = str(Path(sys.executable).with_name("ray"))
REPO = Path(__file__).resolve().parents[2]
TINY_REAL = [
    "--kind",
    "early_fusion",
    "--budget",
    "2e12",
    "--set",
    "budgets.slices=[2e10,4e10,8e10]",
    "--set",
    "budgets.min_tokens_per_param=0.1",
    "--set",
    "budgets.min_steps=10",
    "--set",
    "model.sizes=[tiny-1,tiny-2,tiny-3]",
    "--set",
    "training.eval_every=200",
    "--set",
    "training.eval_batches=2",
    "--n-bootstrap",
    "10",
]


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


class LocalHead:
    """`ray start --head --block` in a new session; stop() ends that session's processes only."""

    def __init__(self, root: Path):
        self.root = root
        gcs, dash, client, agent_http, agent_grpc, runtime_env, metrics, node_mgr, obj_mgr = _free_ports(9)
        self.dashboard = f"http://127.0.0.1:{dash}"
        home = root / "home"  # Tune's default storage (~/ray_results) lands here, not in the user's home
        home.mkdir()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_ADDRESS")}
        self.env.update(
            RAY_AUTH_MODE="token",
            RAY_AUTH_TOKEN=secrets.token_hex(32),
            RAY_USAGE_STATS_ENABLED="0",
            HOME=str(home),
            PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            RAY_AIR_NEW_OUTPUT="0",
            TUNE_DISABLE_AUTO_CALLBACK_LOGGERS="1",
        )
        self.log = open(root / "head.log", "wb")  # noqa: SIM115 - the head writes to it until stop()
        self.proc = subprocess.Popen(
            [
                RAY,
                "start",
                "--head",
                "--block",
                "--node-ip-address=127.0.0.1",
                f"--port={gcs}",
                "--include-dashboard=true",
                "--dashboard-host=127.0.0.1",
                f"--dashboard-port={dash}",
                f"--ray-client-server-port={client}",
                f"--dashboard-agent-listen-port={agent_http}",
                f"--dashboard-agent-grpc-port={agent_grpc}",
                f"--runtime-env-agent-port={runtime_env}",
                f"--metrics-export-port={metrics}",
                f"--node-manager-port={node_mgr}",
                f"--object-manager-port={obj_mgr}",
                f"--temp-dir={root / 'ray'}",
                "--num-cpus=2",
                "--disable-usage-stats",
            ],
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def ray(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run(
            [RAY, *args], env=self.env, capture_output=True, text=True, timeout=timeout, check=False
        )

    def wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"ray start exited with {self.proc.returncode}: "
                    f"{(self.root / 'head.log').read_text()[-3000:]}"
                )
            if self.ray("job", "list", "--address", self.dashboard).returncode == 0:
                return
            time.sleep(2)
        raise TimeoutError(f"the job API at {self.dashboard} did not answer in {timeout:.0f} s")

    def stop(self) -> None:
        """SIGTERM `ray start` (it drains and stops its children), then SIGKILL whatever of our group is
        left."""
        pgid = self.proc.pid  # start_new_session: the head is its own process-group leader
        self.proc.terminate()
        try:
            self.proc.wait(timeout=45)
        except subprocess.TimeoutExpired:
            pass
        deadline = time.monotonic() + 10
        while _group_alive(pgid) and time.monotonic() < deadline:
            time.sleep(0.5)
        if _group_alive(pgid):
            os.killpg(pgid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.log.close()


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


@pytest.fixture(scope="module")
def head():
    root = Path(tempfile.mkdtemp(prefix="sjs-", dir="/tmp"))  # short: Ray's unix sockets live under it
    node = LocalHead(root)
    try:
        node.wait_ready()
        yield node
    finally:
        node.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def working_dir(head):
    """What `--working-dir .` uploads in the README: here just a copy of one search space."""
    wd = head.root / "wd"
    wd.mkdir()
    shutil.copy(REPO / "search_spaces" / "tiny.yaml", wd / "tiny.yaml")
    return wd


def submit(head, working_dir, name: str, sweep_args: list[str], timeout: float = 400) -> dict:
    """`ray job submit` (waits and streams logs); returns the sweep's JSON result printed by the driver."""
    entry = [
        sys.executable,
        "-m",
        "sweeper.cli",
        "run",
        "tiny.yaml",
        *sweep_args,
        "--ray-address",
        "auto",
        "--format",
        "json",
        "--quiet",
    ]
    done = head.ray(
        "job",
        "submit",
        "--address",
        head.dashboard,
        "--submission-id",
        name,
        "--working-dir",
        str(working_dir),
        "--",
        *entry,
        timeout=timeout,
    )
    assert done.returncode == 0, f"ray job submit failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    status = head.ray("job", "status", "--address", head.dashboard, name)
    assert f"Job '{name}' succeeded" in status.stdout + status.stderr, status.stdout + status.stderr
    logs = done.stdout
    start = logs.index('{\n  "sweep_id"')
    return json.loads(logs[start : logs.index("\n}", start) + 2])


def _children(uri: str, result: dict):
    client = MlflowClient(uri)
    parent = client.get_run(result["parent_run_id"])
    kids = client.search_runs(
        [result["experiment_id"]], f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'"
    )
    return parent, kids


def test_simulated_sweep_through_ray_job_submit(head, working_dir):
    uri = f"sqlite:///{head.root}/sim.db"
    result = submit(
        head,
        working_dir,
        "sweeper-sim",
        ["--trainable", "simulated", "--budget", "2e14", "--tracking-uri", uri, "--experiment", "job-sim"],
    )
    parent, kids = _children(uri, result)
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["source"] == "simulated"
    assert len(kids) == result["n_trials"] >= 9
    assert all(k.data.tags["source"] == "simulated" for k in kids)
    assert result["fit"] is not None


def test_tiny_real_sweep_through_ray_job_submit(head, working_dir):
    uri = f"sqlite:///{head.root}/real.db"
    result = submit(
        head,
        working_dir,
        "sweeper-real",
        [*TINY_REAL, "--design", "grid", "--tracking-uri", uri, "--experiment", "job-real"],
    )
    parent, kids = _children(uri, result)
    assert parent.info.status == "FINISHED"
    assert len(kids) == 9 == result["n_ok"]
    for run in kids:
        assert run.data.tags["source"] == "trained"
        assert all(f"loss_{t}" in run.data.metrics for t in ("caption", "interleaved", "text"))
    artifacts = {a.path for a in MlflowClient(uri).list_artifacts(result["parent_run_id"])}
    assert {"runs.csv", "plan.json"} <= artifacts
