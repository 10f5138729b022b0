"""An adaptive simulated sweep end to end: the in-process driver, real MLflow, stopped on CI convergence."""

import pytest
from mlflow.tracking import MlflowClient

from sweeper import Sweeper

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def adaptive_sweep(ray_local, tmp_path_factory):
    uri = f"sqlite:///{tmp_path_factory.mktemp('adaptive')}/mlflow.db"
    sweeper = Sweeper(
        "tiny",
        trainable="simulated",
        design="adaptive",
        kind="dense_text",
        budget=2e14,
        sim_law="E=1.9,A=400,B=2000,alpha=0.34,beta=0.37",
        noise=0.005,
        # A looser target than the benchmark's 0.02 keeps this short; the stopping path is the same.
        target_ci=0.06,
        patience=1,
        n_bootstrap=10,
        tracking_uri=uri,
        experiment="it-adaptive",
        batch_size=16,
        # The prediction where the law will be used is watched too: its CI must pass as well.
        target_compute=1e14,
        **{
            "budgets.min_tokens_per_param": 2.0,
            "budgets.max_tokens_per_param": 2000.0,
            "budgets.min_steps": 20,
            "fit.watch": ["a", "b", "log_L_opt"],
        },
    )
    return sweeper.run(progress=lambda line: None), uri


def test_converges_and_records_why(adaptive_sweep):
    result, uri = adaptive_sweep
    assert result.converged, result.stop_reason
    assert result.stop_reason.startswith("converged")
    parent = MlflowClient(uri).get_run(result.parent_run_id)
    assert parent.data.tags["sweeper.stop_reason"] == result.stop_reason
    assert parent.data.tags["sweeper.design"] == "adaptive"


def test_stops_before_spending_the_budget(adaptive_sweep):
    result, _ = adaptive_sweep
    assert result.total_flops < 2e14
    assert {"a", "b", "alpha", "beta"} <= set(result.to_dict()["ci_halfwidth"])


def test_every_child_is_tagged_simulated_and_on_its_slice(adaptive_sweep):
    result, uri = adaptive_sweep
    client = MlflowClient(uri)
    children = client.search_runs(
        [result.experiment_id], f"tags.`mlflow.parentRunId` = '{result.parent_run_id}'"
    )
    assert len(children) == result.n_trials >= 6
    assert all(c.data.tags["source"] == "simulated" for c in children)
    ids = [c.data.tags["sweeper.point_id"] for c in children]
    assert len(ids) == len(set(ids))  # no point trained twice, even with 2 trials in flight
    frame = result.runs.frame
    ok = frame[frame["status"] == "ok"]
    assert len(ok) >= len(frame) - 1  # at most the trial still in flight when the sweep stopped
    assert set(frame["status"]) <= {"ok", "stopped"}  # and that one is marked stopped, not left running
    assert ((ok["flops"] - ok["budget"]).abs() / ok["budget"] <= 0.05).all()


def test_refit_metrics_are_logged_on_the_parent(adaptive_sweep):
    result, uri = adaptive_sweep
    client = MlflowClient(uri)
    history = client.get_metric_history(result.parent_run_id, "refit.ci_halfwidth.a")
    assert history and history[-1].value <= 0.06
    prediction = client.get_metric_history(result.parent_run_id, "refit.ci_halfwidth.log_L_opt")
    assert prediction and prediction[-1].value <= 0.06
    assert "log_L_opt" in result.stop_reason
    assert client.get_metric_history(result.parent_run_id, "refit.flops_spent")


def test_the_prediction_at_the_target_is_in_the_result_the_parent_run_and_the_summary(adaptive_sweep):
    from sweeper.report.summary import format_result

    result, uri = adaptive_sweep
    block = result.to_dict()["prediction"]
    assert block["compute"] == 1e14 and "basis" not in block  # the sweep's own target, not the default
    assert {"N_opt", "D_opt", "loss", "a", "b", "ci", "trusted", "warnings"} <= set(block)
    assert block["trusted"] is True, block["warnings"]
    for name in ("N_opt", "D_opt", "loss"):
        lo, hi = block["ci"][name]
        assert lo <= block[name] <= hi
    parent = MlflowClient(uri).get_run(result.parent_run_id)
    assert parent.data.tags["sweeper.prediction_trusted"] == "true"
    assert parent.data.metrics["prediction.loss"] == pytest.approx(block["loss"])
    assert parent.data.metrics["prediction.N_opt_lo"] <= parent.data.metrics["prediction.N_opt"]
    assert "prediction at C = 1e+14 FLOPs" in format_result(result)
