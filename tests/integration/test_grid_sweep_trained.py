"""End to end on the embedded default: real Ray Tune, real MLflow, real torch training."""

import math

import mlflow
import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from sweeper import Sweeper

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def trained_sweep(ray_local, tmp_path_factory):
    root = tmp_path_factory.mktemp("trained")
    uri = f"sqlite:///{root}/mlflow.db"
    sweeper = Sweeper(
        "tiny",
        kind="early_fusion",
        budget=2e12,
        slices=[6e10, 1.2e11, 2.4e11],
        sizes=["tiny-1", "tiny-2", "tiny-3", "tiny-4"],
        tracking_uri=uri,
        experiment="it-trained",
        n_bootstrap=10,
        **{
            "budgets.min_tokens_per_param": 0.1,
            "budgets.min_steps": 10,
            "training.eval_every": 200,
            "training.eval_batches": 2,
        },
    )
    plan = sweeper.plan()
    return sweeper, plan, sweeper.run(progress=lambda line: None), uri


def test_every_planned_trial_has_a_child_run_with_n_d_c_and_loss(trained_sweep):
    _, plan, result, uri = trained_sweep
    client = MlflowClient(uri)
    parent = client.get_run(result.parent_run_id)
    children = client.search_runs(
        [result.experiment_id], f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'"
    )
    by_point = {c.data.tags["sweeper.point_id"]: c for c in children}
    assert sorted(by_point) == sorted(t.point_id for t in plan.trials)
    for t in plan.trials:
        run = by_point[t.point_id]
        assert int(run.data.params["n_params"]) == t.n_params
        assert int(run.data.params["n_tokens"]) == t.n_tokens
        assert float(run.data.params["budget"]) == pytest.approx(t.budget)
        assert run.data.tags["source"] == "trained"
        assert math.isfinite(run.data.metrics["loss"])
        for target in ("caption", "interleaved", "text"):
            assert math.isfinite(run.data.metrics[f"loss_{target}"])
        # The loss curve is logged against steps, not only the final value.
        assert len(client.get_metric_history(run.info.run_id, "val_loss")) >= 2


def test_compute_spent_is_within_five_percent_of_the_slice_budget(trained_sweep):
    _, plan, result, _ = trained_sweep
    frame = result.runs.frame
    assert len(frame) == len(plan.trials) >= 9 and (frame["status"] == "ok").all()
    assert (np.abs(frame["flops"] - frame["budget"]) / frame["budget"] <= 0.05).all()


def test_loss_at_fixed_budget_varies_with_model_size(trained_sweep):
    _, _, result, _ = trained_sweep
    for budget, group in result.runs.frame.groupby("budget"):
        losses = group.sort_values("n_params")["loss"].to_numpy()
        assert losses.max() - losses.min() > 0.02, f"flat isoFLOP curve at C={budget:.3g}: {losses}"


def test_training_really_lowered_the_loss(trained_sweep):
    _, _, result, uri = trained_sweep
    client = MlflowClient(uri)
    run_id = result.runs.frame["trial_id"].iloc[0]
    curve = [m.value for m in sorted(client.get_metric_history(run_id, "val_loss"), key=lambda m: m.step)]
    assert curve[-1] < curve[0]


def test_the_fit_is_finite_and_logged_to_the_parent(trained_sweep):
    _, _, result, uri = trained_sweep
    assert result.fit is not None
    assert all(math.isfinite(v) for v in result.fit.params.values())
    parent = MlflowClient(uri).get_run(result.parent_run_id)
    assert parent.info.status == "FINISHED"
    # fit.* metrics (sortable in the runs table) hold exactly the parameters the fit identifies
    trusted = {k for k in result.fit.params if result.fit.trusted(k)}
    logged = {k.removeprefix("fit.") for k in parent.data.metrics if k.startswith("fit.")}
    assert logged & set(result.fit.params) == trusted
    assert all(math.isfinite(parent.data.metrics[f"fit.{k}"]) for k in trusted)
    assert parent.data.tags["sweeper.fit_identified"] == str(result.fit.identified).lower()
    assert parent.data.tags["sweeper.stop_reason"] == "plan complete"
    assert (
        parent.data.tags["sweeper.version"] and parent.data.tags["mlflow.source.git.commit"]
    )  # code version
    mlflow.set_tracking_uri(uri)
    artifacts = {a.path for a in MlflowClient(uri).list_artifacts(result.parent_run_id)}
    assert {"fit.json", "runs.csv", "plan.json"} <= artifacts


def test_the_generated_language_gives_a_shrunken_sweep_isoflop_minima_that_move_up_with_c(trained_sweep):
    """The embedded default's data on 3 slices x 4 sizes: each slice's lowest loss lies inside its
    sizes and no lower in N than the cheaper slice's, and the identification verdict says so."""
    from sweeper.fit.identify import isoflop_edges
    from sweeper.fit.registry import get_law

    _, _, result, _ = trained_sweep
    frame = result.runs.frame
    best = []
    for _, group in frame.groupby("budget"):
        losses = group.sort_values("n_params")
        k = int(np.argmin(losses["loss"].to_numpy()))
        assert 0 < k < len(losses) - 1, losses[["n_params", "loss"]]
        best.append(int(losses["n_params"].iloc[k]))
    assert best == sorted(best), best
    assert isoflop_edges(frame, "loss", get_law("chinchilla"), result.fit.params) == (3, 3)
    fit = result.fit  # identified: an interval for a; not: a reason, and no interval
    assert fit.identified == (not fit.warnings)
    assert math.isfinite(fit.ci_halfwidth("a")) == fit.trusted("a")
