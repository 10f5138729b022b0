"""Every model kind sweeps on the embedded default and logs its per-target losses to MLflow."""

import math

import pytest
from mlflow.tracking import MlflowClient

from sweeper import Sweeper

pytestmark = pytest.mark.integration

# dense_text is the text-only baseline: it has no caption or interleaved target.
TARGETS = {
    "dense_text": ("text",),
    "early_fusion": ("caption", "interleaved", "text"),
    "late_fusion": ("caption", "interleaved", "text"),
    "moe": ("caption", "interleaved", "text"),
}


@pytest.mark.parametrize("kind", sorted(TARGETS))
def test_a_tiny_sweep_of_each_kind_logs_per_target_losses(ray_local, tmp_path, monkeypatch, kind):
    monkeypatch.chdir(tmp_path)
    result = Sweeper(
        "tiny",
        kind=kind,
        budget=1e12,
        slices=[3e10],
        sizes=["tiny-1", "tiny-2", "tiny-3"],
        tracking_uri=f"sqlite:///{tmp_path}/mlflow.db",
        experiment=f"kind-{kind}",
        n_bootstrap=0,
        **{
            "budgets.min_tokens_per_param": 0.1,
            "budgets.min_steps": 10,
            "training.eval_every": 25,
            "training.eval_batches": 1,
        },
    ).run(progress=lambda line: None)
    frame = result.runs.frame
    assert len(frame) == 3 and (frame["status"] == "ok").all() and set(frame["model_kind"]) == {kind}
    client = MlflowClient(result.tracking_uri)
    for run_id in frame["trial_id"]:
        metrics = client.get_run(run_id).data.metrics
        assert math.isfinite(metrics["loss"])
        for target in TARGETS[kind]:
            assert math.isfinite(metrics[f"loss_{target}"])
            assert client.get_metric_history(run_id, f"val_loss_{target}")
        if kind == "moe":
            assert 0.0 <= metrics.get("moe_specialization", -1) <= 1.0
