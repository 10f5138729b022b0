"""Secrets stay out of MLflow, logs and reports; YAML and pickles are never loaded unsafely."""

import re
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from sweeper import Sweeper
from sweeper.config.redaction import redact, redact_uri

REPO = Path(__file__).resolve().parents[2]
PLANTED = "pl4nted-S3cret-7781"


def test_uri_and_config_redaction():
    assert PLANTED not in redact_uri(f"http://alice:{PLANTED}@127.0.0.1:5000")
    assert redact_uri(f"http://alice:{PLANTED}@127.0.0.1:5000").startswith("http://alice:***@127.0.0.1:5000")
    assert PLANTED not in redact_uri(f"https://h/x?token={PLANTED}&page=2")
    assert "page=2" in redact_uri(f"https://h/x?token={PLANTED}&page=2")
    assert redact({"db": {"password": PLANTED, "uri": f"postgresql://u:{PLANTED}@db/m"}, "n": 3}) == {
        "db": {"password": "***", "uri": "postgresql://u:***@db/m"},
        "n": 3,
    }


@pytest.mark.integration
def test_planted_secret_reaches_no_param_tag_artifact_log_or_report(
    ray_local, mlflow_server, tmp_path, monkeypatch, capfd
):
    from sweeper.cli import main

    monkeypatch.chdir(tmp_path)
    # An unauthenticated server ignores the credentials; they must still never be written anywhere.
    uri = mlflow_server.url.replace("http://", f"http://sweeper:{PLANTED}@")
    result = Sweeper(
        "tiny",
        kind="dense_text",
        trainable="simulated",
        design="grid",
        budget=2e14,
        slices=[4.7e12, 9.4e12, 1.9e13],
        tracking_uri=uri,
        experiment="secrets",
        n_bootstrap=5,
    ).run()
    assert (
        main(["report", "--experiment", "secrets", "--tracking-uri", uri, "--out", str(tmp_path / "report")])
        == 0
    )
    assert main(["status", "--experiment", "secrets", "--tracking-uri", uri]) == 0
    client = MlflowClient(mlflow_server.url)
    texts = [str(result.to_dict())]
    runs = client.search_runs([result.experiment_id], "")
    assert len(runs) > 10
    for run in runs:
        texts += [str(run.data.params), str(run.data.tags)]
        for artifact in client.list_artifacts(run.info.run_id):
            if not artifact.is_dir:
                texts.append(
                    Path(client.download_artifacts(run.info.run_id, artifact.path, str(tmp_path)))
                    .read_bytes()
                    .decode("latin-1")
                )
    texts += [p.read_bytes().decode("latin-1") for p in (tmp_path / "report").rglob("*") if p.is_file()]
    texts += [
        p.read_bytes().decode("latin-1")
        for p in (tmp_path / ".sweeper").rglob("*")
        if p.is_file() and p.stat().st_size < 5e6
    ]
    out = capfd.readouterr()
    texts += [out.out, out.err]
    leaks = [t[:200] for t in texts if PLANTED in t]
    assert not leaks


def python_sources():
    for folder in ("sweeper", "models", "benchmarks"):
        yield from (REPO / folder).rglob("*.py")


@pytest.mark.parametrize(
    "pattern, why",
    [
        (r"yaml\.(load|unsafe_load|full_load)\(", "only yaml.safe_load"),
        (r"\bpickle\.loads?\(|\bcloudpickle\.loads?\(", "no unpickling"),
        (r"torch\.load\((?![^)]*weights_only=True)", "torch.load only with weights_only=True"),
    ],
)
def test_no_unsafe_loading_in_the_sources(pattern, why):
    hits = [
        f"{p.relative_to(REPO)}:{n}"
        for p in python_sources()
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if re.search(pattern, line)
    ]
    assert not hits, f"{why}: {hits}"


def test_local_ray_dashboard_binds_to_loopback_by_default():
    from sweeper.config.schema import load_config

    cfg = load_config("tiny")
    assert cfg.ray.dashboard is False and cfg.ray.dashboard_host == "127.0.0.1"


def test_uris_without_credentials_are_unchanged():
    for uri in (
        "sqlite:////tmp/x/mlflow.db",
        "sqlite:///mlruns/mlflow.db",
        "http://127.0.0.1:5000",
        "file:///a/b",
    ):
        assert redact_uri(uri) == uri
