"""A sweep whose largest size trains through Ray Train TorchTrainer + DeepSpeed ZeRO, the rest
single-process."""

import math

import pytest
from mlflow.tracking import MlflowClient

from models.registry import get_model_spec
from sweeper import Sweeper

pytestmark = pytest.mark.integration


def test_large_rungs_go_distributed_and_report_like_the_others(ray_local, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    big = get_model_spec("early_fusion", "tiny-3")
    # ~80 optimizer steps for the distributed trial: each costs a gloo all-reduce between two CPU workers
    sweeper = Sweeper(
        "tiny",
        kind="early_fusion",
        budget=1e12,
        slices=[3e10],
        sizes=["tiny-1", "tiny-2", "tiny-3"],
        tracking_uri=f"sqlite:///{tmp_path}/mlflow.db",
        experiment="dist",
        n_bootstrap=0,
        **{
            "training.recipe": "fixed",
            "training.batch_size": 16,
            "training.eval_every": 10,
            "training.eval_batches": 1,
            "budgets.min_tokens_per_param": 0.1,
            "budgets.min_steps": 10,
            "distributed.enabled": True,
            "distributed.workers": 2,
            "distributed.zero_stage": 1,
            "distributed.cpus_per_worker": 0.5,
            "distributed.min_params_for_distributed": big.n_params,
        },
    )
    plan = sweeper.plan()
    result = sweeper.run(progress=lambda line: None)
    frame = result.runs.frame.set_index("size")
    assert sorted(frame.index) == ["tiny-1", "tiny-2", "tiny-3"] and (frame["status"] == "ok").all()
    for target in ("loss", "loss_caption", "loss_interleaved", "loss_text"):
        assert frame[target].map(math.isfinite).all()
    planned = {t.size: t for t in plan.trials}
    # C is counted from the batches the trial really trained on; the plan estimates it at the mixture
    assert frame.loc["tiny-3", "flops"] == pytest.approx(planned["tiny-3"].flops, rel=0.02)
    client = MlflowClient(result.tracking_uri)
    curve = client.get_metric_history(frame.loc["tiny-3", "trial_id"], "val_loss")
    assert len(curve) >= 2  # the TorchTrainer's evaluations reached the child run
