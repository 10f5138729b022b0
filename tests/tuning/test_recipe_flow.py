"""A fitted recipe flows from a tune job's MLflow run into an isoFLOP sweep, and is recorded on every
trial."""

import mlflow
import pytest

from sweeper.api import Sweeper, trial_config
from sweeper.config.schema import load_config
from sweeper.plan.trials import make_plan
from sweeper.trial.spec import TrialSpec
from sweeper.tuning.laws import predict
from sweeper.tuning.search import run_tune
from sweeper.tuning.trainable import simulate_tune_point


def test_fitted_recipe_flows_into_an_isoflop_sweep(ray_local, tune_overrides, sim_law, tmp_path):
    cfg = load_config(
        "tiny",
        **tune_overrides,
        **{
            "tune.sizes": ["tiny-1", "tiny-2", "tiny-3"],
            "tune.n_trials": 6,
            "tune.tokens_per_param": 10,
            "tune.space": {
                "lr": {"dist": "loguniform", "low": 1e-3, "high": 1e-1},
                "batch_tokens": {"dist": "choice", "values": [256, 512, 1024]},
            },
        },
    )
    tuned = run_tune(
        cfg, trainable=simulate_tune_point, extra_config={"tune_sim": sim_law}, progress=lambda line: None
    )
    assert set(tuned.laws) == {"lr", "batch_tokens"}
    lr_law, batch_law = tuned.laws["lr"], tuned.laws["batch_tokens"]

    sweep_cfg = load_config(
        "tiny",
        kind="early_fusion",
        trainable="simulated",
        design="grid",
        tracking_uri=tune_overrides["tracking_uri"],
        experiment="isoflop",
        **{
            "training.recipe": "fitted",
            "training.recipe_run": tuned.job_run_id,
            "ray.storage_path": str(tmp_path / "ray2"),
            "budgets.min_tokens_per_param": 0.5,
            "budgets.min_steps": 10,
            "fit.n_bootstrap": 0,
            "budget": 3e12,
        },
    )
    plan = make_plan(sweep_cfg)
    base = trial_config(sweep_cfg)
    assert base["recipe"]["name"] == "fitted" and base["recipe"]["run_id"] == tuned.job_run_id
    for point in plan.trials:  # the plan's batch, and every trial's lr, come from the laws at its C
        expected_batch = max(1, round(float(predict(batch_law, point.budget)) / point.seq_len))
        assert point.batch_size == expected_batch
        assert point.n_tokens == point.steps * point.batch_size * point.seq_len
        hp = TrialSpec.of({**base, "point": point.to_dict()}).hparam_values()
        assert hp["lr"] == pytest.approx(float(predict(lr_law, point.budget)))
        assert hp["batch_size"] == expected_batch

    result = Sweeper(
        "tiny",
        kind="early_fusion",
        trainable="simulated",
        design="grid",
        tracking_uri=tune_overrides["tracking_uri"],
        experiment="isoflop",
        **{
            "training.recipe": "fitted",
            "training.recipe_run": tuned.job_run_id,
            "ray.storage_path": str(tmp_path / "ray2"),
            "budgets.min_tokens_per_param": 0.5,
            "budgets.min_steps": 10,
            "fit.n_bootstrap": 0,
            "budget": 3e12,
        },
    ).run(progress=lambda line: None)
    runs = mlflow.search_runs([result.experiment_id], "tags.`sweeper.role` = 'trial'", output_format="pandas")
    assert len(runs) == len(plan.trials)
    assert set(runs["params.hp.recipe"]) == {"fitted"}
    assert set(runs["params.hp.recipe_run"]) == {tuned.job_run_id}


def test_paper_recipe_sets_batch_and_lr_per_size():
    cfg = load_config(
        "tiny",
        kind="early_fusion",
        **{"training.recipe": "paper", "budget": 1e13, "budgets.min_tokens_per_param": 0.5},
    )
    from models.registry import get_model_spec
    from sweeper.train.recipes import tiny_hparams

    base = trial_config(cfg)
    for point in make_plan(cfg).trials:
        spec = get_model_spec(point.kind, point.size)
        hp = TrialSpec.of({**base, "point": point.to_dict()}).hparam_values()
        assert hp["lr"] == pytest.approx(tiny_hparams(spec, point.n_tokens).lr)
        assert hp["batch_size"] == point.batch_size
