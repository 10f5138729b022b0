"""Injected faults through real Ray Tune and MLflow: recorded, retried, excluded from fits; nothing lost."""

import pytest
from mlflow.tracking import MlflowClient

from sweeper import Sweeper
from sweeper.trial.faults import Harness, fault_for

pytestmark = pytest.mark.integration
SLICES = [4.7e12, 9.4e12, 1.9e13]


def sweep(tmp_path, monkeypatch, harness, **overrides):
    monkeypatch.chdir(tmp_path)
    sweeper = Sweeper(
        "tiny",
        kind="dense_text",
        trainable="simulated",
        design="grid",
        budget=2e14,
        slices=SLICES,
        tracking_uri=f"sqlite:///{tmp_path}/mlflow.db",
        n_bootstrap=0,
        harness=harness,
        **overrides,
    )
    return sweeper.plan(), sweeper.run(progress=lambda line: None)


def children(result):
    client = MlflowClient(result.tracking_uri)
    runs = client.search_runs([result.experiment_id], f"tags.`mlflow.parentRunId` = '{result.parent_run_id}'")
    return {r.data.tags["sweeper.point_id"]: r for r in runs}


def test_raising_and_killed_trials_are_retried_and_recovered(ray_local, tmp_path, monkeypatch):
    harness = Harness(fault_rate=0.5, fault_kinds=("raise", "kill"), fault_seed=3)
    plan, result = sweep(tmp_path, monkeypatch, harness, **{"ray.max_failures": 1})
    hit = {t.point_id: fault_for(harness.faults(), t.point_id) for t in plan.trials}
    assert {"raise", "kill"} <= set(hit.values())  # both kinds really happened
    runs = children(result)
    assert sorted(runs) == sorted(t.point_id for t in plan.trials)  # one child run per point, no duplicates
    assert all(r.data.tags["sweeper.status"] == "ok" for r in runs.values())
    assert result.fit is not None and result.fit.n_runs == len(plan.trials)


def test_failed_and_diverged_trials_are_recorded_and_excluded(ray_local, tmp_path, monkeypatch):
    harness = Harness(fault_rate=0.4, fault_kinds=("raise", "nan"), fault_seed=11)
    plan, result = sweep(tmp_path, monkeypatch, harness, **{"ray.max_failures": 0})
    hit = {t.point_id: fault_for(harness.faults(), t.point_id) for t in plan.trials}
    runs = children(result)
    assert sorted(runs) == sorted(t.point_id for t in plan.trials)  # the sweep went on past every fault
    for point, kind in hit.items():
        tags = runs[point].data.tags
        expected = {"raise": "failed", "nan": "diverged", None: "ok"}[kind]
        assert tags["sweeper.status"] == expected, point
        if kind == "raise":
            assert "injected fault" in tags["sweeper.error"]
            assert runs[point].info.status == "FAILED"
        if kind == "nan":
            assert "NaN" in tags["sweeper.error"]
    n_ok = sum(kind is None for kind in hit.values())
    assert 0 < n_ok < len(plan.trials)
    assert result.fit.n_runs == n_ok  # failed and diverged runs never reach the fit


def test_a_killed_training_trial_resumes_from_its_checkpoint(ray_local, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sweeper = Sweeper(
        "tiny",
        kind="dense_text",
        trainable="torch",
        design="grid",
        budget=2e11,
        slices=[3e10],
        sizes=["tiny-1", "tiny-2", "tiny-3"],
        tracking_uri=f"sqlite:///{tmp_path}/mlflow.db",
        n_bootstrap=0,
        harness=Harness(fault_rate=1.0, fault_kinds=("kill",)),
        **{
            "budgets.min_tokens_per_param": 0.1,
            "budgets.min_steps": 10,
            "training.eval_every": 20,
            "training.eval_batches": 1,
            "training.checkpoint_every": 20,
            "ray.max_failures": 1,
        },
    )
    plan = sweeper.plan()
    assert all(t.steps > 40 for t in plan.trials)  # a checkpoint at step 20 lies well inside every run
    result = sweeper.run(progress=lambda line: None)
    client = MlflowClient(result.tracking_uri)
    runs = children(result)
    assert sorted(runs) == sorted(t.point_id for t in plan.trials)
    for point, run in runs.items():
        assert run.data.tags["sweeper.status"] == "ok", point
        assert (
            run.data.metrics["resumed_from_step"] == 20
        )  # SIGKILLed after its first checkpoint, resumed there
        steps = [m.step for m in client.get_metric_history(run.info.run_id, "val_loss")]
        assert (
            len(steps) == len(set(steps)) and min(steps) == 20
        )  # no step trained twice: not restarted from scratch
