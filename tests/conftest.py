"""Shared fixtures: one local Ray per test session, started and stopped only by us."""

import os

import pytest

os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")


@pytest.fixture(scope="session")
def ray_local():
    import ray

    if not ray.is_initialized():
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture
def tracking_uri(tmp_path):
    return f"sqlite:///{tmp_path}/mlflow.db"


class MlflowServer:
    """A real `mlflow server` on loopback, in its own process group so stop() ends only it."""

    def __init__(self, root, port: int | None = None):
        import socket
        from pathlib import Path

        self.root = Path(root)
        if port is None:
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.proc = None

    def start(self, timeout_s: float = 90.0) -> "MlflowServer":
        import subprocess
        import sys
        import time
        import urllib.request
        from pathlib import Path

        mlflow_bin = str(Path(sys.executable).parent / "mlflow")
        log = open(self.root / "server.log", "ab")
        self.proc = subprocess.Popen(
            [
                mlflow_bin,
                "server",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                "1",
                "--backend-store-uri",
                f"sqlite:///{self.root}/db",
                "--artifacts-destination",
                str(self.root / "art"),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.time() + timeout_s
        while True:
            try:
                if urllib.request.urlopen(f"{self.url}/health", timeout=2).status == 200:
                    return self
            except OSError:
                pass
            if self.proc.poll() is not None or time.time() > deadline:
                self.stop()
                pytest.fail(
                    f"mlflow server did not come up: {(self.root / 'server.log').read_text()[-2000:]}"
                )
            time.sleep(0.5)

    def stop(self) -> None:
        import signal
        import subprocess

        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=20)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.proc = None


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    server = MlflowServer(tmp_path_factory.mktemp("server")).start()
    yield server
    server.stop()
